//! The drill's replica: an orderly service that drains. `GET /work?ms=N` answers after N ms
//! (default 5, at most 10 000) and appends the request's `x-drill-id` to the ledger file
//! `DRILL_LEDGER` before answering. With `&commit=first` it appends the id as soon as the
//! request arrives, like a service that commits its effect before a slow answer: a client that
//! gives up early then fails a request that was handled, which the drill reports.
//!
//! ```text
//! cargo build -p orderly-drill --examples
//! target/debug/orderly-drill --replica-cmd target/debug/examples/01_replica
//! # or alone:
//! PORT=8080 ADMIN_PORT=9090 SHUTDOWN_DELAY=1s DRILL_LEDGER=/tmp/ids \
//!     cargo run -p orderly-drill --example 01_replica
//! curl -H 'x-drill-id: 7' 'localhost:8080/work?ms=20'; cat /tmp/ids   # 7
//! ```
//!
//! The ledger is a component the server depends on, so it is closed (and synced) only after
//! the server has drained. Each id is written to the file before the response, in one
//! `write` call, so the ledger is complete even after a SIGKILL.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::{Router, routing::get};
use orderly::{BoxError, Component, Context, Env, System};
use orderly_drill::{DRILL_ID, DRILL_LEDGER};
use orderly_http::{Admin, HttpServer};

/// Where handled ids go; `None` without `DRILL_LEDGER`.
#[derive(Clone, Default)]
struct Ledger(Option<Arc<Mutex<File>>>);

impl Ledger {
    fn append(&self, id: &str) {
        let Some(file) = &self.0 else { return };
        let line = format!("{id}\n");
        let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = file.write_all(line.as_bytes()) {
            tracing::error!(%error, id, "cannot append to the ledger");
        }
    }
}

/// Opens the ledger at start, syncs it at stop.
struct LedgerFile {
    env: Env,
    ledger: Ledger,
}

impl Component for LedgerFile {
    type Deps = ();
    type Resource = Ledger;

    async fn start(&mut self, (): (), _ctx: Context) -> Result<Ledger, BoxError> {
        if let Some(path) = self.env.get(DRILL_LEDGER) {
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            self.ledger = Ledger(Some(Arc::new(Mutex::new(file))));
        }
        Ok(self.ledger.clone())
    }

    async fn stop(&mut self) -> Result<(), BoxError> {
        if let Some(file) = self.ledger.0.take() {
            file.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .sync_all()?;
        }
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct Work {
    ms: Option<u64>,
    commit: Option<Commit>,
}

/// When the id goes to the ledger.
#[derive(Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Commit {
    /// As the request arrives.
    First,
    /// Just before the answer.
    #[default]
    Last,
}

async fn work(
    State(ledger): State<Ledger>,
    Query(work): Query<Work>,
    headers: HeaderMap,
) -> &'static str {
    let ms = work.ms.unwrap_or(5).min(10_000);
    let commit = work.commit.unwrap_or_default();
    let id = headers.get(DRILL_ID).and_then(|v| v.to_str().ok());
    if let (Commit::First, Some(id)) = (commit, id) {
        ledger.append(id);
    }
    tokio::time::sleep(Duration::from_millis(ms)).await;
    if let (Commit::Last, Some(id)) = (commit, id) {
        ledger.append(id);
    }
    "done\n"
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_target(false).init();
    let env = Env::process();
    let mut system = System::builder("drill-replica")
        .env(env.clone())
        .log_all_events();
    system.add("admin", (), Admin::new().from_env(&env));
    let ledger = system.add(
        "ledger",
        (),
        LedgerFile {
            env: env.clone(),
            ledger: Ledger::default(),
        },
    );
    let server = HttpServer::from_fn(|ledger: Ledger| {
        Router::new().route("/work", get(work)).with_state(ledger)
    })
    .from_env(&env)
    .access_log(orderly_http::AccessLog::Off);
    system.add("http", ledger, server);
    system.run().await
}
