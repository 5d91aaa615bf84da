//! Who is calling: sessions (cookie), personal API tokens (`Authorization: Bearer`), password
//! hashing, and the `require_user` / `require_admin` checks every handler starts with.

use crate::api::error::AppError;
use crate::api::UserDto;
use crate::domain::account::{Approval, Role};
use crate::server::cache::CachedSession;
use crate::server::db::{self, api_tokens, sessions, users::UserRow};
use crate::server::error::{Error, Result};
use crate::server::state::AppState;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts};
use base64::Engine;
use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use uuid::Uuid;

pub const SESSION_COOKIE: &str = "tm_session";
/// Prefix of personal API tokens, so that a leaked one is recognisable (and greppable).
pub const TOKEN_PREFIX: &str = "tm_";

/// How the caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthVia {
    /// A browser session; holds the stored hash of the cookie.
    Session(String),
    /// A personal API token, by id.
    ApiToken(Uuid),
}

/// An authenticated, enabled user.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user: UserDto,
    pub via: AuthVia,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

impl From<UserRow> for UserDto {
    fn from(row: UserRow) -> Self {
        UserDto {
            id: row.id,
            // A role outside the check constraint cannot be stored; fall back to the least.
            role: row.role.parse().unwrap_or(Role::User),
            email: row.email,
            disabled: row.disabled,
            // Likewise: an unknown value lets nobody in.
            approval: Approval::parse(&row.approval).unwrap_or(Approval::Pending),
            created_at: row.created_at,
        }
    }
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes), off the async
/// threads since it takes tens of milliseconds on purpose, and only as many at once as there
/// are cores (see [`crate::server::work`]).
pub async fn hash_password(password: String) -> Result<String> {
    crate::server::work::hashing()
        .run(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::internal(format!("argon2 hash: {e}")))
        })
        .await?
}

/// A place in the queue of password checks, or a 503 at once when it is full.
pub fn password_check_place() -> Result<crate::server::work::Place<'static>> {
    crate::server::work::hashing().place()
}

/// Checks a password against a stored hash, in its place in the queue. Without a hash (unknown
/// e-mail) it still does the work against a fixed hash, so the answer takes as long for unknown
/// accounts as for known ones.
pub async fn verify_password(
    place: crate::server::work::Place<'static>,
    password: String,
    stored: Option<String>,
) -> Result<bool> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    place
        .run(move || {
            let known = stored.is_some();
            let text = match stored {
                Some(hash) => hash,
                None => DUMMY
                    .get_or_init(|| {
                        let salt = SaltString::generate(&mut rand::rngs::OsRng);
                        Argon2::default()
                            .hash_password(b"no such account", &salt)
                            .map(|h| h.to_string())
                            .unwrap_or_default()
                    })
                    .clone(),
            };
            let parsed = PasswordHash::new(&text)
                .map_err(|e| Error::internal(format!("stored hash unreadable: {e}")))?;
            let ok = Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(ok && known)
        })
        .await?
}

/// A fresh random secret (256 bits, URL-safe base64) and the SHA-256 hex we store for it.
pub fn new_secret(prefix: &str) -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = sha256_hex(&secret);
    (secret, hash)
}

/// A password for generated admin accounts: 20 URL-safe characters.
pub fn generate_password() -> String {
    let mut bytes = [0u8; 15];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// `Set-Cookie` for a new session: HttpOnly, SameSite=Lax, Secure behind https.
pub fn session_cookie(secret: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .expect("cookie value is URL-safe base64")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    ))
    .expect("static cookie")
}

/// Whether cookies must be `Secure`: the public address is https, or a trusted proxy says the
/// request came over https.
pub fn cookies_secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.secure_cookies()
        || (state.config.trust_proxy
            && headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https")))
}

/// The value of the session cookie, if the request carries one.
pub fn session_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

/// The bearer token, if an `Authorization: Bearer ...` header is present.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Resolves the caller. A bearer token, when present, is the only credential looked at: a
/// wrong one is a 401 even if a session cookie would have worked.
#[tracing::instrument(skip_all, err)]
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>> {
    if headers.contains_key(AUTHORIZATION) {
        let Some(token) = bearer_token(headers) else {
            return Err(AppError::new(
                crate::api::error::ErrorCode::Unauthorized,
                "the Authorization header must be `Bearer <token>`",
            )
            .into());
        };
        let found = api_tokens::find_user_by_hash(&state.db, &sha256_hex(&token)).await?;
        let Some(found) = found else {
            return Err(AppError::new(
                crate::api::error::ErrorCode::Unauthorized,
                "the API token is invalid or has been revoked",
            )
            .into());
        };
        api_tokens::touch(&state.db, &found, db::now()).await?;
        return Ok(Some(Principal {
            user: found.user.into(),
            via: AuthVia::ApiToken(found.token_id),
        }));
    }
    let Some(secret) = session_secret(headers) else {
        return Ok(None);
    };
    let id_hash = sha256_hex(&secret);
    let now = db::now();
    if let Some(user) = state.caches.session(&id_hash, now) {
        return Ok(Some(Principal {
            user,
            via: AuthVia::Session(id_hash),
        }));
    }
    let ticket = state.caches.ticket();
    let Some(found) = sessions::find_user(&state.db, &id_hash, now).await? else {
        return Ok(None);
    };
    let user = UserDto::from(found.user);
    let session = CachedSession {
        user: user.clone(),
        expires_at: found.expires_at,
    };
    state.caches.keep_session(ticket, &id_hash, session);
    Ok(Some(Principal {
        user,
        via: AuthVia::Session(id_hash),
    }))
}

/// The caller of this request: the one `page_guard` already resolved for a page request (so a
/// page's server functions, run in-process while it renders, do not look it up again), else
/// looked up from the request's credentials.
pub async fn caller(state: &AppState, parts: &Parts) -> Result<Option<Principal>> {
    match parts.extensions.get::<SignedIn>() {
        Some(SignedIn(principal)) => Ok(principal.clone()),
        None => authenticate(state, &parts.headers).await,
    }
}

/// The signed-in user, or 401.
pub async fn require_user(state: &AppState, parts: &Parts) -> Result<Principal> {
    caller(state, parts)
        .await?
        .ok_or_else(|| AppError::unauthorized().into())
}

/// The signed-in admin: 401 when signed out, 403 for everybody else.
pub async fn require_admin(state: &AppState, parts: &Parts) -> Result<Principal> {
    let principal = require_user(state, parts).await?;
    if !principal.is_admin() {
        return Err(AppError::forbidden("this needs an admin account").into());
    }
    Ok(principal)
}

/// The client's address for rate limiting: the socket peer, or, behind a trusted proxy, the
/// last hop of `X-Forwarded-For` (the one that proxy appended; the hops before it are
/// whatever the client wrote). IPv6 addresses count per /64, which one client usually has.
pub fn client_ip(parts: &Parts, trust_proxy: bool) -> String {
    let forwarded = trust_proxy
        .then(|| {
            parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .rfind(|hop| !hop.is_empty())
                .and_then(|hop| hop.parse::<std::net::IpAddr>().ok())
        })
        .flatten();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    forwarded
        .or(peer)
        .map(rate_limit_key)
        .unwrap_or_else(|| "unknown".into())
}

/// The key an address is counted under: IPv4 as it is, IPv6 by its /64.
pub fn rate_limit_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Pages that need a signed-in user (user and admin pages: see [`crate::api::access::PAGES`]).
fn needs_sign_in(path: &str) -> bool {
    crate::api::access::page(path).is_some_and(|access| !access.allows(None))
}

/// Who made a page request, resolved once before rendering (`None` for visitors).
#[derive(Clone, Debug)]
pub struct SignedIn(pub Option<Principal>);

/// Requests that render a page (not the API, not the probes, not the built assets).
fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/")
        || path.starts_with("/pkg/")
        || path.contains('.')
        || path == "/healthz"
        || path == "/readyz")
}

/// For page requests: resolves the user once (for the page to render with) and sends visitors
/// of signed-in pages to `/login?next=<page>` with a real 302, before any rendering: the server
/// decides who sees a page, the browser only follows.
pub async fn page_guard(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path().to_string();
    if request.method() == http::Method::GET && is_page(&path) {
        let principal = match authenticate(&state, request.headers()).await {
            Ok(principal) => principal,
            // A bad credential reads as "signed out" on pages; the API says why.
            Err(Error::App(err)) => {
                tracing::debug!(error = %err, "page request with an unusable credential");
                None
            }
            Err(err) => {
                tracing::error!(error = %err, "could not resolve the user of a page request");
                None
            }
        };
        let signed_in = principal.is_some();
        request.extensions_mut().insert(SignedIn(principal));
        if !signed_in && needs_sign_in(&path) {
            let to = format!("/login?next={}", crate::domain::account::encode_next(&path));
            return (http::StatusCode::FOUND, [(http::header::LOCATION, to)]).into_response();
        }
    }
    next.run(request).await
}

/// For server functions (`/api/fn/<name>`): refuses a call its caller may not make (401, 403,
/// as [`crate::api::access::server_fn`] declares, by [`require_user`] and [`require_admin`]),
/// before its body is even read, in the same JSON body a refusal from inside the function has;
/// and hands the function the caller it resolved (its own `require_user` does not look them up
/// again).
pub async fn fn_guard(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use crate::api::access::{server_fn, Access};
    let access = match request
        .uri()
        .path()
        .strip_prefix(crate::api::SERVER_FN_PREFIX)
    {
        Some(name) => server_fn(name),
        None => Access::Public,
    };
    let (mut parts, body) = request.into_parts();
    let allowed = match access {
        Access::Public => {
            return next
                .run(axum::extract::Request::from_parts(parts, body))
                .await
        }
        Access::User => require_user(&state, &parts).await,
        Access::Admin => require_admin(&state, &parts).await,
    };
    match allowed {
        Ok(principal) => {
            parts.extensions.insert(SignedIn(Some(principal)));
            next.run(axum::extract::Request::from_parts(parts, body))
                .await
        }
        Err(err) => fn_refusal(AppError::from(err)),
    }
}

/// A server function's error as the function itself would have answered it.
fn fn_refusal(error: AppError) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = http::StatusCode::from_u16(error.code.status())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(error)).into_response()
}

/// Extractor for REST handlers: the signed-in user (401 otherwise).
pub struct AuthUser(pub Principal);

/// Extractor for REST handlers: the signed-in admin (401 / 403 otherwise).
pub struct AdminUser(pub Principal);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = crate::server::rest::ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        Ok(AuthUser(require_user(state, parts).await?))
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = crate::server::rest::ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        Ok(AdminUser(require_admin(state, parts).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; tm_session=abc; b=2"));
        assert_eq!(session_secret(&headers).as_deref(), Some("abc"));
        headers.insert(COOKIE, HeaderValue::from_static("tm_session=; other=x"));
        assert_eq!(session_secret(&headers), None);
    }

    #[test]
    fn pages_behind_sign_in() {
        for path in [
            "/profile",
            "/profile/tokens",
            "/admin",
            "/admin/users",
            "/admin/users/6f1c2a7e-0000-4000-8000-000000000000",
            "/chat",
            "/chat/6f1c2a7e-0000-4000-8000-000000000000",
        ] {
            assert!(needs_sign_in(path), "{path}");
        }
        for path in [
            "/",
            "/login",
            "/signup",
            "/pricing",
            "/profiles",
            "/chatter",
            "/api/auth/me",
        ] {
            assert!(!needs_sign_in(path), "{path}");
        }
    }

    #[test]
    fn only_pages_resolve_their_user_up_front() {
        for path in ["/", "/chat", "/admin/users", "/pricing"] {
            assert!(is_page(path), "{path}");
        }
        for path in [
            "/api/profile/usage",
            "/pkg/tokenmeter.js",
            "/favicon.ico",
            "/healthz",
            "/readyz",
        ] {
            assert!(!is_page(path), "{path}");
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer tm_x"));
        assert_eq!(bearer_token(&headers).as_deref(), Some("tm_x"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic Zm9v"));
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn secrets_are_random_and_hashed() {
        let (a, ha) = new_secret(TOKEN_PREFIX);
        let (b, _) = new_secret(TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("tm_"));
        assert_eq!(ha, sha256_hex(&a));
        assert_eq!(ha.len(), 64);
    }

    #[test]
    fn cookies_carry_the_required_attributes() {
        let c = session_cookie("s", 60, true);
        let c = c.to_str().unwrap();
        for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=60"] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
        assert!(!session_cookie("s", 60, false)
            .to_str()
            .unwrap()
            .contains("Secure"));
    }
}

#[cfg(test)]
mod address_tests {
    use super::*;

    fn parts(peer: &str, forwarded: &[&str]) -> Parts {
        let mut request = http::Request::builder();
        for value in forwarded {
            request = request.header("x-forwarded-for", *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    #[test]
    fn the_client_is_the_last_hop_behind_a_trusted_proxy() {
        let p = parts("10.0.0.2:5000", &["1.1.1.1, 203.0.113.9"]);
        assert_eq!(client_ip(&p, true), "203.0.113.9");
        // Not trusted: the header is the client's own text.
        assert_eq!(client_ip(&p, false), "10.0.0.2");
        // Several headers: the last value of the last one; junk falls back to the peer.
        let p = parts("10.0.0.2:5000", &["9.9.9.9", "8.8.8.8 , 203.0.113.7 "]);
        assert_eq!(client_ip(&p, true), "203.0.113.7");
        let p = parts("10.0.0.2:5000", &["not-an-address"]);
        assert_eq!(client_ip(&p, true), "10.0.0.2");
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a = parts("[2001:db8:1:2:aaaa::1]:443", &[]);
        let b = parts("[2001:db8:1:2:bbbb:cccc:dddd:eeee]:443", &[]);
        assert_eq!(client_ip(&a, false), "2001:db8:1:2::/64");
        assert_eq!(client_ip(&a, false), client_ip(&b, false));
        let other = parts("[2001:db8:1:3::1]:443", &[]);
        assert_ne!(client_ip(&a, false), client_ip(&other, false));
        let mapped = parts("[::ffff:192.0.2.1]:443", &[]);
        assert_eq!(client_ip(&mapped, false), "192.0.2.1");
    }
}
