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
    leptos::mount::hydrate_body(app::App);
    // Lets browser tests (and curious people) see that the page is live.
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
