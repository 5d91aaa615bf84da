//! The guard every request's text passes before any handler reads it: a body is read up to a
//! bound (413 past it), and text carrying NUL (U+0000), which PostgreSQL refuses in `text` and
//! `jsonb`, is a 400 naming the field, on both databases alike, in a query string, a JSON
//! body or a form. The REST API answers in its envelope, server functions with their error.

use crate::api::error::AppError;
use crate::domain::text::{nul_message, nul_path, NUL};
use crate::server::rest::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest request body accepted (a chat request at its caps fits with room to spare).
pub const MAX_BODY_BYTES: usize = 4 << 20;

pub async fn guard(request: Request, next: Next) -> Response {
    let fn_call = request
        .uri()
        .path()
        .starts_with(crate::api::SERVER_FN_PREFIX);
    let refuse = |status: StatusCode, error: AppError| -> Response {
        if fn_call {
            (status, axum::Json(error)).into_response()
        } else {
            let mut response = ApiError(error).into_response();
            *response.status_mut() = status;
            response
        }
    };
    if let Some(field) = request.uri().query().and_then(nul_in_form) {
        return refuse(
            StatusCode::BAD_REQUEST,
            AppError::validation(nul_message(&field)),
        );
    }
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match read_bounded(body).await {
        Ok(bytes) => bytes,
        Err(Unread::TooLarge) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                AppError::validation(format!(
                    "the request body must be at most {MAX_BODY_BYTES} bytes"
                )),
            )
        }
        Err(Unread::Broken) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                AppError::validation("the request body could not be read"),
            )
        }
    };
    if let Some(field) = nul_in_body(&bytes) {
        return refuse(
            StatusCode::BAD_REQUEST,
            AppError::validation(nul_message(&field)),
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Past this, an oversized body is not even read to its end (the connection is dropped).
const MAX_DISCARDED_BYTES: usize = 4 * MAX_BODY_BYTES;

enum Unread {
    TooLarge,
    Broken,
}

/// The body, up to [`MAX_BODY_BYTES`]. Past that the rest is read and thrown away (up to
/// [`MAX_DISCARDED_BYTES`]; the request timeout bounds the time) so that the client, still
/// sending, can read the 413 instead of a broken connection; memory stays at the bound.
async fn read_bounded(mut body: Body) -> Result<Bytes, Unread> {
    use http_body_util::BodyExt;
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| Unread::Broken)?.into_data() else {
            continue; // trailers
        };
        total += data.len();
        if total <= MAX_BODY_BYTES {
            kept.extend_from_slice(&data);
        } else if total > MAX_DISCARDED_BYTES {
            break;
        }
    }
    if total > MAX_BODY_BYTES {
        Err(Unread::TooLarge)
    } else {
        Ok(Bytes::from(kept))
    }
}

/// The field of a JSON or form body that carries a NUL. Cheap for the usual body: only one
/// that holds a NUL in some spelling (`\u0000` in JSON, `%00` in a form, the byte itself) is
/// parsed.
fn nul_in_body(bytes: &Bytes) -> Option<String> {
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    if !(has(b"\\u0000") || has(b"%00") || bytes.contains(&0)) {
        return None;
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        return nul_path(&value);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => nul_in_form(text),
        Err(_) => bytes.contains(&0).then(|| "body".to_string()),
    }
}

/// The first key of a form (or query string) whose name or value decodes to text with NUL.
fn nul_in_form(form: &str) -> Option<String> {
    if !form.contains("%00") {
        return None;
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(form).ok()?;
    pairs
        .into_iter()
        .find(|(k, v)| k.contains(NUL) || v.contains(NUL))
        .map(|(k, _)| crate::domain::text::without_nul(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_field_with_a_nul() {
        for (body, want) in [
            (
                r#"{"messages":[{"role":"user","content":"a\u0000b"}]}"#,
                Some("messages[0].content"),
            ),
            (r#"{"title":"fine"}"#, None),
            (r#"{"title":"\\u0000 is written out"}"#, None),
            ("email=a%40b.c&password=x%00y", Some("password")),
            ("email=a%40b.c&password=100%25", None),
        ] {
            assert_eq!(nul_in_body(&Bytes::from(body)).as_deref(), want, "{body}");
        }
        assert_eq!(nul_in_form("type=usage_sync%00").as_deref(), Some("type"));
        assert_eq!(nul_in_form("type=usage_sync"), None);
    }
}
