//! Integration tests of the lifecycle core: one module per group of SPEC §2 rows, shared
//! fakes in `support`, and regression tests named after the bugs they pin.

mod admin_task;
mod contract;
mod control;
mod events;
mod failures;
mod fixture;
mod graph;
mod health;
mod ignorable;
mod nesting;
mod notify;
mod process;
mod regressions;
mod report;
mod signals;
mod support;
mod timeouts;
