//! Log-in and sign-up pages. Both are plain forms posting to server functions, so they work
//! before the page has hydrated too.

use crate::api::auth::{signup_mode, Login, Signup};
use crate::domain::account::MIN_PASSWORD_LEN;
use crate::ui::common::{action_error, resource, ErrorNotice, Field, PostForm, BTN_PRIMARY};
use crate::ui::session::use_session;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
fn AuthCard(title: &'static str, subtitle: &'static str, children: Children) -> impl IntoView {
    view! {
        <section class="mx-auto w-full max-w-md">
            <div class="rounded-2xl bg-white px-6 py-8 shadow-sm ring-1 ring-slate-200 sm:px-10">
                <h1 class="text-2xl font-bold tracking-tight">{title}</h1>
                <p class="mt-1 text-sm text-slate-600">{subtitle}</p>
                <div class="mt-6">{children()}</div>
            </div>
        </section>
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = use_session().login;
    let error = action_error(login);
    let query = leptos_router::hooks::use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    view! {
        <Title text="Log in"/>
        <AuthCard title="Log in" subtitle="Welcome back. Your usage is waiting.">
            <PostForm action=login read=|form| Login {
                email: form.text("email"),
                password: form.text("password"),
                next: form.text("next"),
            }>
                <div class="space-y-4">
                    <input type="hidden" name="next" prop:value=next/>
                    <Field id="email" name="email" label="Email" kind="email" autocomplete="email"/>
                    <Field id="password" name="password" label="Password" kind="password" autocomplete="current-password"/>
                    {move || error().map(|message| view! { <ErrorNotice message/> })}
                    <button type="submit" class=format!("w-full {BTN_PRIMARY}") disabled=move || login.pending().get()>
                        {move || if login.pending().get() { "Logging in…" } else { "Log in" }}
                    </button>
                </div>
            </PostForm>
            <p class="mt-6 text-center text-sm text-slate-600">
                "No account yet? "
                <A href="/signup" attr:class="font-semibold text-indigo-600 hover:text-indigo-500">"Sign up"</A>
            </p>
        </AuthCard>
    }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    let signup = use_session().signup;
    let error = action_error(signup);
    let mode = resource(|| (), |_| signup_mode());
    view! {
        <Title text="Sign up"/>
        <AuthCard title="Create your account" subtitle="Chat with any model and see exactly what it costs.">
            <Transition fallback=|| ()>
                {move || mode.get().map(|mode| match mode.as_deref() {
                    Ok("closed") => view! {
                        <ErrorNotice message="Sign-up is closed on this server. Ask an admin to create an account for you."/>
                    }.into_any(),
                    other => view! {
                        {(other == Ok("approval")).then(|| view! {
                            <p id="approval-note" class="mb-4 rounded-lg bg-indigo-50 px-3 py-2 text-sm text-indigo-900">
                                "An admin approves new accounts on this server. You can sign in once yours is approved."
                            </p>
                        })}
                        <PostForm action=signup read=|form| Signup {
                            email: form.text("email"),
                            password: form.text("password"),
                        }>
                            <div class="space-y-4">
                                <Field id="email" name="email" label="Email" kind="email" autocomplete="email"/>
                                <Field id="password" name="password" label="Password" kind="password" autocomplete="new-password" minlength=MIN_PASSWORD_LEN hint=format!("At least {MIN_PASSWORD_LEN} characters.")/>
                                {move || error().map(|message| view! { <ErrorNotice message/> })}
                                <button type="submit" class=format!("w-full {BTN_PRIMARY}") disabled=move || signup.pending().get()>
                                    {move || if signup.pending().get() { "Creating account…" } else { "Create account" }}
                                </button>
                            </div>
                        </PostForm>
                    }.into_any(),
                })}
            </Transition>
            <p class="mt-6 text-center text-sm text-slate-600">
                "Already have an account? "
                <A href="/login" attr:class="font-semibold text-indigo-600 hover:text-indigo-500">"Log in"</A>
            </p>
        </AuthCard>
    }
}

/// Where a sign-up that waits for an admin lands.
#[component]
pub fn SignupPendingPage() -> impl IntoView {
    view! {
        <Title text="Waiting for approval"/>
        <AuthCard title="Waiting for approval" subtitle="Your account has been created.">
            <p class="text-sm text-slate-700">
                "An admin of this server must approve new accounts before they can be used. "
                "Once yours is approved, log in with the e-mail and password you chose."
            </p>
            <p class="mt-6 text-center text-sm text-slate-600">
                <A href="/login" attr:class="font-semibold text-indigo-600 hover:text-indigo-500">"Go to log in"</A>
            </p>
        </AuthCard>
    }
}
