//! What can go wrong in the store.

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[error("fab store: {kind}")]
pub struct StoreError {
    kind: StoreErrorKind,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// Another writer changed the row first (version moved on, key taken): read and retry.
    #[error("another writer got there first")]
    Conflict,
    /// The database failed.
    #[error("database: {0}")]
    Database(#[source] sqlx::Error),
    /// A value could not be encoded.
    #[error("cannot encode a value: {0}")]
    Encode(#[source] serde_json::Error),
    /// A stored value does not parse.
    #[error("stored {what} does not parse: {source}")]
    Corrupt {
        /// What was read.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    pub(crate) fn new(kind: StoreErrorKind) -> Self {
        Self { kind }
    }

    /// A unique-key violation is a conflict (another writer inserted first); anything else is
    /// a database failure.
    pub(crate) fn from_sqlx(error: sqlx::Error) -> Self {
        let unique = matches!(&error, sqlx::Error::Database(e) if e.is_unique_violation());
        Self::new(if unique {
            StoreErrorKind::Conflict
        } else {
            StoreErrorKind::Database(error)
        })
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &StoreErrorKind {
        &self.kind
    }

    /// Whether another writer got there first (retry from a fresh read).
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self.kind, StoreErrorKind::Conflict)
    }
}
