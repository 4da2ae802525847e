//! Typed settings for an [`orderly`] system (twelve-factor III): environment variables
//! with a prefix, layered over files, every problem reported at once, secrets never shown, and
//! a reload when a file changes.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use orderly::{Env, System};
//! use orderly_config::{Config, Secret};
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize)]
//! struct Settings {
//!     name: String,
//!     #[serde(default)]
//!     db: Db,
//! }
//!
//! #[derive(Debug, Deserialize)]
//! #[serde(default)]
//! struct Db {
//!     url: String,
//!     password: Secret<String>,
//!     pool_size: u16,
//!     #[serde(with = "orderly_config::duration")]
//!     timeout: Duration,
//! }
//!
//! impl Default for Db {
//!     fn default() -> Self {
//!         Db {
//!             url: "sqlite::memory:".into(),
//!             password: Secret::default(),
//!             pool_size: 5,
//!             timeout: Duration::from_secs(5),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let file = dir.path().join("config.toml");
//! # std::fs::write(&file, "name = \"fab\"\n[db]\npool_size = 10\n")?;
//! // In a service the environment is the process's (the default); a test passes a map.
//! let env = Env::from_pairs([("FAB_DB__TIMEOUT", "500ms"), ("FAB_DB__PASSWORD", "hunter2")]);
//!
//! let mut system = System::builder("fab");
//! let config = system.add(
//!     "config",
//!     (),
//!     Config::<Settings>::builder("FAB").file(&file).env(env).strict().build(),
//! );
//! // A dependent takes the part it needs; it starts only once the settings are valid.
//! let db = system.add_fn("db", config.map(|c| c.db.pool_size), |size: u16, _ctx| async move {
//!     Ok::<_, std::io::Error>(size)
//! });
//!
//! let running = system.build()?.start().await?;
//! let settings: Arc<Settings> = running.resource(config).unwrap();
//! assert_eq!(settings.name, "fab"); // from the file
//! assert_eq!(running.resource(db), Some(10)); // the file over the default
//! assert_eq!(settings.db.timeout, Duration::from_millis(500)); // the environment over both
//! assert_eq!(format!("{:?}", settings.db.password), "[redacted]");
//! running.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layers
//!
//! Key by key, later layers override earlier ones: the type's serde defaults, each file in the
//! order added ([`ConfigBuilder::file`], [`ConfigBuilder::file_optional`]; TOML, YAML or JSON by
//! extension), then the environment. `FAB_DB__POOL_SIZE` sets `db.pool_size`: the prefix, one
//! `_`, then the key with `__` between nested names. figment merges the layers.
//!
//! # Every problem at once
//!
//! A missing required setting, a value of the wrong type, an unparsable duration or size, an
//! unknown key in [strict](ConfigBuilder::strict) mode, a file that cannot be read or parsed:
//! all are collected into one [`ConfigError`] before anything starts, each [`Problem`] naming
//! its variable (`FAB_DB__POOL_SIZE: expected u16, found string "ten"`) or its file and key
//! (`config.toml: db.pool_size: …`). The component fails its first start with
//! [`orderly::InvalidConfig`], so the process exits 78.
//!
//! # Secrets
//!
//! A [`Secret`] prints `[redacted]`; a value that does not deserialize into one is reported
//! without being quoted, and a malformed file by line and column only. Nothing this crate logs
//! or reports holds a secret's value.
//!
//! # Reloading
//!
//! At every in-process restart the settings are loaded again, and kept as they were if the new
//! ones are invalid. [`Reload`] adds SIGHUP and file watching: a valid change restarts the
//! system with the new settings, an invalid one is logged and leaves the system as it runs. A
//! file of endpoints (where peer services live) is one more `Config` with a type of its own.
//!
//! # Values
//!
//! Durations are written `500ms`, `5s`, `1m30s` ([`duration`], orderly's grammar), sizes
//! `512KiB`, `10MiB` ([`size`]).
//!
//! # Performance
//!
//! Measured with `cargo bench -p orderly-config --bench load` on a 2-core machine (medians): a
//! load of 24 settings from a TOML file, a YAML override and six variables takes 33 µs; each
//! invalid value adds one extraction, about 23 µs (1 problem: 59 µs, 4: 128 µs, 16: 415 µs);
//! one poll of two watched files, 6.7 µs. The `01_settings` example (release build) exits 78
//! 1.75 ms after exec with three problems (median of 20 runs).

mod config;
pub mod duration;
mod error;
mod extract;
mod secret;
pub mod size;
mod source;
mod watch;

pub use config::{Config, ConfigBuilder, Reload};
pub use error::{ConfigError, Problem, ProblemKind};
pub use secret::{Secret, redact_url};
