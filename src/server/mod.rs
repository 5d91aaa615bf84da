//! Everything that only runs on the server: the only place sqlx, axum and tokio appear.

pub mod accounts;
pub mod assets;
pub mod auth;
pub mod cache;
pub mod chat;
pub mod cli;
pub mod config;
pub mod csrf;
pub mod db;
pub mod error;
pub mod http;
pub mod input;
pub mod jobs;
pub mod llm;
pub mod markdown;
pub mod notifications;
pub mod quota;
pub mod rest;
pub mod secret;
pub mod state;
pub mod telemetry;
pub mod usage_analytics;
pub mod usage_reconcile;
pub mod usage_sync;
pub mod work;

use crate::app::{shell, App};
use crate::server::config::Config;
use crate::server::db::Db;
use crate::server::error::{Error, Result};
use crate::server::state::AppState;
use axum::http::{HeaderName, Request};
use axum::Router;
use leptos::config::{Env, LeptosOptions};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::sync::Arc;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// Leptos' options from cargo-leptos' variables when it runs us, else the defaults of
/// `[package.metadata.leptos]` in Cargo.toml (the release binary reads no file).
pub fn leptos_options(config: &Config) -> LeptosOptions {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    LeptosOptions::builder()
        .output_name(var("LEPTOS_OUTPUT_NAME", "tokenmeter"))
        .site_root(var("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(var("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(config.addr)
        .reload_port(var("LEPTOS_RELOAD_PORT", "3001").parse().unwrap_or(3001))
        .hash_files(assets::hash_files())
        .env(if var("LEPTOS_ENV", "DEV").eq_ignore_ascii_case("PROD") {
            Env::PROD
        } else {
            Env::DEV
        })
        .build()
}

/// Connects, migrates and (on a server without one) creates the first admin.
pub async fn init_state(config: Config) -> Result<AppState> {
    let db = Db::connect(&config.database_url, config.db_max_connections).await?;
    db.migrate().await?;
    // Only LiteLLM keys are stored encrypted; without LiteLLM no secret file is needed.
    let secrets = match config.upstream {
        config::Upstream::LiteLlm { .. } => {
            secret::SecretBox::load(config.secret.as_deref(), &config.secret_file)?
        }
        _ => secret::SecretBox::new(&auth::new_secret("").0),
    };
    let llm = llm::Llm::new(&config, secrets)?;
    // The tokenizer's tables (o200k: most of an idle server's memory) load on first need, on
    // the counting pool (see `llm::tokens`), not at start.
    // SQLite is this process's own file: nothing changes behind its back. PostgreSQL may be
    // shared by several instances: caching starts once their change notices are heard.
    let caches = cache::Caches::new(config.cache_ttl, matches!(db, db::Db::Sqlite(_)));
    let state = AppState {
        leptos_options: leptos_options(&config),
        db,
        config: Arc::new(config),
        llm: Arc::new(llm),
        caches: Arc::new(caches),
        jobs: Arc::default(),
        replies: Arc::default(),
        watch: Arc::default(),
    };
    cache::listen(&state);
    notifications::watch::start(&state);
    if let Some((admin, generated)) = accounts::ensure_admin(&state).await? {
        match generated {
            Some(password) => {
                // Printed once, on stdout, so that whoever started the server can sign in.
                println!(
                    "\n  Created the first admin: {}\n  Password (shown once): {password}\n",
                    admin.email
                );
            }
            None => tracing::info!(email = %admin.email, "created the first admin"),
        }
    }
    Ok(state)
}

/// The whole app: REST API, server functions, pages, static files, and the layers every
/// request goes through (request id, tracing span, CSRF check).
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let request_id = HeaderName::from_static("x-request-id");
    let context_state = state.clone();
    let shell_options = state.leptos_options.clone();
    Router::new()
        .merge(rest::routes())
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(context_state.clone()),
            move || shell(shell_options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::page_guard,
        ))
        .layer(axum::middleware::from_fn(error::server_fn_status))
        .layer(axum::middleware::from_fn(input::guard))
        // Before the body is read: a call its caller may not make is refused on its headers.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::fn_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::guard,
        ))
        .layer(axum::middleware::from_fn(assets::cache_control))
        // Pages, JSON and CSV in brotli or gzip as the client accepts (not event streams, nor
        // the files under /pkg/: see `assets`).
        .layer(
            tower_http::compression::CompressionLayer::new()
                .compress_when(assets::Compressible::default()),
        )
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                        .on_failure(log_failure)
                        .make_span_with(|req: &Request<_>| {
                            let id = req
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            tracing::info_span!(
                                "request",
                                method = %req.method(),
                                uri = %crate::domain::text::for_log(req.uri().path(), 200),
                                request_id = %id
                            )
                        }),
                )
                .layer(PropagateRequestIdLayer::new(request_id)),
        )
        .layer(axum::middleware::map_response(assets::without_request_id))
        .with_state(state)
}

/// A 5xx is an error in the log, except a 503: the server refusing work it has no room for
/// (a burst of log-ins, the database away) is its bounds working, and already has its line
/// from the response log.
fn log_failure(
    class: tower_http::classify::ServerErrorsFailureClass,
    latency: std::time::Duration,
    _span: &tracing::Span,
) {
    use tower_http::classify::ServerErrorsFailureClass::StatusCode;
    match class {
        StatusCode(status) if status == axum::http::StatusCode::SERVICE_UNAVAILABLE => {}
        class => tracing::error!(
            classification = %class,
            latency_ms = latency.as_millis() as u64,
            "response failed"
        ),
    }
}

/// Sets `TCP_NODELAY` on every accepted connection (for servers that use axum's `serve`: the
/// tests' fake upstreams). A streamed reply is written in small pieces; with Nagle's algorithm
/// each piece after the response head waited for the client's delayed ACK (~40 ms).
pub fn without_nagle(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    fn no_delay(tcp: &mut tokio::net::TcpStream) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    }
    listener.tap_io(no_delay as fn(&mut tokio::net::TcpStream))
}

/// Serves the app of `state` on `listener` until `shutdown` resolves; then stops taking work,
/// cuts the replies still streaming shortly before the grace ends (each is recorded), and
/// waits for their records.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let config = state.config.clone();
    let replies = state.replies.clone();
    let queue = state.jobs.clone();
    let limits = http::Limits {
        max_connections: config.max_connections,
        header_read_timeout: config.header_read_timeout,
        keep_alive_timeout: config.keep_alive_timeout,
        shutdown_grace: config.shutdown_grace,
    };
    let app = router(state);
    let grace = config.shutdown_grace;
    let cutter = replies.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!(grace_secs = grace.as_secs(), "shutting down");
        queue.close();
        // Replies still streaming near the end of the grace are cut (and recorded).
        tokio::spawn(async move {
            tokio::time::sleep(grace.saturating_sub(std::time::Duration::from_secs(2))).await;
            cutter.cut_all();
        });
    };
    http::serve(listener, app, limits, shutdown, || {}).await;
    replies.cut_all();
    if !replies.finish(std::time::Duration::from_secs(5)).await {
        tracing::error!("some replies were still being recorded at exit");
    }
}

/// Serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    let addr = config.addr;
    let state = init_state(config).await?;
    let db = state.db.clone();
    let runner = jobs::runner::Runner::start(&state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::internal(format!("cannot listen on {addr}: {e}")))?;
    tracing::info!(backend = db.backend(), "listening on http://{addr}");
    serve_on(listener, state, shutdown_signal()).await;
    if let Some(runner) = runner {
        runner.stop().await;
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            sig.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
