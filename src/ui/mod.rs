//! Pages and components, by feature.

pub mod admin;
pub mod auth;
pub mod chat;
pub mod common;
pub mod layout;
pub mod notifications;
pub mod pages;
pub mod profile;
pub mod quota;
pub mod session;
pub mod time;
pub mod usage;
