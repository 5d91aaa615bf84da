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
    // Pages are loaded on demand (see `app::lazy_pages`): hydration waits for the code of the
    // page shown, which the server's `<link rel=modulepreload>` has usually fetched already.
    // Until it is done nothing may change the page (see `app::Hydrated`).
    // (Not `leptos::task::spawn_local`: Leptos' executor is set up by the hydration itself.)
    wasm_bindgen_futures::spawn_local(async {
        use leptos::prelude::{provide_context, signal, Set};
        let body = leptos::prelude::document()
            .body()
            .expect("the page has a body");
        let (hydrated, set_hydrated) = signal(false);
        let owner = leptos::mount::hydrate_from_async(body.clone(), move || {
            provide_context(app::Hydrated(hydrated));
            app::App()
        })
        .await;
        owner.forget();
        set_hydrated.set(true);
        // Lets browser tests (and curious people) see that the page is live.
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
