//! The fab's own settings (prefix `FAB`).

use std::path::PathBuf;
use std::time::Duration;

use orderly::BoxError;
use orderly_config::Secret;
use orderly_sql::PoolSettings;
use serde::Deserialize;

use super::invalid;

/// Settings read from `FAB_*` variables.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FabSettings {
    /// `FAB_DATA_DIR`: where the embedded default keeps its SQLite file and generated tokens
    /// (default `./fab-data`).
    pub data_dir: PathBuf,
    /// `FAB_TOKENS`: `role:token,…` with roles tool, engineer, admin. Unset in `fab all`'s
    /// embedded default: tokens are generated once into `<data_dir>/tokens.env`.
    pub tokens: Option<Secret<String>>,
    /// `FAB_ID`: this fab's id, with which it acknowledges the spec release it runs
    /// (default `fab-1`).
    pub id: String,
    /// `FAB_IDEMPOTENCY_RETENTION`: how long a write's stored answer is replayed to a retry with
    /// the same idempotency key (default `24h`); older ones are pruned.
    #[serde(with = "orderly_config::duration")]
    pub idempotency_retention: Duration,
}

/// The default of `FAB_IDEMPOTENCY_RETENTION`.
const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);

impl Default for FabSettings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("fab-data"),
            tokens: None,
            id: "fab-1".to_owned(),
            idempotency_retention: DEFAULT_RETENTION,
        }
    }
}

impl FabSettings {
    /// The SQLite file of the embedded default, its directory created.
    ///
    /// # Errors
    /// The directory cannot be created (exit 78, naming `FAB_DATA_DIR`).
    pub(crate) async fn embedded_database(&self) -> Result<PoolSettings, BoxError> {
        tokio::fs::create_dir_all(&self.data_dir)
            .await
            .map_err(|e| {
                invalid(format!(
                    "FAB_DATA_DIR: cannot create {}: {e}",
                    self.data_dir.display()
                ))
            })?;
        let file = self.data_dir.join("fab.db");
        let url = format!("sqlite://{}", file.display());
        let url = url.parse().map_err(|e| {
            invalid(format!(
                "FAB_DATA_DIR: {} is not usable as a SQLite path: {e}",
                file.display()
            ))
        })?;
        tracing::info!(file = %file.display(), "embedded database (SQLite)");
        Ok(PoolSettings::new(url))
    }
}
