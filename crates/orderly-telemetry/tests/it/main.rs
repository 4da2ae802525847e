//! Integration tests of orderly-telemetry: settings from an explicit environment, the metrics
//! recorder, and real child processes whose stdout is a slowly read pipe.

mod flush;
mod metrics;
mod process;
mod settings;
