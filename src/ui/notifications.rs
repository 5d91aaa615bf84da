//! Notifications in the pages: the bell in the top bar (its unread count comes with the usage
//! every page reads, and is read again after each send and every 30 s) and the list.

use crate::api::notifications::{
    get_notifications, MarkAllNotificationsRead, MarkNotificationRead, NotificationDto,
};
use crate::ui::common::{action_error, resource, ErrorNotice, Loading, BTN_SECONDARY, CARD};
use crate::ui::quota::use_usage;
use crate::ui::time::format_time;
use leptos::prelude::*;
use leptos_router::components::A;

/// The bell's label: "Notifications" and, when there are, how many are unread.
pub fn bell_label(unread: i64) -> String {
    match unread {
        0 => "Notifications".into(),
        1 => "Notifications, 1 unread".into(),
        n => format!("Notifications, {n} unread"),
    }
}

/// The bell: a link to the list, with the unread count.
#[component]
pub fn Bell() -> impl IntoView {
    let usage = use_usage();
    let unread = move || {
        usage
            .usage
            .get()
            .map_or(0, |u| u.unread_notifications.max(0))
    };
    view! {
        <A
            href="/notifications"
            attr:class="relative grid h-9 w-9 place-items-center rounded-full text-slate-600 hover:bg-slate-100 hover:text-slate-900"
            attr:aria-label=move || bell_label(unread())
            attr:data-testid="bell"
        >
            <svg class="h-5 w-5" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true">
                <path stroke-linejoin="round" d="M12 3a6 6 0 0 0-6 6v4l-2 3h16l-2-3V9a6 6 0 0 0-6-6zm-2 16a2 2 0 0 0 4 0"/>
            </svg>
            {move || (unread() > 0).then(|| view! {
                <span
                    class="absolute -right-0.5 -top-0.5 grid h-5 min-w-5 place-items-center rounded-full bg-red-600 px-1 text-[11px] font-bold text-white"
                    data-testid="bell-count"
                >
                    {unread().min(99).to_string()}
                </span>
            })}
        </A>
    }
}

/// `/notifications`: the newest 50, newest first; mark one or all read.
#[component]
pub fn NotificationsPage() -> impl IntoView {
    let usage = use_usage();
    let mark = ServerAction::<MarkNotificationRead>::new();
    let mark_all = ServerAction::<MarkAllNotificationsRead>::new();
    // Read again when one is marked, and when the bell's count changes (a new one came).
    let unread = move || usage.usage.get().map(|u| u.unread_notifications);
    let list = resource(
        move || (mark.version().get(), mark_all.version().get(), unread()),
        |_| get_notifications(),
    );
    // The bell follows what is marked here.
    Effect::new(move |_| {
        if mark.version().get() + mark_all.version().get() > 0 {
            usage.refresh();
        }
    });
    let (mark_error, mark_all_error) = (action_error(mark), action_error(mark_all));
    let error = move || mark_error().or_else(mark_all_error);
    view! {
        <div class="mx-auto max-w-3xl">
            <div class="mb-6 flex flex-wrap items-center justify-between gap-3">
                <h1 class="text-2xl font-bold tracking-tight">"Notifications"</h1>
                <button
                    type="button"
                    class=BTN_SECONDARY
                    data-testid="mark-all-read"
                    disabled=move || mark_all.pending().get() || unread().unwrap_or(0) == 0
                    on:click=move |_| { mark_all.dispatch(MarkAllNotificationsRead {}); }
                >
                    "Mark all as read"
                </button>
            </div>
            {move || error().map(|message| view! { <div class="mb-4"><ErrorNotice message/></div> })}
            <div class=CARD>
                <Transition fallback=|| view! { <Loading/> }>
                    {move || list.get().map(|result| match result {
                        Err(e) => view! { <ErrorNotice message=e.message/> }.into_any(),
                        Ok(list) if list.items.is_empty() => view! {
                            <p class="text-sm text-slate-500" data-testid="no-notifications">
                                "Nothing yet. You are told here when your usage passes 80, 95 and 100 % of your monthly tokens, and when at your pace you would reach your limit before it resets."
                            </p>
                        }.into_any(),
                        Ok(list) => view! {
                            <ul class="-my-3 divide-y divide-slate-100" data-testid="notification-list">
                                {list.items.into_iter().map(|n| view! { <Row n mark/> }).collect_view()}
                            </ul>
                        }.into_any(),
                    })}
                </Transition>
            </div>
        </div>
    }
}

#[component]
fn Row(n: NotificationDto, mark: ServerAction<MarkNotificationRead>) -> impl IntoView {
    let id = n.id;
    let dot = if n.read {
        "mt-1.5 h-2 w-2 shrink-0 rounded-full bg-transparent"
    } else {
        "mt-1.5 h-2 w-2 shrink-0 rounded-full bg-indigo-600"
    };
    view! {
        <li
            class="flex gap-3 py-3"
            data-testid="notification"
            data-kind=n.kind.as_str()
            data-read=n.read.to_string()
        >
            <span class=dot aria-hidden="true"></span>
            <div class="min-w-0 flex-1">
                <p class=if n.read { "text-sm text-slate-700" } else { "text-sm font-semibold text-slate-900" }>
                    {n.title.clone()}
                </p>
                <p class="mt-0.5 text-sm text-slate-600">{n.body.clone()}</p>
                <p class="mt-1 text-xs text-slate-400">{format_time(&n.created_at)}</p>
            </div>
            {(!n.read).then(|| view! {
                <button
                    type="button"
                    class="self-start rounded-md px-2 py-1 text-xs font-medium text-indigo-700 hover:bg-indigo-50"
                    aria-label=format!("Mark “{}” as read", n.title)
                    disabled=move || mark.pending().get()
                    on:click=move |_| { mark.dispatch(MarkNotificationRead { id }); }
                >
                    "Mark read"
                </button>
            })}
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bell_says_how_many() {
        assert_eq!(bell_label(0), "Notifications");
        assert_eq!(bell_label(1), "Notifications, 1 unread");
        assert_eq!(bell_label(12), "Notifications, 12 unread");
    }
}
