//! The HTTP server around the router, with the bounds axum's `serve` does not set: a limit on
//! open connections (past it new ones wait in the listen backlog), a timeout for reading a
//! request's head (a client that trickles its headers, or sends nothing, is dropped), an idle
//! timeout for kept-alive connections (no request and no response under way), `TCP_NODELAY`,
//! and a graceful shutdown that ends within its grace: streaming replies still open near its end
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
    // hyper's own header-read timer starts as soon as a connection waits for its next request,
    // so it would close every kept-alive connection after the header-read timeout, whatever the
    // keep-alive timeout says: the connection's watch below times heads and idleness apart.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
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
            let activity = Arc::new(Activity::new(limits));
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
            let stream = Watched {
                inner: stream,
                activity: activity.clone(),
            };
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            tokio::select! {
                served = watcher.watch(connection) => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                }
                why = activity.expired() => {
                    tracing::debug!(%peer, "connection closed: {why}");
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

/// What a connection is doing: requests (with their responses' bodies) under way, when the
/// last one began or ended, and since when the head of the next one is arriving.
struct Activity {
    limits: Limits,
    under_way: AtomicUsize,
    last: Mutex<Instant>,
    /// Set by the first bytes read while no request is under way, cleared when a request
    /// starts (its head was read).
    head_since: Mutex<Option<Instant>>,
    head_started: tokio::sync::Notify,
}

impl Activity {
    fn new(limits: Limits) -> Self {
        Activity {
            limits,
            under_way: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
            head_since: Mutex::new(None),
            head_started: tokio::sync::Notify::new(),
        }
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Bytes came in.
    fn read_some(&self) {
        if self.under_way.load(Ordering::Acquire) > 0 {
            return; // a request's body
        }
        let mut since = self.head_since.lock().unwrap_or_else(|e| e.into_inner());
        if since.is_none() {
            *since = Some(Instant::now());
            self.head_started.notify_one();
        }
    }

    /// Resolves, with the reason, once the connection should be closed: a request's head has
    /// been arriving for longer than the header-read timeout, or nothing has been under way for
    /// the keep-alive timeout. It wakes when that could first be so, when a head starts, and
    /// while a request is under way (a long stream) once a keep-alive timeout.
    async fn expired(&self) -> &'static str {
        let Limits {
            header_read_timeout: head_limit,
            keep_alive_timeout: idle_limit,
            ..
        } = self.limits;
        loop {
            let head = *self.head_since.lock().unwrap_or_else(|e| e.into_inner());
            let idle = self
                .last
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed();
            let wait = if self.under_way.load(Ordering::Acquire) > 0 {
                idle_limit
            } else if let Some(head) = head {
                match head_limit.checked_sub(head.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return "the request head took longer than the header-read timeout",
                }
            } else {
                match idle_limit.checked_sub(idle) {
                    Some(left) if !left.is_zero() => left,
                    _ => return "idle for the keep-alive timeout",
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.head_started.notified() => {}
            }
        }
    }
}

/// One request under way on its connection, until dropped.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Self {
        activity.under_way.fetch_add(1, Ordering::AcqRel);
        *activity
            .head_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
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

/// The connection's socket, telling its [`Activity`] when bytes come in.
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, data)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
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
