//! CSRF defence: a state-changing request whose `Origin` (or, failing that, `Referer`) names
//! another site is refused, and one that carries the session cookie must name ours. Programs
//! that send neither header and no cookie (curl with a bearer token) are not at risk and pass.
//! The cookie is also `SameSite=Lax`, so this is the second of two locks.

use crate::api::error::AppError;
use crate::server::auth::session_secret;
use crate::server::rest::ApiError;
use crate::server::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN, REFERER};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if is_safe(request.method()) {
        return next.run(request).await;
    }
    match verdict(
        request.headers(),
        state.config.public_url.as_deref(),
        state.config.trust_proxy,
    ) {
        Ok(()) => next.run(request).await,
        Err(reason) => {
            tracing::warn!(%reason, method = %request.method(), uri = %request.uri(), "CSRF check refused a request");
            ApiError(AppError::forbidden(format!(
                "cross-site request refused: {reason}"
            )))
            .into_response()
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Decides on a state-changing request. The origin must be this site: scheme and authority.
/// With `TOKENMETER_PUBLIC_URL` set, that address is the only one accepted, so a page whose
/// name was re-pointed at this server (DNS rebinding: `Origin` and `Host` then agree) is still
/// refused. Without it, the origin must name the `Host` the request was sent to, over the
/// scheme it came by (https only when a trusted proxy says so).
fn verdict(headers: &HeaderMap, public_url: Option<&str>, trust_proxy: bool) -> Result<(), String> {
    let source = headers
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(origin_of)
        });
    let has_cookie = session_secret(headers).is_some();
    match source {
        None if has_cookie => Err("no Origin or Referer header on a request with a session".into()),
        None => Ok(()),
        Some(origin) => {
            // A foreign origin is refused with or without a session: a log-in or sign-up
            // form on another site must not sign the browser in either.
            let ours = match public_url {
                Some(public) => origin.eq_ignore_ascii_case(public),
                None => {
                    let scheme = if trust_proxy
                        && headers
                            .get("x-forwarded-proto")
                            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
                    {
                        "https"
                    } else {
                        "http"
                    };
                    headers
                        .get(HOST)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|host| {
                            origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
                        })
                }
            };
            if ours {
                Ok(())
            } else {
                Err(format!(
                    "origin {} is not this site",
                    crate::domain::text::for_log(&origin, 100)
                ))
            }
        }
    }
}

/// `https://host:port/path?q` -> `https://host:port`
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn verdicts() {
        const COOKIE: (&str, &str) = ("cookie", "tm_session=abc");
        const HOST: (&str, &str) = ("host", "127.0.0.1:3000");
        type Case = (
            &'static [(&'static str, &'static str)],
            Option<&'static str>,
            bool,
        );
        let cases: &[Case] = &[
            (
                &[HOST, COOKIE, ("origin", "http://127.0.0.1:3000")],
                None,
                true,
            ),
            (
                &[HOST, COOKIE, ("origin", "http://evil.example")],
                None,
                false,
            ),
            // The right host over the wrong scheme is another origin.
            (
                &[HOST, COOKIE, ("origin", "https://127.0.0.1:3000")],
                None,
                false,
            ),
            (
                &[HOST, COOKIE, ("referer", "http://127.0.0.1:3000/profile")],
                None,
                true,
            ),
            (
                &[HOST, COOKIE, ("referer", "http://evil.example/x")],
                None,
                false,
            ),
            (&[HOST, COOKIE], None, false),
            (&[HOST], None, true),
            (&[HOST, ("origin", "http://evil.example")], None, false),
            (
                &[
                    ("host", "10.0.0.5:3000"),
                    COOKIE,
                    ("origin", "https://chat.example.com"),
                ],
                Some("https://chat.example.com"),
                true,
            ),
            // DNS rebinding: a foreign name pointed at this server; Host and Origin agree.
            (
                &[
                    ("host", "rebound.evil.example:3000"),
                    COOKIE,
                    ("origin", "http://rebound.evil.example:3000"),
                ],
                Some("https://chat.example.com"),
                false,
            ),
            (
                &[HOST, ("origin", "http://127.0.0.1:3000")],
                Some("https://chat.example.com"),
                false,
            ),
            (&[HOST, COOKIE, ("origin", "null")], None, false),
        ];
        for (pairs, public, allowed) in cases {
            let h = headers(pairs);
            assert_eq!(verdict(&h, *public, false).is_ok(), *allowed, "{pairs:?}");
        }
        // Behind a trusted proxy that says https, the https origin is ours.
        let h = headers(&[
            HOST,
            COOKIE,
            ("origin", "https://127.0.0.1:3000"),
            ("x-forwarded-proto", "https"),
        ]);
        assert!(verdict(&h, None, true).is_ok());
        assert!(verdict(&h, None, false).is_err());
    }

    #[test]
    fn safe_methods_pass() {
        assert!(is_safe(&Method::GET));
        assert!(!is_safe(&Method::POST));
        assert!(!is_safe(&Method::DELETE));
    }
}
