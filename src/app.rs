//! The HTML shell, the root component and the route table: every page of the app is here.

use crate::ui::admin::{
    AdminJobsPage, AdminLayout, AdminOverviewPage, AdminPlansPage, AdminUsagePage,
    AdminUserDetailPage, AdminUsersPage,
};
use crate::ui::auth::{LoginPage, SignupPage, SignupPendingPage};
use crate::ui::chat::ChatPage;
use crate::ui::common::Guarded;
use crate::ui::layout::{Footer, TopBar};
use crate::ui::notifications::NotificationsPage;
use crate::ui::pages::{HomePage, NotFoundPage};
use crate::ui::profile::{AccountTab, ProfilePage, TokensTab, UsageTab};
use crate::ui::quota::{provide_usage, PricingPage, UsageBanner};
use crate::ui::session::{signed_in_user_json, Session};
use crate::ui::time::{zone_name, DisplayZone};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{lazy_route, path, Lazy, LazyRoute};

/// The stylesheet's address (with the build's hash when it has one).
fn stylesheet_href(output_name: &str) -> String {
    #[cfg(feature = "ssr")]
    return crate::server::assets::stylesheet_href(output_name);
    #[cfg(not(feature = "ssr"))]
    format!("/pkg/{output_name}.css")
}

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en" class="h-full bg-slate-50">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <meta name="tm-user" content=signed_in_user_json()/>
                <meta name="tm-timezone" content=crate::ui::time::zone_name()/>
                // Here, not a `<Stylesheet>` in `App`: its address carries the build's hash,
                // which only the server knows (this shell is never hydrated).
                <link rel="stylesheet" id="leptos" href=stylesheet_href(&options.output_name)/>
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

/// Whether the page has hydrated (provided in the browser only). Hydration waits for the code of
/// the page shown (pages are loaded lazily), and the parts of the frame hydrated before it are
/// live meanwhile: whatever would change what the server rendered (data fetched by the frame,
/// such as the usage banner's) waits for this, or the page would no longer match the HTML still
/// being hydrated.
#[derive(Clone, Copy)]
pub struct Hydrated(pub ReadSignal<bool>);

impl Hydrated {
    /// True on the server (nothing to wait for) and once the browser has hydrated; tracked.
    pub fn get() -> bool {
        use_context::<Hydrated>().is_none_or(|h| h.0.get())
    }

    /// The same, untracked.
    pub fn get_untracked() -> bool {
        use_context::<Hydrated>().is_none_or(|h| h.0.get_untracked())
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    Session::provide();
    provide_usage();
    provide_context(DisplayZone(zone_name()));

    view! {
        <Title formatter=|page: String| {
            if page.is_empty() { "tokenmeter".to_string() } else { format!("{page} · tokenmeter") }
        }/>
        <Router>
            <div class="flex min-h-full flex-col">
                <TopBar/>
                <main class="mx-auto w-full max-w-6xl flex-1 px-4 py-6 sm:px-6 sm:py-10">
                    // Visitors of signed-in pages never get here: `auth::page_guard` answers them
                    // with a 302 to /login before rendering.
                    <UsageBanner/>
                    <Routes fallback=|| view! { <NotFoundPage/> }>
                        <Route path=path!("") view={Lazy::<HomeRoute>::new()}/>
                        <Route path=path!("login") view={Lazy::<LoginRoute>::new()}/>
                        <Route path=path!("signup") view={Lazy::<SignupRoute>::new()}/>
                        <Route path=path!("signup/pending") view={Lazy::<SignupPendingRoute>::new()}/>
                        <Route path=path!("chat") view={Lazy::<ChatRoute>::new()}/>
                        <Route path=path!("chat/:id") view={Lazy::<ChatRoute>::new()}/>
                        <Route path=path!("pricing") view={Lazy::<PricingRoute>::new()}/>
                        <Route path=path!("notifications") view={Lazy::<NotificationsRoute>::new()}/>
                        <ParentRoute path=path!("profile") view={Lazy::<ProfileRoute>::new()}>
                            <Route path=path!("") view={Lazy::<ProfileAccountRoute>::new()}/>
                            <Route path=path!("usage") view={Lazy::<ProfileUsageRoute>::new()}/>
                            <Route path=path!("tokens") view={Lazy::<ProfileTokensRoute>::new()}/>
                        </ParentRoute>
                        <ParentRoute path=path!("admin") view={Lazy::<AdminRoute>::new()}>
                            <Route path=path!("") view={Lazy::<AdminOverviewRoute>::new()}/>
                            <Route path=path!("users") view={Lazy::<AdminUsersRoute>::new()}/>
                            <Route path=path!("users/:id") view={Lazy::<AdminUserDetailRoute>::new()}/>
                            <Route path=path!("usage") view={Lazy::<AdminUsageRoute>::new()}/>
                            <Route path=path!("plans") view={Lazy::<AdminPlansRoute>::new()}/>
                            <Route path=path!("jobs") view={Lazy::<AdminJobsRoute>::new()}/>
                        </ParentRoute>
                    </Routes>
                </main>
                <Footer/>
            </div>
        </Router>
    }
}

/// Declares a route whose page is loaded on demand, behind [`Guarded`] (who may see it: see
/// `api::access::PAGES`): in the release build (`--split`) the
/// page's code is a wasm file of its own, fetched when the route is first shown (and
/// preloaded by the server's `<link rel=modulepreload>` when the page is loaded directly), so
/// no page downloads the code of the pages it does not show.
macro_rules! lazy_pages {
    ($($route:ident => $page:ident),* $(,)?) => {$(
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                view! { <Guarded><$page/></Guarded> }.into_any()
            }
        }
    )*};
}

lazy_pages! {
    HomeRoute => HomePage,
    LoginRoute => LoginPage,
    SignupRoute => SignupPage,
    SignupPendingRoute => SignupPendingPage,
    ChatRoute => ChatPage,
    PricingRoute => PricingPage,
    NotificationsRoute => NotificationsPage,
    ProfileRoute => ProfilePage,
    ProfileAccountRoute => AccountTab,
    ProfileUsageRoute => UsageTab,
    ProfileTokensRoute => TokensTab,
    AdminRoute => AdminLayout,
    AdminOverviewRoute => AdminOverviewPage,
    AdminUsersRoute => AdminUsersPage,
    AdminUserDetailRoute => AdminUserDetailPage,
    AdminUsageRoute => AdminUsagePage,
    AdminPlansRoute => AdminPlansPage,
    AdminJobsRoute => AdminJobsPage,
}
