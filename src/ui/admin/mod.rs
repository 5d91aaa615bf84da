//! The admin area: its layout with the sidebar, the overview and user management.

mod admin_sidebar;
mod jobs;
mod plans_page;
mod usage_page;
mod user_detail_page;
mod users_page;

pub use admin_sidebar::AdminSidebar;
pub use jobs::AdminJobsPage;
pub use plans_page::AdminPlansPage;
pub use usage_page::AdminUsagePage;
pub use user_detail_page::AdminUserDetailPage;
pub use users_page::AdminUsersPage;

use crate::api::admin::admin_user_counts;
use crate::ui::common::{resource, ErrorNotice, Loading, CARD};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Outlet;

#[component]
pub fn AdminLayout() -> impl IntoView {
    view! {
        <Title text="Admin"/>
        <div class="flex flex-col gap-6 lg:flex-row">
            <AdminSidebar/>
            <div class="min-w-0 flex-1"><Outlet/></div>
        </div>
    }
}

#[component]
pub fn AdminOverviewPage() -> impl IntoView {
    let counts = resource(|| (), |_| admin_user_counts());
    view! {
        <h1 class="text-2xl font-bold tracking-tight">"Overview"</h1>
        <Transition fallback=|| view! { <Loading/> }>
            {move || counts.get().map(|r| match r {
                Err(e) => view! { <div class="mt-4"><ErrorNotice message=e.message/></div> }.into_any(),
                Ok(c) => view! {
                    <div class="mt-6 grid gap-4 sm:grid-cols-3">
                        <Stat label="Users" value=c.users/>
                        <Stat label="Admins" value=c.admins/>
                        <Stat label="Disabled" value=c.disabled/>
                    </div>
                }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn Stat(label: &'static str, value: i64) -> impl IntoView {
    view! {
        <div class=CARD>
            <p class="text-sm text-slate-500">{label}</p>
            <p class="mt-1 text-3xl font-bold tabular-nums">{value}</p>
        </div>
    }
}
