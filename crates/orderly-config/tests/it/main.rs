//! Integration tests of the configuration component: one module per requirement of issue 4,
//! shared settings types and helpers in `support`.

mod errors;
mod precedence;
mod process;
mod redaction;
mod support;
mod watch;
