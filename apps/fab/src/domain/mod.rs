//! The pure domain: no I/O, no async, no clock reads. Every operation is a function of its
//! arguments (time included, as a [`Timestamp`](time::Timestamp)), so the services can persist
//! its values, replay them, and test it without servers.
//!
//! Errors name the field or value at fault, so the HTTP layer can turn them into 4xx messages;
//! no input (NaN, infinities, zero gains, empty histories) makes anything here panic.

pub mod apc;
pub mod fdc;
pub mod jobs;
pub mod name;
pub mod sim;
pub mod spec;
pub mod time;
