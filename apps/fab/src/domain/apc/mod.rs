//! APC: run-to-run control of lithography exposures.
//!
//! - [`context`]: the thread key and the lot's context;
//! - [`controller`]: EWMA / double-EWMA math, the outlier gate, versioned configurations;
//! - [`strategy`] (Strategy): F(n) per product type, F2(n) per technology;
//! - [`generator`] (Factory): the sub-recipe generator chosen by the request's mode;
//! - [`facade`] (Facade): genSubrecipe → checkSpec → log → updateAPCFn, and Preview;
//! - [`thread`]: a thread's state as the fold of its versioned transitions;
//! - [`parent`]: seeding a new thread from a parent context's state instead of a pilot run;
//! - [`adapter`] (Adapter): the SR in each tool model's job syntax.
pub mod adapter;
pub mod context;
pub mod controller;
pub mod facade;
pub mod generator;
pub mod parent;
pub mod strategy;
pub mod thread;

#[cfg(test)]
pub(crate) mod testkit;
