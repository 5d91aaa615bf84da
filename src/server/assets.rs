//! The site's static files as the browser should get them: hashed names (cargo-leptos'
//! `hash-files`, listed in `hash.txt` beside the binary) cached for a year, everything else
//! revalidated; and which responses the compression layer leaves alone (files under `/pkg/`
//! come precompressed from a release build, `--precompress`, or not at all in development:
//! compressing a debug build's wasm on every load would cost more than it saves).

use axum::extract::Request;
use axum::http::header::{ACCEPT_RANGES, CACHE_CONTROL, CONTENT_TYPE, LAST_MODIFIED, VARY};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The `kind: hash` lines of cargo-leptos' `hash.txt` next to the running binary (`js`, `wasm`,
/// `css`, with `--split` also `manifest` and `split`); empty when the build did not hash.
fn hashes() -> &'static HashMap<String, String> {
    static HASHES: OnceLock<HashMap<String, String>> = OnceLock::new();
    HASHES.get_or_init(|| {
        let name = std::env::var("LEPTOS_HASH_FILE_NAME").unwrap_or_else(|_| "hash.txt".into());
        let Some(path) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        else {
            return HashMap::new();
        };
        std::fs::read_to_string(path)
            .map(|text| parse_hashes(&text))
            .unwrap_or_default()
    })
}

fn parse_hashes(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(kind, hash)| (kind.trim().to_string(), hash.trim().to_string()))
        .filter(|(kind, hash)| !kind.is_empty() && !hash.is_empty())
        .collect()
}

/// Whether the site's file names carry their hashes (Leptos' `hash_files`): when cargo-leptos
/// says so, else when its `hash.txt` is there.
pub fn hash_files() -> bool {
    match std::env::var("LEPTOS_HASH_FILES") {
        Ok(value) => value.eq_ignore_ascii_case("true"),
        Err(_) => hashes().contains_key("wasm"),
    }
}

/// The stylesheet's address, with its hash when the build hashed it.
pub fn stylesheet_href(output_name: &str) -> String {
    match hashes().get("css").filter(|_| hash_files()) {
        Some(hash) => format!("/pkg/{output_name}.{hash}.css"),
        None => format!("/pkg/{output_name}.css"),
    }
}

/// A file name with a content hash in it: a segment of cargo-leptos' 22 URL-safe base64
/// characters (an MD5) between dots (`tokenmeter.<hash>.wasm`, `__wasm_split.<hash>.js`),
/// not the 22 underscores of an unhashed split loader.
fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let segments: Vec<&str> = name.split('.').collect();
    segments.len() >= 3
        && segments[1..segments.len() - 1].iter().any(|s| {
            s.len() == 22
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !s.bytes().all(|b| b == b'_')
        })
}

/// Marks a response the compression layer must leave as it is.
#[derive(Clone, Copy)]
pub struct Uncompressed;

/// The compression layer's rule: its defaults (not tiny bodies, images, event streams or gRPC)
/// and nothing marked [`Uncompressed`].
#[derive(Clone, Default)]
pub struct Compressible(tower_http::compression::DefaultPredicate);

impl tower_http::compression::Predicate for Compressible {
    fn should_compress<B: axum::body::HttpBody>(&self, response: &axum::http::Response<B>) -> bool {
        response.extensions().get::<Uncompressed>().is_none() && self.0.should_compress(response)
    }
}

/// `Cache-Control` for what has none: hashed files under `/pkg/` for a year (`immutable`: a new
/// build has new names, so a second visit downloads no wasm), other files under `/pkg/`
/// revalidated on every use, pages private and revalidated (they carry the user's data).
/// A hashed file is never revalidated nor fetched in parts: it goes without `Last-Modified` and
/// `Accept-Ranges` (a first load fetches a hundred such files; their headers count too). Every
/// file under `/pkg/` says it `Vary`s with `Accept-Encoding` (it is served in brotli, gzip or
/// neither as the client takes them), so that a shared cache does not hand one client's
/// encoding to another.
pub async fn cache_control(request: Request, next: Next) -> Response {
    let pkg = request.uri().path().starts_with("/pkg/");
    let hashed = pkg && is_hashed(request.uri().path());
    let mut response = next.run(request).await;
    if pkg {
        response.extensions_mut().insert(Uncompressed);
        if response.status().is_success() && !response.headers().contains_key(VARY) {
            response
                .headers_mut()
                .insert(VARY, HeaderValue::from_static("accept-encoding"));
        }
    }
    if response.headers().contains_key(CACHE_CONTROL) || !response.status().is_success() {
        return response;
    }
    let html = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let value = if hashed {
        response.headers_mut().remove(LAST_MODIFIED);
        response.headers_mut().remove(ACCEPT_RANGES);
        IMMUTABLE
    } else if pkg {
        "no-cache"
    } else if html {
        "private, no-cache"
    } else {
        return response;
    };
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static(value));
    response
}

/// What a hashed file's `Cache-Control` says (see [`cache_control`]).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A file cached for a year goes without the request id every other answer carries: nobody
/// correlates it with a log line (its answer is not an event), and on a first load of the chat
/// the id's 56 bytes came back with each of its hundred-odd files. Outside the layer that
/// copies the id onto answers.
pub async fn without_request_id(mut response: Response) -> Response {
    if response
        .headers()
        .get(CACHE_CONTROL)
        .is_some_and(|v| v == IMMUTABLE)
    {
        response.headers_mut().remove("x-request-id");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_leptos_hash_file() {
        let hashes = parse_hashes(
            "js: Ab-dE_fGhIjKlMnOpQrStu\nwasm: 0123456789abcdefABCDEF\ncss: x\n\nbroken\n",
        );
        assert_eq!(hashes["js"], "Ab-dE_fGhIjKlMnOpQrStu");
        assert_eq!(hashes["wasm"], "0123456789abcdefABCDEF");
        assert_eq!(hashes["css"], "x");
        assert_eq!(hashes.len(), 3);
    }

    #[test]
    fn knows_hashed_names() {
        for path in [
            "/pkg/tokenmeter.Ab-dE_fGhIjKlMnOpQrStu.wasm",
            "/pkg/tokenmeter.0123456789abcdefABCDEF.js",
            "/pkg/__wasm_split.0123456789abcdefABCDEF.js",
            "/pkg/tokenmeter.0123456789abcdefABCDEF.wasm.br",
        ] {
            assert!(is_hashed(path), "{path}");
        }
        for path in [
            "/pkg/tokenmeter.wasm",
            "/pkg/tokenmeter_bg.wasm",
            "/pkg/tokenmeter.css",
            "/pkg/__wasm_split.______________________.js",
            "/pkg/tokenmeter.short.js",
            "/pkg/0123456789abcdefABCDEF",
        ] {
            assert!(!is_hashed(path), "{path}");
        }
    }
}
