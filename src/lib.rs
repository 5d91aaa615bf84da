#![recursion_limit = "256"]
//! tokenmeter: a self-hosted LLM chat portal that shows every user's token use.
//!
//! `domain` holds the pure rules, `api` the wire types and server functions, `ui` the pages,
//! `server` (feature `ssr`) everything that touches the database or the network.

pub mod api;
pub mod app;
pub mod domain;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod server;

/// The browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Server functions redirect only after log-in, sign-up and log-out, when who is signed in
    // changes: load the next page whole, so that nothing rendered for the old user survives.
    // Set before the router sets its own (client-side) hook; the first one set wins.
    let _ = leptos::server_fn::redirect::set_redirect_hook(|location: &str| {
        let _ = leptos::prelude::window().location().set_href(location);
    });
    leptos::mount::hydrate_body(app::App);
    // Lets browser tests (and curious people) see that the page is live.
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
