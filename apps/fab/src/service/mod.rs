//! The orderly wiring of each process type: which components, in which order.
//!
//! ```text
//! settings ── auth ──────────────────────────────┐
//! db ── store ────────────────────────────────────┼── http ── announce
//! (settings, spec-settings, store) ── spec-sync ──┘
//! (store, settings) ── idempotency-prune (deletes stored replies past FAB_IDEMPOTENCY_RETENTION)
//! (store, auth, spec-sync) ── fdc-amqp, fdc-nats (fab fdc and fab all, when AMQP_URL / NATS_URL is set)
//! admin (first in, last out: probes answer until everything else has stopped)
//! ```
//!
//! - `db` is an [`orderly_sql::SqlPool`] for SQLite or PostgreSQL, chosen by the URL's scheme;
//! - `store` wraps it ([`Store`]) and, in the embedded default, applies the migrations;
//! - `spec-sync` says which released spec set APC and FDC use, and in `fab apc` / `fab fdc`
//!   with `SPEC_URL` syncs it from the central spec service ([`spec_sync`]);
//! - `http` is an [`orderly_http::HttpServer`] serving the process's [`router`];
//! - `announce` logs where the process listens, as URLs;
//! - `fdc-amqp` / `fdc-nats` consume FDC sample batches ([`crate::bus::fdc`]); they depend on
//!   the store, so they stop (finishing and acknowledging the batches in flight) before the
//!   pool closes.
//!
//! `fab all` in-process, as the tests run it (port 0, a SQLite file in a temporary directory):
//!
//! ```
//! use fab::service::{self, Options, ProcessKind};
//! use orderly::Env;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let env = Env::from_pairs([
//!     ("FAB_DATA_DIR", dir.path().display().to_string()),
//!     ("FAB_TOKENS", "tool:tool-token-1,engineer:engineer-token-1".to_owned()),
//! ]);
//! let options = Options {
//!     bind: Some(([127, 0, 0, 1], 0).into()),
//!     admin_bind: Some(([127, 0, 0, 1], 0).into()),
//!     ..Options::default()
//! };
//! let built = service::build(ProcessKind::All, &env, options);
//! let running = built.system.build()?.start().await?; // migrated, serving
//! let api = running.resource(built.http).ok_or("no server")?.local_addr();
//! assert!(api.port() != 0);
//! assert!(dir.path().join("fab.db").exists());
//! let report = running.stop().await; // drains, closes the pool
//! assert!(report.is_clean());
//! # Ok(())
//! # }
//! ```

mod settings;
pub mod spec_sync;
mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Env, InvalidConfig, Key, Spec, System, SystemBuilder};
use orderly_config::Config;
use orderly_http::{Admin, AdminHandle, HttpServer, ServerHandle};
use orderly_messaging::{Delivery, Json};
use orderly_sql::{PoolSettings, SqlPool};
use orderly_telemetry::Metrics;

pub use settings::FabSettings;
pub use spec_sync::{SpecSync, SpecSyncSettings, SpecView};

use crate::api::auth::Tokens;
use crate::api::fdc::Batch;
use crate::api::idempotency;
use crate::api::{AppState, Services, router};
use crate::bus::fdc::{BrokerSettings, handle_batch};
use crate::bus::{Bus, InProcessBus};
use crate::store::Store;

/// The kind of process: one subcommand each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessKind {
    /// `fab apc`: the APC service alone (needs `DATABASE_URL`).
    Apc,
    /// `fab spec`: the central spec service alone (needs `DATABASE_URL`).
    Spec,
    /// `fab fdc`: the FDC service alone (needs `DATABASE_URL`).
    Fdc,
    /// `fab all`: every service in one process; with no `DATABASE_URL`, on a SQLite file in
    /// the data directory (the embedded default).
    All,
}

impl ProcessKind {
    fn name(self) -> &'static str {
        match self {
            Self::Apc => "fab-apc",
            Self::Spec => "fab-spec",
            Self::Fdc => "fab-fdc",
            Self::All => "fab-all",
        }
    }

    fn services(self) -> Services {
        match self {
            Self::Apc => Services::Apc,
            Self::Spec => Services::Spec,
            Self::Fdc => Services::Fdc,
            Self::All => Services::All,
        }
    }
}

/// Whether a process applies the migrations when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Migrations {
    /// At start, before serving: the embedded default (one process owns its SQLite file).
    AtStart,
    /// Never: scaled out, `fab migrate` (an admin task) does, once, before a rollout.
    External,
}

/// How to build a process beyond its environment (tests bind port 0, `main` installs metrics).
#[derive(Debug, Default)]
#[must_use]
pub struct Options {
    /// The public address; default from `PORT`.
    pub bind: Option<SocketAddr>,
    /// The admin address; default from `ADMIN_PORT`.
    pub admin_bind: Option<SocketAddr>,
    /// The Prometheus recorder, to serve on `/metrics` and stop as a foundation.
    pub metrics: Option<Metrics>,
    /// Override of the migration policy (default: at start for SQLite, external otherwise).
    pub migrations: Option<Migrations>,
}

/// A process's system, with the keys a caller may want (a test reads the bound addresses).
#[derive(Debug)]
#[must_use]
pub struct Built {
    /// The system, ready to run.
    pub system: SystemBuilder,
    /// The public HTTP server.
    pub http: Key<ServerHandle>,
    /// The admin server.
    pub admin: Key<AdminHandle>,
    /// The store.
    pub store: Key<Store>,
}

/// Where the database is: `DATABASE_URL` if set, else (for `fab all`) the SQLite file
/// `<FAB_DATA_DIR>/fab.db`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Database {
    Url(String),
    Embedded,
}

/// Builds the system of process `kind` on environment `env` (nothing is read from the
/// process's own environment). Configuration problems surface when it starts (exit 78).
pub fn build(kind: ProcessKind, env: &Env, options: Options) -> Built {
    let mut system = System::builder(kind.name()).env(env.clone());
    let admin = match options.admin_bind {
        Some(addr) => Admin::new().bind(addr),
        None => Admin::new().from_env(env),
    };
    let admin = match &options.metrics {
        Some(metrics) => {
            let metrics = metrics.clone();
            admin.metrics(move || metrics.render())
        }
        None => admin,
    };
    let admin = system.add("admin", (), admin);
    if let Some(metrics) = options.metrics {
        system.add(Spec::new("metrics").foundation(), (), metrics);
    }

    let settings = system.add(
        "settings",
        (),
        Config::<FabSettings>::builder("FAB")
            .env(env.clone())
            .build(),
    );
    let auth = system.add_fn(
        "auth",
        settings,
        move |settings: Arc<FabSettings>, _ctx| async move { tokens::load(&settings, kind).await },
    );

    let database = match env.get("DATABASE_URL") {
        Some(url) => Database::Url(url),
        None if kind == ProcessKind::All => Database::Embedded,
        None => Database::Url(String::new()), // reported as missing by the config below
    };
    let sqlite = match &database {
        Database::Url(url) => url.starts_with("sqlite:"),
        Database::Embedded => true,
    };
    let migrations = options.migrations.unwrap_or(if sqlite {
        Migrations::AtStart
    } else {
        Migrations::External
    });
    let pool_settings = match database {
        Database::Url(_) => system.add(
            "db-settings",
            (),
            Config::<PoolSettings>::builder("DATABASE")
                .env(env.clone())
                .build(),
        ),
        Database::Embedded => system.add_fn(
            "db-settings",
            settings,
            |settings: Arc<FabSettings>, _ctx| async move {
                settings.embedded_database().await.map(Arc::new)
            },
        ),
    };
    let pool_settings = pool_settings.map(|s: &Arc<PoolSettings>| PoolSettings::clone(s));
    let store = if sqlite {
        let pool = system.add("db", pool_settings, SqlPool::sqlite());
        system.add_fn("store", pool, move |pool, _ctx| {
            open(Store::sqlite(pool), migrations)
        })
    } else {
        let pool = system.add("db", pool_settings, SqlPool::postgres());
        system.add_fn("store", pool, move |pool, _ctx| {
            open(Store::postgres(pool), migrations)
        })
    };

    let spec_settings = system.add(
        "spec-settings",
        (),
        Config::<SpecSyncSettings>::builder("SPEC")
            .env(env.clone())
            .build(),
    );
    let specs = system.add(
        "spec-sync",
        (settings, spec_settings, store),
        SpecSync::new(kind),
    );

    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::default());
    if matches!(kind, ProcessKind::Fdc | ProcessKind::All) {
        match BrokerSettings::from_env(env) {
            Ok(brokers) => add_fdc_consumers(&mut system, (store, auth, specs), &bus, brokers),
            Err(problems) => {
                let problems = problems.join("; ");
                system.add_fn("fdc-broker-settings", (), move |(), _ctx| {
                    let problems = problems.clone();
                    async move { Err::<(), _>(invalid(problems)) }
                });
            }
        }
    }

    let services = kind.services();
    let server = HttpServer::from_fn(move |(store, tokens, specs): (Store, Tokens, SpecView)| {
        router(
            AppState {
                store,
                tokens,
                bus: Arc::clone(&bus),
                specs,
            },
            services,
        )
    });
    let server = match options.bind {
        Some(addr) => server.bind(addr),
        None => server.from_env(env),
    };
    let http = system.add("http", (store, auth, specs), server);
    system.add_fn(
        "idempotency-prune",
        (store, settings),
        |(store, settings): (Store, Arc<FabSettings>), ctx| async move {
            let retention = settings.idempotency_retention;
            if retention.is_zero() {
                return Err(invalid(
                    "FAB_IDEMPOTENCY_RETENTION must be more than 0".to_owned(),
                ));
            }
            let stopping = ctx.stopping_token();
            ctx.spawn("prune", async move {
                prune_every(&store, retention, prune_interval(retention), stopping).await;
                Ok::<_, BoxError>(())
            });
            Ok::<_, BoxError>(())
        },
    );
    system.add_fn("announce", (http, admin), move |(http, admin): (ServerHandle, AdminHandle), _ctx| async move {
        tracing::info!(url = %url(http.local_addr()), "fab API listening");
        tracing::info!(url = %url(admin.local_addr()), "fab admin listening (/readyz, /livez, /metrics)");
        Ok::<_, BoxError>(())
    });
    Built {
        system,
        http,
        admin,
        store,
    }
}

/// How often stored replies are pruned: a 24th of the retention, between a second and an hour.
fn prune_interval(retention: Duration) -> Duration {
    (retention / 24).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Deletes the replies older than `retention` every `every` until `stopping`; a failure is
/// logged and retried next time (a full table is no reason to stop serving).
async fn prune_every(
    store: &Store,
    retention: Duration,
    every: Duration,
    stopping: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            _ = tick.tick() => {}
        }
        match idempotency::prune(store, crate::api::now().as_millis(), retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "idempotency keys past their retention pruned"),
            Err(error) => {
                tracing::warn!(%error, "pruning idempotency keys failed; retried next time")
            }
        }
    }
}

/// The FDC consumers of sample batches: RabbitMQ and/or NATS, each handling a batch through
/// [`handle_batch`] (committed before it is acknowledged). They stop before the store (they
/// depend on it), so the batches in flight are committed and acknowledged before the pool
/// closes.
fn add_fdc_consumers(
    system: &mut SystemBuilder,
    deps: (Key<Store>, Key<Tokens>, Key<SpecView>),
    bus: &Arc<dyn Bus>,
    brokers: BrokerSettings,
) {
    // The handlers share the HTTP routes' state, so they ingest through the same code.
    let state = |bus: Arc<dyn Bus>| {
        move |(store, tokens, specs): (Store, Tokens, SpecView)| AppState {
            store,
            tokens,
            bus: Arc::clone(&bus),
            specs,
        }
    };
    if let Some(amqp) = brokers.amqp {
        tracing::debug!(queue = %amqp.queue, "FDC consumes sample batches from RabbitMQ");
        let mut settings = orderly_amqp::ConsumerSettings::new(amqp.url, amqp.queue);
        settings.prefetch = amqp.prefetch;
        settings.max_deliveries = amqp.max_deliveries;
        system.add(
            Spec::new("fdc-amqp").stop_timeout(CONSUMER_STOP_TIMEOUT),
            deps,
            orderly_amqp::Consumer::with_deps(settings, {
                let state = state(Arc::clone(bus));
                move |deps| {
                    let state = state(deps);
                    move |Json(batch): Json<Batch>, delivery: Delivery| {
                        let state = state.clone();
                        async move { handle_batch(&state, batch, &delivery).await }
                    }
                }
            }),
        );
    }
    if let Some(nats) = brokers.nats {
        let settings = orderly_nats::ConsumerSettings::new(nats.stream, nats.consumer)
            .url(nats.url)
            .subjects([nats.subject])
            .prefetch(nats.prefetch)
            .max_deliveries(nats.max_deliveries)
            .ack_wait(nats.ack_wait);
        system.add(
            Spec::new("fdc-nats").stop_timeout(CONSUMER_STOP_TIMEOUT),
            deps,
            orderly_nats::JetStreamConsumer::with_deps(settings, {
                let state = state(Arc::clone(bus));
                move |deps| {
                    let state = state(deps);
                    move |Json(batch): Json<Batch>, delivery: Delivery| {
                        let state = state.clone();
                        async move { handle_batch(&state, batch, &delivery).await }
                    }
                }
            }),
        );
    }
}

/// How long a consumer may take to finish and acknowledge the batches in flight when it stops.
const CONSUMER_STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// `http://host:port`, with 127.0.0.1 for a wildcard address (what a local browser can open).
fn url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

async fn open(store: Store, migrations: Migrations) -> Result<Store, BoxError> {
    if migrations == Migrations::AtStart {
        store.migrate().await?;
    }
    Ok(store)
}

/// `fab migrate`: applies the migrations to `DATABASE_URL` and ends (exit 0, or 1 on failure).
pub fn migrate(env: &Env) -> SystemBuilder {
    let mut system = System::builder("fab-migrate").env(env.clone());
    let settings = system.add(
        "db-settings",
        (),
        Config::<PoolSettings>::builder("DATABASE")
            .env(env.clone())
            .build(),
    );
    let settings = settings.map(|s: &Arc<PoolSettings>| PoolSettings::clone(s));
    if env
        .get("DATABASE_URL")
        .is_some_and(|url| url.starts_with("sqlite:"))
    {
        let pool = system.add("db", settings, SqlPool::sqlite());
        system.add_task(
            "migrate",
            pool,
            orderly_sql::migrate(crate::store::migrator()),
        );
    } else {
        let pool = system.add("db", settings, SqlPool::postgres());
        system.add_task(
            "migrate",
            pool,
            orderly_sql::migrate(crate::store::migrator()),
        );
    }
    system
}

/// A configuration problem, for a component's start (exit 78).
fn invalid(message: String) -> BoxError {
    Box::new(InvalidConfig::new(message))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::Reply;

    #[test]
    fn the_prune_interval_is_a_24th_of_the_retention_between_a_second_and_an_hour() {
        assert_eq!(
            prune_interval(Duration::from_secs(24 * 3600)),
            Duration::from_secs(3600)
        );
        assert_eq!(
            prune_interval(Duration::from_secs(7 * 24 * 3600)),
            Duration::from_secs(3600)
        );
        assert_eq!(
            prune_interval(Duration::from_secs(48)),
            Duration::from_secs(2)
        );
        assert_eq!(
            prune_interval(Duration::from_millis(500)),
            Duration::from_secs(1)
        );
    }

    /// The task deletes what is past the retention, keeps the rest, and ends when stopped.
    #[tokio::test]
    async fn the_prune_task_deletes_old_replies_and_stops_when_asked() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let store = Store::sqlite(pool);
        store.migrate().await.unwrap();
        let reply = |key: &str| Reply {
            principal: "tool-1".to_owned(),
            key: key.to_owned(),
            request_hash: "h".to_owned(),
            status: 200,
            body: "{}".to_owned(),
        };
        store.put_reply(&reply("old"), 1_000).await.unwrap();
        let fresh = crate::api::now().as_millis();
        store.put_reply(&reply("fresh"), fresh).await.unwrap();

        let stopping = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn({
            let (store, stopping) = (store.clone(), stopping.clone());
            async move {
                let day = Duration::from_secs(24 * 3600);
                prune_every(&store, day, Duration::from_secs(1), stopping).await;
            }
        });
        // The first round runs at once; wait for it (the timeout only guards a hang).
        tokio::time::timeout(Duration::from_secs(30), async {
            while store.reply("tool-1", "old").await.unwrap().is_some() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        assert!(store.reply("tool-1", "fresh").await.unwrap().is_some());
        stopping.cancel();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap()
            .unwrap();
    }
}
