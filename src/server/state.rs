//! What every handler can reach: the database, the configuration and Leptos' options.

use crate::server::cache::Caches;
use crate::server::config::Config;
use crate::server::db::Db;
use crate::server::llm::Llm;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub config: Arc<Config>,
    /// The LLM upstream (or the demo model).
    pub llm: Arc<Llm>,
    /// Sessions and usage read recently (see `server::cache`).
    pub caches: Arc<Caches>,
    /// Wakes the job runner's workers.
    pub jobs: Arc<crate::server::jobs::runner::JobQueue>,
    /// Replies streaming on this instance (a shutdown cuts and records them).
    pub replies: Arc<crate::server::chat::Replies>,
    /// The users to check for notifications (see `server::notifications::watch`).
    pub watch: Arc<crate::server::notifications::watch::Watch>,
}
