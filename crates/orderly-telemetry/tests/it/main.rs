//! Integration tests of orderly-telemetry: settings from an explicit environment, the metrics
//! recorder, and real child processes whose stdout is a slowly read pipe.

// Shared with orderly's tests: finding an example binary, refusing a stale one.
#[path = "../../../orderly/tests/it/fixture.rs"]
mod fixture;
mod flush;
mod metrics;
mod process;
mod settings;
mod stdout;
