//! Who is signed in: the [`Session`] every page reads, and how the user gets from the server's
//! render into the browser (the page head's `tm-user`).

use crate::api::auth::{Login, Logout, Signup};
use crate::api::UserDto;
use leptos::prelude::*;

/// Who is signed in, and the actions that change it. Provided once by [`crate::app::App`]; every page that
/// needs the user reads it from context ([`use_session`]).
///
/// The user is known before rendering starts: the server resolves it once per page request
/// (`server::auth::page_guard`) and writes it into the page head; the browser reads it back from
/// there before hydrating. No page waits on it, and log-in, sign-up and log-out end in a full
/// page load (see `hydrate`), so it never goes stale. (It used to be a `Resource` read under
/// several `<Transition>`s, which leptos 0.8 sometimes never finishes streaming: leptos #4851.)
#[derive(Clone, Copy)]
pub struct Session {
    me: StoredValue<Option<UserDto>>,
    pub login: ServerAction<Login>,
    pub signup: ServerAction<Signup>,
    pub logout: ServerAction<Logout>,
}

impl Session {
    /// Provides the session of this page (in [`crate::app::App`]).
    pub fn provide() {
        provide_context(Session {
            me: StoredValue::new(signed_in_user()),
            login: ServerAction::<Login>::new(),
            signup: ServerAction::<Signup>::new(),
            logout: ServerAction::<Logout>::new(),
        });
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<UserDto> {
        self.me.get_value()
    }
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}

/// The user of this request, as the server resolved it.
#[cfg(feature = "ssr")]
fn signed_in_user() -> Option<UserDto> {
    use_context::<http::request::Parts>()
        .and_then(|parts| {
            parts
                .extensions
                .get::<crate::server::auth::SignedIn>()
                .cloned()
        })
        .and_then(|signed_in| signed_in.0)
        .map(|principal| principal.user)
}

/// The user the server wrote into the page head (read with `from_slice`, as everything the
/// browser reads: one JSON decoder per type in the wasm, see `ui::common::Json`).
#[cfg(not(feature = "ssr"))]
fn signed_in_user() -> Option<UserDto> {
    let meta = document().query_selector("meta[name=tm-user]").ok()??;
    serde_json::from_slice(meta.get_attribute("content")?.as_bytes()).ok()?
}

/// The signed-in user as the page head carries it (see `app::shell`).
pub fn signed_in_user_json() -> String {
    serde_json::to_string(&signed_in_user()).unwrap_or_else(|_| "null".into())
}
