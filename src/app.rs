//! The HTML shell, the root component and the route table: every page of the app is here.

use crate::api::auth::{get_me, Login, Logout, Signup};
use crate::api::error::AppError;
use crate::api::UserDto;
use crate::ui::admin::{AdminLayout, AdminOverviewPage, AdminUsersPage};
use crate::ui::auth::{LoginPage, SignupPage};
use crate::ui::layout::{Footer, TopBar};
use crate::ui::pages::{ChatPage, HomePage, NotFoundPage, PricingPage};
use crate::ui::profile::{AccountTab, ProfilePage, TokensTab};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, SsrMode};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en" class="h-full bg-slate-50">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body class="h-full text-slate-900 antialiased">
                <App/>
            </body>
        </html>
    }
}

/// Who is signed in, and the actions that change it. Provided once by [`App`]; every page that
/// needs the user reads it from context.
#[derive(Clone, Copy)]
pub struct Session {
    pub me: Resource<Result<Option<UserDto>, AppError>>,
    pub login: ServerAction<Login>,
    pub signup: ServerAction<Signup>,
    pub logout: ServerAction<Logout>,
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let login = ServerAction::<Login>::new();
    let signup = ServerAction::<Signup>::new();
    let logout = ServerAction::<Logout>::new();
    // Log-in, sign-up and log-out end in a full page load (see `hydrate`), so the user is
    // fetched once per page load.
    let me = Resource::new(|| (), |_| get_me());
    provide_context(Session {
        me,
        login,
        signup,
        logout,
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/tokenmeter.css"/>
        <Title formatter=|page: String| {
            if page.is_empty() { "tokenmeter".to_string() } else { format!("{page} · tokenmeter") }
        }/>
        <Router>
            <div class="flex min-h-full flex-col">
                <TopBar/>
                <main class="mx-auto w-full max-w-6xl flex-1 px-4 py-6 sm:px-6 sm:py-10">
                    // Pages behind a sign-in render whole before the first byte (SsrMode::Async),
                    // so that a visitor gets a real 302 to /login and a user a real 403.
                    <Routes fallback=|| view! { <NotFoundPage/> }>
                        <Route path=path!("") view=HomePage/>
                        <Route path=path!("login") view=LoginPage/>
                        <Route path=path!("signup") view=SignupPage/>
                        <Route path=path!("chat") view=ChatPage ssr=SsrMode::Async/>
                        <Route path=path!("pricing") view=PricingPage/>
                        <ParentRoute path=path!("profile") view=ProfilePage ssr=SsrMode::Async>
                            <Route path=path!("") view=AccountTab/>
                            <Route path=path!("tokens") view=TokensTab/>
                        </ParentRoute>
                        <ParentRoute path=path!("admin") view=AdminLayout ssr=SsrMode::Async>
                            <Route path=path!("") view=AdminOverviewPage/>
                            <Route path=path!("users") view=AdminUsersPage/>
                        </ParentRoute>
                    </Routes>
                </main>
                <Footer/>
            </div>
        </Router>
    }
}
