//! `QuotaBlockedModal`: a real dialog that stops a send once the monthly quota is used up.
//! Focus stays inside while it is open; Esc and the backdrop do not close it: only "Close"
//! (or going to upgrade) does.

use leptos::prelude::*;

#[component]
pub fn QuotaBlockedModal(
    open: RwSignal<bool>,
    /// When the quota resets, as people read it.
    #[prop(into)]
    resets: Signal<String>,
) -> impl IntoView {
    let upgrade = NodeRef::<leptos::html::A>::new();
    let close = NodeRef::<leptos::html::Button>::new();
    // Which of the two actions has focus (0: upgrade, 1: close).
    let focused = RwSignal::new(0u8);
    // Focus the first action when it opens.
    Effect::new(move |_| {
        if open.get() {
            if let Some(el) = upgrade.get() {
                let _ = el.focus();
            }
        }
    });
    // Tab and Shift+Tab cycle between the two actions; Esc does nothing.
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
        "Escape" => ev.prevent_default(),
        "Tab" => {
            ev.prevent_default();
            if focused.get_untracked() == 1 {
                if let Some(a) = upgrade.get() {
                    let _ = a.focus();
                }
            } else if let Some(b) = close.get() {
                let _ = b.focus();
            }
        }
        _ => {}
    };
    view! {
        <Show when=move || open.get()>
            <div class="fixed inset-0 z-50 flex items-center justify-center p-4" on:keydown=on_keydown>
                // The backdrop: clicking it does nothing on purpose.
                <div class="absolute inset-0 bg-slate-900/50" aria-hidden="true" data-testid="modal-backdrop"></div>
                <div
                    class="relative w-full max-w-md rounded-2xl bg-white p-6 shadow-xl"
                    role="dialog"
                    aria-modal="true"
                    aria-labelledby="quota-blocked-title"
                    aria-describedby="quota-blocked-text"
                    data-testid="quota-blocked-modal"
                >
                    <h2 id="quota-blocked-title" class="text-lg font-semibold">"You've reached your monthly token limit"</h2>
                    <p id="quota-blocked-text" class="mt-2 text-sm text-slate-600">
                        {move || format!("Nothing was sent and your message is kept. Your quota resets on {}; upgrade your plan to continue now.", resets.get())}
                    </p>
                    <div class="mt-6 flex justify-end gap-3">
                        <button
                            node_ref=close
                            type="button"
                            class="rounded-lg px-4 py-2 text-sm font-semibold text-slate-700 ring-1 ring-inset ring-slate-300 hover:bg-slate-50"
                            on:click=move |_| open.set(false)
                            on:focus=move |_| focused.set(1)
                        >
                            "Close"
                        </button>
                        <a
                            node_ref=upgrade
                            href="/pricing"
                            class="rounded-lg bg-indigo-600 px-4 py-2 text-sm font-semibold text-white hover:bg-indigo-500"
                            on:click=move |_| open.set(false)
                            on:focus=move |_| focused.set(0)
                        >
                            "Upgrade Plan"
                        </a>
                    </div>
                </div>
            </div>
        </Show>
    }
}
