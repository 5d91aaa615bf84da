//! The simple pages: home, chat, pricing, 404.

use crate::api::error::{AppError, ErrorCode};
use crate::api::UserDto;
use crate::ui::common::{ErrorPage, BTN_PRIMARY, BTN_SECONDARY, CARD};
use crate::ui::session::use_session;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text=""/>
        {match use_session().user() {
            Some(user) => view! { <Dashboard user/> }.into_any(),
            None => view! { <Landing/> }.into_any(),
        }}
    }
}

#[component]
fn Landing() -> impl IntoView {
    view! {
        <section class="py-10 sm:py-20">
            <p class="text-sm font-semibold uppercase tracking-wide text-indigo-600">"Self-hosted LLM chat"</p>
            <h1 class="mt-3 max-w-3xl text-4xl font-bold tracking-tight sm:text-5xl">
                "Chat with your models. Know what every conversation costs."
            </h1>
            <p class="mt-5 max-w-2xl text-lg text-slate-600">
                "tokenmeter puts each person's token use in front of them and in front of the admins: monthly quotas per plan, a daily usage history, and one place to run it all."
            </p>
            <div class="mt-8 flex flex-wrap gap-3">
                <A href="/signup" attr:class=BTN_PRIMARY>"Create an account"</A>
                <A href="/login" attr:class=BTN_SECONDARY>"Log in"</A>
            </div>
            <div class="mt-16 grid gap-4 sm:grid-cols-3">
                <Feature title="Quotas that hold" text="Limits are enforced on the server, for the browser and the API alike."/>
                <Feature title="Usage you can read" text="Tokens, requests and cost per day and per model."/>
                <Feature title="Yours to run" text="One binary, SQLite by default, PostgreSQL when you scale out."/>
            </div>
        </section>
    }
}

#[component]
fn Feature(title: &'static str, text: &'static str) -> impl IntoView {
    view! {
        <div class=CARD>
            <h2 class="font-semibold">{title}</h2>
            <p class="mt-2 text-sm text-slate-600">{text}</p>
        </div>
    }
}

#[component]
fn Dashboard(user: UserDto) -> impl IntoView {
    let is_admin = user.is_admin();
    view! {
        <section>
            <h1 class="text-2xl font-bold tracking-tight sm:text-3xl">"Welcome back"</h1>
            <p class="mt-1 text-slate-600">{format!("Signed in as {}", user.email)}</p>
            <div class="mt-8 grid gap-4 sm:grid-cols-2 lg:grid-cols-3">
                <Shortcut href="/chat" title="Chat" text="Start or continue a conversation."/>
                <Shortcut href="/profile" title="Account" text="Your account details."/>
                <Shortcut href="/profile/tokens" title="API tokens" text="Tokens for scripts and programs."/>
                {is_admin.then(|| view! { <Shortcut href="/admin" title="Admin" text="Users, roles and access."/> })}
            </div>
        </section>
    }
}

#[component]
fn Shortcut(href: &'static str, title: &'static str, text: &'static str) -> impl IntoView {
    view! {
        <A href=href attr:class="block rounded-2xl bg-white p-6 shadow-sm ring-1 ring-slate-200 transition hover:ring-indigo-300">
            <h2 class="font-semibold text-slate-900">{title}</h2>
            <p class="mt-1 text-sm text-slate-600">{text}</p>
        </A>
    }
}

/// Any address that is no page: a 404, said as every error page says it ([`ErrorPage`]).
#[component]
pub fn NotFoundPage() -> impl IntoView {
    view! {
        <Title text="Not found"/>
        <ErrorPage error=AppError::new(ErrorCode::NotFound, "There is nothing at this address.")/>
    }
}
