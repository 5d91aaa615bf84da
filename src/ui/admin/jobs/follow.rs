//! How `/admin/jobs` follows the list live in the browser.

use crate::api::jobs::{JobFilterDto, JobPageDto};
use leptos::prelude::*;

/// How the page follows the jobs: the server's live events, or a poll every few seconds when
/// they cannot be had; paused while the tab is hidden.
/// (The server renders `Connecting`; the browser moves to the others.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub enum FollowMode {
    Connecting,
    Live,
    Polling,
    Paused,
}

impl FollowMode {
    /// The `data-mode` the browser tests read.
    pub fn key(self) -> &'static str {
        match self {
            FollowMode::Connecting => "connecting",
            FollowMode::Live => "live",
            FollowMode::Polling => "polling",
            FollowMode::Paused => "paused",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            FollowMode::Connecting => "",
            FollowMode::Live => "Live.",
            FollowMode::Polling => "Updating every few seconds.",
            FollowMode::Paused => "Paused while this tab is hidden.",
        }
    }
}

/// Follows the list live in the browser: server-sent events for the current filter; if they
/// fail, the list is polled every 3 s; while the tab is hidden neither runs.
pub fn follow(
    filter: Memo<JobFilterDto>,
    live: RwSignal<Option<JobPageDto>>,
    mode: RwSignal<FollowMode>,
) {
    #[cfg(not(feature = "hydrate"))]
    let _ = (filter, live, mode);
    #[cfg(feature = "hydrate")]
    browser::follow(filter, live, mode);
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::super::query_string;
    use super::*;
    use crate::api::jobs::admin_list_jobs;
    use std::cell::RefCell;
    use std::rc::Rc;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    #[derive(Default)]
    struct Live {
        source: Option<web_sys::EventSource>,
        // Kept alive while the source is.
        _on_jobs: Option<Closure<dyn FnMut(web_sys::MessageEvent)>>,
        _on_error: Option<Closure<dyn FnMut(web_sys::Event)>>,
    }

    impl Live {
        fn close(&mut self) {
            if let Some(s) = self.source.take() {
                s.close();
            }
            self._on_jobs = None;
            self._on_error = None;
        }
    }

    fn url(f: &JobFilterDto) -> String {
        format!("/api/admin/jobs/events{}", query_string(f))
    }

    fn hidden() -> bool {
        web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| d.hidden())
    }

    fn connect(
        state: &Rc<RefCell<Live>>,
        f: &JobFilterDto,
        live: RwSignal<Option<JobPageDto>>,
        mode: RwSignal<FollowMode>,
    ) {
        state.borrow_mut().close();
        if hidden() {
            mode.set(FollowMode::Paused);
            return;
        }
        let Ok(source) = web_sys::EventSource::new(&url(f)) else {
            mode.set(FollowMode::Polling);
            return;
        };
        let on_jobs =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                if let Some(text) = ev.data().as_string() {
                    if let Ok(page) = serde_json::from_slice::<JobPageDto>(text.as_bytes()) {
                        live.set(Some(page));
                        mode.set(FollowMode::Live);
                    }
                }
            });
        let weak = source.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            // Closed for good (not a reconnect in progress): fall back to polling.
            if weak.ready_state() == web_sys::EventSource::CLOSED {
                mode.set(FollowMode::Polling);
            }
        });
        let _ = source.add_event_listener_with_callback("jobs", on_jobs.as_ref().unchecked_ref());
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let mut s = state.borrow_mut();
        s.source = Some(source);
        s._on_jobs = Some(on_jobs);
        s._on_error = Some(on_error);
    }

    pub fn follow(
        filter: Memo<JobFilterDto>,
        live: RwSignal<Option<JobPageDto>>,
        mode: RwSignal<FollowMode>,
    ) {
        let state: Rc<RefCell<Live>> = Rc::default();
        {
            let state = state.clone();
            Effect::new(move |_| {
                let f = filter.get();
                connect(&state, &f, live, mode);
            });
        }
        // Hidden: stop; shown again: reconnect (the first event brings the list up to date).
        let on_visibility = {
            let state = state.clone();
            Closure::<dyn FnMut()>::new(move || {
                if hidden() {
                    state.borrow_mut().close();
                    mode.set(FollowMode::Paused);
                } else {
                    connect(&state, &filter.get_untracked(), live, mode);
                }
            })
        };
        let document = web_sys::window().and_then(|w| w.document());
        if let Some(doc) = &document {
            let _ = doc.add_event_listener_with_callback(
                "visibilitychange",
                on_visibility.as_ref().unchecked_ref(),
            );
        }
        // The fallback: poll while the events do not work.
        let handle = set_interval_with_handle(
            move || {
                if mode.get_untracked() == FollowMode::Polling && !hidden() {
                    let f = filter.get_untracked();
                    leptos::task::spawn_local(async move {
                        if let Ok(page) = admin_list_jobs(f).await {
                            live.set(Some(page));
                        }
                    });
                }
            },
            std::time::Duration::from_secs(3),
        )
        .ok();
        let held = send_wrapper::SendWrapper::new((state, on_visibility, document));
        on_cleanup(move || {
            let (state, on_visibility, document) = &*held;
            state.borrow_mut().close();
            if let Some(doc) = document {
                let _ = doc.remove_event_listener_with_callback(
                    "visibilitychange",
                    on_visibility.as_ref().unchecked_ref(),
                );
            }
            if let Some(h) = handle {
                h.clear();
            }
        });
    }
}
