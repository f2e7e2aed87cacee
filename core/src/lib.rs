//! Baton's domain core: the operating model, the handoff state machine, business-hours SLA clocks,
//! stall detection and the escalation ladder.
//!
//! Architecture invariant: this crate does no IO and never reads the clock. Every function takes
//! `now` as an argument and returns values; the `baton` crate does the input and output.

pub mod activity;
pub mod away;
pub mod calendar;
pub mod command;
pub mod config;
pub mod contract;
pub mod decide;
pub mod docs;
pub mod handoff;
pub mod history;
pub mod model;
pub mod plate;
pub mod recalibrate;
pub mod render;
pub mod review;
pub mod stall;
pub mod team;

pub use command::{AwayCommand, Command, ParseError, parse};
pub use decide::{
    Admitted, Ctx, NewHandoff, Rejection, Waiting, admit, already_open, create, decide, decide_covering, discussed,
    record_verdict, waiting_on,
};
pub use handoff::*;
pub use model::OperatingModel;
pub use stall::{check, check_with};

#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod tests;
