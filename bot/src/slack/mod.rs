//! Slack: inbound requests (signed HTTP or Socket Mode), modals, and the Web API client the
//! delivery worker posts through. Only this module knows Slack's types and wire format.

pub mod api;
pub mod blocks;
pub mod handler;
pub mod home;
pub mod modal;
pub mod payload;
pub mod routes;
pub mod socket;
pub mod verify;

pub use api::SlackApi;
pub use handler::Slack;
