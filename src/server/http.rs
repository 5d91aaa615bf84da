//! The HTTP server around the router, with the bounds axum's `serve` does not set: a limit on
//! open connections (past it new ones wait in the listen backlog), a timeout for reading a
//! request's head (a client that trickles its headers, or sends nothing, is dropped), an idle
//! timeout for kept-alive connections (no request and no response under way), `TCP_NODELAY`,
//! and a
//! graceful shutdown that ends within its grace: streaming replies still open near its end
//! are cut and recorded (see [`crate::server::chat`]), then whatever remains is closed.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How the server bounds its connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may sit with no request and no response under way.
    pub keep_alive_timeout: Duration,
    /// How long a shutdown waits for open requests before it closes them.
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains the connections for at
/// most the grace. `on_draining` is called once the listener is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    on_draining: impl FnOnce(),
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            // A streamed reply is written in small pieces; Nagle's algorithm would hold each
            // one for the client's delayed ACK.
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let router = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_bytes = limits.header_read_timeout;
        let keep_alive = limits.keep_alive_timeout;
        tokio::spawn(async move {
            // hyper's header timer starts with the first byte: a connection that sends nothing
            // at all would hold its place for ever.
            // (`readable()` may report readiness spuriously; a peek waits for a real byte.)
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(first_bytes, stream.peek(&mut first)).await,
                Ok(Ok(1..))
            ) {
                tracing::debug!(%peer, "connection sent nothing; closed");
                drop(permit);
                return;
            }
            let activity = Arc::new(Activity::new());
            let counted = activity.clone();
            let service = hyper::service::service_fn(move |mut request| {
                request.extensions_mut().insert(ConnectInfo(peer));
                // Under way from the request until its response's body is done or dropped.
                let busy = Busy::new(counted.clone());
                let response = router.clone().oneshot(request);
                async move {
                    let response = response.await?;
                    Ok::<_, std::convert::Infallible>(response.map(|body| {
                        axum::body::Body::new(http_body_util::BodyExt::map_frame(body, move |f| {
                            let _ = &busy;
                            f
                        }))
                    }))
                }
            });
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            tokio::select! {
                served = watcher.watch(connection) => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                }
                () = activity.idle_for(keep_alive) => {
                    tracing::debug!(%peer, "kept-alive connection idle; closed");
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    on_draining();
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("every connection closed"),
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(grace_secs = limits.shutdown_grace.as_secs(), "grace over; closing the connections still open");
        }
    }
}

/// What a connection is doing: requests (with their responses' bodies) under way, and when the
/// last one began or ended.
struct Activity {
    under_way: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            under_way: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        }
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Resolves once nothing has been under way for `limit`. It wakes when that could first be
    /// so, and while a request is under way (a long stream) once a `limit`: its end sets
    /// `last`, from which the idle time counts.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let idle = self
                .last
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed();
            let wait = if self.under_way.load(Ordering::Acquire) > 0 {
                limit
            } else if idle >= limit {
                return;
            } else {
                limit - idle
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// One request under way on its connection, until dropped.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Self {
        activity.under_way.fetch_add(1, Ordering::AcqRel);
        activity.touch();
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.under_way.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers 503 `busy` when a request takes longer than the configured request timeout to be
/// answered (its work is dropped: a transaction under way is rolled back). This bounds the
/// time to a response's head; `POST /api/chat/completions` is exempt because its whole-reply
/// form answers when the reply ends, bounded by the upstream's timeout between chunks and
/// the reply's size instead. (Event streams answer their head at once.)
pub async fn request_timeout(
    axum::extract::State(state): axum::extract::State<crate::server::state::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request.uri().path() == "/api/chat/completions" {
        return next.run(request).await;
    }
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            // The request's span names the method and path.
            tracing::warn!(limit_secs = limit.as_secs(), "request timed out");
            crate::server::rest::ApiError(crate::api::error::AppError::new(
                crate::api::error::ErrorCode::Busy,
                format!(
                    "the request took longer than {} s; try again",
                    limit.as_secs()
                ),
            ))
            .into_response()
        }
    }
}
