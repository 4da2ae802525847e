//! Integration tests of orderly-workers: a real system with the pool as a component, on a
//! paused clock, synchronised on channels the jobs signal.

// Test helpers outside `#[test]` functions fail loudly on purpose.
#![allow(clippy::unwrap_used)]

mod failures;
mod fixture;
mod settings;
mod stop;
mod submit;
