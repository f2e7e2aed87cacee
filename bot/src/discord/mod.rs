//! Discord: the REST client the delivery worker posts through, and message rendering.
//! Only this module knows Discord's types and wire format.

pub mod api;

pub use api::DiscordApi;
