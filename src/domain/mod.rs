//! Pure rules of the product: no database, no HTTP, no Leptos. Everything here compiles for the
//! browser too and is tested table by table.

pub mod account;
pub mod chat;
pub mod forecast;
pub mod jobs;
pub mod money;
pub mod notifications;
pub mod numbers;
pub mod period;
pub mod quota;
pub mod sse;
pub mod text;
pub mod time;
pub mod usage;
