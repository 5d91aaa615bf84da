//! Small pieces every page uses: guards for signed-in and admin pages, error and empty states,
//! and the utility-class sets for buttons and inputs.

use crate::api::error::{AppError, ErrorCode};
use crate::ui::session::use_session;
use leptos::prelude::*;
use leptos_router::components::A;

pub const BTN_PRIMARY: &str = "inline-flex items-center justify-center gap-2 rounded-lg bg-indigo-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-indigo-500 focus-visible:outline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600 disabled:cursor-not-allowed disabled:opacity-60";
pub const BTN_SECONDARY: &str = "inline-flex items-center justify-center gap-2 rounded-lg bg-white px-4 py-2 text-sm font-semibold text-slate-700 shadow-sm ring-1 ring-inset ring-slate-300 hover:bg-slate-50 disabled:cursor-not-allowed disabled:opacity-60";
pub const BTN_DANGER: &str = "inline-flex items-center justify-center rounded-lg bg-white px-3 py-1.5 text-sm font-semibold text-red-700 ring-1 ring-inset ring-red-200 hover:bg-red-50 disabled:opacity-60";
pub const INPUT: &str = "block w-full rounded-lg border-0 bg-white px-3 py-2 text-slate-900 shadow-sm ring-1 ring-inset ring-slate-300 placeholder:text-slate-400 focus:ring-2 focus:ring-inset focus:ring-indigo-600 sm:text-sm";
pub const LABEL: &str = "block text-sm font-medium text-slate-700";
pub const CARD: &str = "rounded-2xl bg-white p-6 shadow-sm ring-1 ring-slate-200";

/// How a page's data crosses from the server's render to the browser: JSON, read the way the
/// server functions' answers are read (`serde_json::from_slice`). Leptos' default codec reads it
/// with `from_str`, which gave every type a page loads a second decoder in the wasm.
pub struct Json;

impl<T: serde::Serialize> codee::Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(value)
    }
}

impl<T: serde::de::DeserializeOwned> codee::Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(text.as_bytes())
    }
}

/// A page's data: `fetcher` runs on the server's render (and again in the browser whenever
/// `source` changes); the browser starts from what the server sent, read by [`Json`].
#[track_caller]
pub fn resource<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, Json>
where
    S: Send + Sync + Clone + PartialEq + 'static,
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

/// A form's fields as they are when it is submitted (see [`PostForm`]). `ActionForm` reads them
/// with a form-data decoder of its own, some 20 KB of compressed wasm in the first load of every
/// page with a form.
pub struct Submitted(Option<leptos::web_sys::FormData>);

impl Submitted {
    /// Stops the browser's own post (the action is dispatched instead) and reads the form.
    pub fn take(ev: &leptos::ev::SubmitEvent) -> Submitted {
        use leptos::wasm_bindgen::JsCast;
        ev.prevent_default();
        let form = ev
            .target()
            .and_then(|t| t.dyn_into::<leptos::web_sys::HtmlFormElement>().ok());
        Submitted(form.and_then(|f| leptos::web_sys::FormData::new_with_form(&f).ok()))
    }

    /// A field's text ("" when the form has no such field: the server says what is missing).
    pub fn text(&self, name: &str) -> String {
        self.0
            .as_ref()
            .and_then(|data| data.get(name).as_string())
            .unwrap_or_default()
    }

    /// Whether a checkbox of that name was ticked (an unticked one sends nothing).
    pub fn ticked(&self, name: &str) -> bool {
        self.0.as_ref().is_some_and(|data| data.has(name))
    }
}

/// A form posting to `action`'s server function. Without JavaScript the browser posts it;
/// hydrated, its submit reads the fields (`read`, from [`Submitted`]) and dispatches the action,
/// so the URL posted to and the action dispatched are the same server function by construction.
/// What `ActionForm` does, without its form-data decoder.
#[component]
pub fn PostForm<I>(
    action: ServerAction<I>,
    /// The server function's arguments, from the submitted fields.
    read: fn(&Submitted) -> I,
    #[prop(optional)] node_ref: NodeRef<leptos::html::Form>,
    #[prop(optional)] class: Option<&'static str>,
    children: Children,
) -> impl IntoView
where
    I: leptos::server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    I::Output: Send + Sync + 'static,
{
    view! {
        <form method="post" action=I::url() class=class node_ref=node_ref on:submit=move |ev| {
            action.dispatch(read(&Submitted::take(&ev)));
        }>
            {children()}
        </form>
    }
}

/// A labelled, required input.
#[component]
pub fn Field(
    id: &'static str,
    name: &'static str,
    label: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] minlength: Option<usize>,
    #[prop(optional)] maxlength: Option<usize>,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(optional, into)] hint: Option<String>,
) -> impl IntoView {
    view! {
        <div class="min-w-0 flex-1">
            <label for=id class=LABEL>{label}</label>
            <input
                id=id
                name=name
                type=kind
                required
                autocomplete=autocomplete
                minlength=minlength.map(|n| n.to_string())
                maxlength=maxlength.map(|n| n.to_string())
                placeholder=placeholder
                class=format!("mt-1 {INPUT}")
            />
            {hint.map(|hint| view! { <p class="mt-1 text-xs text-slate-500">{hint}</p> })}
        </div>
    }
}

/// A red notice for an error the user can read.
#[component]
pub fn ErrorNotice(#[prop(into)] message: String) -> impl IntoView {
    view! {
        <div role="alert" class="rounded-lg border border-red-200 bg-red-50 px-4 py-3 text-sm text-red-800">
            {message}
        </div>
    }
}

/// The error of the latest run of an action, if it failed.
pub fn action_error<I>(action: ServerAction<I>) -> impl Fn() -> Option<String> + Copy
where
    I: leptos::server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    I::Output: Clone + Send + Sync + 'static,
{
    move || {
        action
            .value()
            .get()
            .and_then(|result| result.err())
            .map(|e| e.message)
    }
}

/// Clears a form once its action has succeeded, so the next entry starts empty.
pub fn reset_on_success<I>(action: ServerAction<I>) -> NodeRef<leptos::html::Form>
where
    I: leptos::server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    I::Output: Clone + Send + Sync + 'static,
{
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if matches!(action.value().get(), Some(Ok(_))) {
            if let Some(form) = form.get_untracked() {
                form.reset();
            }
        }
    });
    form
}

/// Shown when a page cannot be loaded.
#[component]
pub fn ErrorPage(error: AppError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(status) = http::StatusCode::from_u16(error.code.status()) {
            response.set_status(status);
        }
    }
    let (title, hint) = match error.code {
        ErrorCode::Forbidden => (
            "You don't have access to this page",
            "Ask an admin if you think you should.",
        ),
        ErrorCode::NotFound => ("Page not found", "It may have been removed."),
        ErrorCode::Unauthorized => ("Please sign in", "Your session may have ended."),
        _ => ("Something went wrong", "Try again in a moment."),
    };
    view! {
        <section class="mx-auto max-w-lg py-16 text-center">
            <p class="text-sm font-semibold text-indigo-600">{error.code.status()}</p>
            <h1 class="mt-2 text-2xl font-bold tracking-tight sm:text-3xl">{title}</h1>
            <p class="mt-3 text-slate-600">{error.message}</p>
            <p class="mt-1 text-sm text-slate-500">{hint}</p>
            <div class="mt-8"><A href="/" attr:class=BTN_SECONDARY>"Back to the start"</A></div>
        </section>
    }
}

#[component]
pub fn Loading() -> impl IntoView {
    view! {
        <div class="flex items-center gap-3 py-10 text-sm text-slate-500" aria-live="polite">
            <span class="h-4 w-4 animate-spin rounded-full border-2 border-slate-300 border-t-indigo-600"></span>
            "Loading…"
        </div>
    }
}

/// A route's page, shown to whoever may see it by the access `api::access::PAGES` declares for
/// the path. The route table wraps every page in it (`app.rs`), so no page can forget.
///
/// Whoever may not see the page never gets it from the server: `page_guard` sends visitors to
/// log in with a 302 before rendering, and a user on an admin page gets this 403 page, rendered
/// and hydrated like any other. In the browser, a refusal can only come from a link followed
/// there; the address is then loaded from the server, which answers as it does for everybody.
/// (No router redirect: this wraps every page, so every page's first load would carry it.)
#[component]
pub fn Guarded(children: Children) -> impl IntoView {
    use crate::api::access::{page, Access};
    let path = leptos_router::hooks::use_location()
        .pathname
        .get_untracked();
    let user = use_session().user();
    if page(&path).unwrap_or(Access::Public).allows(user.as_ref()) {
        return children();
    }
    let error = match user {
        None => AppError::unauthorized(),
        Some(_) => AppError::forbidden("The admin area is for admins only."),
    };
    #[cfg(not(feature = "ssr"))]
    if !crate::app::Hydrated::get_untracked() {
        // Hydrating the server's own answer (its 403 page): it stays.
    } else if let Err(e) = window().location().assign(&path) {
        leptos::logging::error!("cannot load {path}: {e:?}");
    }
    view! { <ErrorPage error/> }.into_any()
}
