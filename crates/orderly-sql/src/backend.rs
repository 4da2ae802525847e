//! What differs between PostgreSQL and SQLite; everything else is generic over [`Backend`].

use std::future::Future;

use sqlx::pool::PoolOptions;

use crate::settings::PoolSettings;

/// The connect options of a backend's connections.
pub type ConnectOptions<DB> = <<DB as sqlx::Database>::Connection as sqlx::Connection>::Options;

/// A database this crate has a pool component for: [`sqlx::Postgres`] (feature `postgres`)
/// and [`sqlx::Sqlite`] (feature `sqlite`). Sealed: its methods are how
/// [`SqlPool`](crate::SqlPool) treats each backend.
pub trait Backend: sqlx::Database + sealed::Sealed {
    /// The backend's name in messages, e.g. `PostgreSQL`.
    const LABEL: &'static str;

    /// The connect options for `settings`, or why the URL does not fit this backend.
    fn connect_options(
        settings: &PoolSettings,
    ) -> Result<<Self::Connection as sqlx::Connection>::Options, String>;

    /// Where the options point, for messages: `host:port/database` or the SQLite file. Never
    /// the password.
    fn target(options: &<Self::Connection as sqlx::Connection>::Options) -> String;

    /// The pool options for `settings`, adjusted to the backend.
    fn pool_options(_settings: &PoolSettings, options: PoolOptions<Self>) -> PoolOptions<Self> {
        options
    }

    /// Runs `SELECT 1` on `connection`.
    fn check(
        connection: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

mod sealed {
    pub trait Sealed {}
    #[cfg(feature = "postgres")]
    impl Sealed for sqlx::Postgres {}
    #[cfg(feature = "sqlite")]
    impl Sealed for sqlx::Sqlite {}
}

/// Whether a failed connection attempt may succeed later: the network or the server is not
/// there yet, or the server is starting or full. A wrong password or a missing database is not.
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            // PostgreSQL: too_many_connections, cannot_connect_now (starting up).
            // SQLite: SQLITE_BUSY, SQLITE_LOCKED.
            ["53300", "57P03", "5", "6"].contains(&code.as_ref())
        }),
        _ => false,
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::str::FromStr;

    use sqlx::postgres::{PgConnectOptions, PgConnection};

    use super::Backend;
    use crate::settings::PoolSettings;

    impl Backend for sqlx::Postgres {
        const LABEL: &'static str = "PostgreSQL";

        fn connect_options(settings: &PoolSettings) -> Result<PgConnectOptions, String> {
            let url = &settings.url;
            if !matches!(url.scheme(), "postgres" | "postgresql") {
                return Err(format!(
                    "url: a PostgreSQL pool needs a postgres:// URL, not {}:",
                    url.scheme()
                ));
            }
            PgConnectOptions::from_str(url.expose()).map_err(|e| format!("url: {e}"))
        }

        fn target(options: &PgConnectOptions) -> String {
            let database = options
                .get_database()
                .unwrap_or_else(|| options.get_username());
            match options.get_socket() {
                Some(socket) => format!("{}/{database}", socket.display()),
                None => format!("{}:{}/{database}", options.get_host(), options.get_port()),
            }
        }

        async fn check(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
            sqlx::query("SELECT 1").execute(connection).await.map(drop)
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::str::FromStr;

    use sqlx::pool::PoolOptions;
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous,
    };

    use super::Backend;
    use crate::settings::PoolSettings;

    impl Backend for sqlx::Sqlite {
        const LABEL: &'static str = "SQLite";

        /// The file is created if missing, in WAL mode (readers do not block the writer) with
        /// `synchronous = NORMAL` (durable at each checkpoint, safe from corruption), and a
        /// statement waits `busy_timeout` for a lock.
        fn connect_options(settings: &PoolSettings) -> Result<SqliteConnectOptions, String> {
            let url = &settings.url;
            if url.scheme() != "sqlite" {
                return Err(format!(
                    "url: a SQLite pool needs a sqlite: URL, not {}:",
                    url.scheme()
                ));
            }
            let options = SqliteConnectOptions::from_str(url.expose())
                .map_err(|e| format!("url: {e}"))?
                .create_if_missing(true)
                .busy_timeout(settings.busy_timeout);
            Ok(if url.is_memory() {
                options
            } else {
                options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
            })
        }

        fn target(options: &SqliteConnectOptions) -> String {
            options.get_filename().display().to_string()
        }

        /// An in-memory database lives as long as one of its connections: the pool keeps one
        /// open for good.
        fn pool_options(settings: &PoolSettings, options: PoolOptions<Self>) -> PoolOptions<Self> {
            if settings.url.is_memory() {
                options
                    .min_connections(settings.min_connections.max(1))
                    .idle_timeout(None)
                    .max_lifetime(None)
            } else {
                options
            }
        }

        async fn check(connection: &mut SqliteConnection) -> Result<(), sqlx::Error> {
            sqlx::query("SELECT 1").execute(connection).await.map(drop)
        }
    }
}
