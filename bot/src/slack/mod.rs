//! Slack: the Web API client the delivery worker posts through, and Block Kit rendering.
//! Only this module knows Slack's types and wire format.

pub mod api;
pub mod blocks;

pub use api::SlackApi;
