//! wip

mod config;
mod error;
mod extract;
mod secret;
mod source;
mod watch;

pub mod duration;
pub mod size;
pub use config::{Config, ConfigBuilder, Reload};
pub use error::{ConfigError, Problem, ProblemKind};
pub use secret::Secret;
