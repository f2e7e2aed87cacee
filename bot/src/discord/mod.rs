//! Discord: inbound interactions (HTTP endpoint or Gateway), command registration, and the REST
//! client the delivery worker posts through. Only this module knows Discord's types and wire format.

pub mod api;
pub mod commands;
pub mod gateway;
pub mod handler;
pub mod payload;
pub mod routes;
pub mod verify;

pub use api::DiscordApi;
pub use handler::Discord;
