//! An in-process `fab all` on port 0 and an HTTP client for it.

use std::net::SocketAddr;

use axum::http::{HeaderMap, Method, Request, StatusCode};
use fab::service::{self, Migrations, Options, ProcessKind};
use fab::store::Store;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use orderly::{Env, Running, Status};
use serde_json::{Value, json};
use tokio::sync::watch;

pub(crate) const TOOL: &str = "tool-token-0001";
pub(crate) const ENGINEER: &str = "engineer-token-0001";
/// A second engineer: specs need four eyes.
pub(crate) const ENGINEER_2: &str = "engineer-token-0002";
pub(crate) const TOKENS: &str = "tool:tool-token-0001,engineer:engineer-token-0001,engineer:engineer-token-0002,admin:admin-token-0001";

/// Which database a test fab runs on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

pub(crate) struct Fab {
    running: Option<Running>,
    pub(crate) addr: SocketAddr,
    pub(crate) store: Store,
    client: Client<HttpConnector, Full<Bytes>>,
    _dir: tempfile::TempDir,
    database: Option<(String, String)>,
}

fn postgres_url() -> String {
    std::env::var("POSTGRES_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `base` with its database path replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (left, query) = base
        .split_once('?')
        .map_or((base, None), |(l, q)| (l, Some(q)));
    let root = match left.rfind('/') {
        Some(i) if i > "postgres://".len() => &left[..i],
        _ => left,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// A new, empty PostgreSQL database: its URL, and what [`Fab::launch`] needs to drop it.
pub(crate) async fn postgres_database() -> (String, (String, String)) {
    let admin_url = postgres_url();
    let name = format!("fab_it_{:016x}", rand::random::<u64>());
    let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    (with_database(&admin_url, &name), (admin_url, name))
}

impl Fab {
    pub(crate) async fn start(backend: Backend) -> Self {
        Self::start_with(backend, Vec::new()).await
    }

    /// A fab on `backend` with these variables too (a broker to consume from, say).
    pub(crate) async fn start_with(backend: Backend, extra: Vec<(String, String)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut vars = vec![
            ("FAB_DATA_DIR".to_owned(), dir.path().display().to_string()),
            ("FAB_TOKENS".to_owned(), TOKENS.to_owned()),
            ("LOG_LEVEL".to_owned(), "warn".to_owned()),
        ];
        let mut database = None;
        if let Backend::Postgres = backend {
            let (url, created) = postgres_database().await;
            vars.push(("DATABASE_URL".to_owned(), url));
            database = Some(created);
        }
        vars.extend(extra);
        Self::launch(ProcessKind::All, vars, dir, database).await
    }

    /// Starts a process of `kind` on `vars` (its data in `dir`, `database` dropped at stop).
    pub(crate) async fn launch(
        kind: ProcessKind,
        vars: Vec<(String, String)>,
        dir: tempfile::TempDir,
        database: Option<(String, String)>,
    ) -> Self {
        let env = Env::from_pairs(vars);
        let options = Options {
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            admin_bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            migrations: Some(Migrations::AtStart),
            ..Options::default()
        };
        let built = service::build(kind, &env, options);
        let running = built.system.build().unwrap().start().await.unwrap();
        let addr = running.resource(built.http).unwrap().local_addr();
        let store = running.resource(built.store).unwrap();
        Self {
            running: Some(running),
            addr,
            store,
            client: Client::builder(TokioExecutor::new()).build_http(),
            _dir: dir,
            database,
        }
    }

    /// The process's status (component health included).
    pub(crate) fn status(&self) -> watch::Receiver<Status> {
        self.running.as_ref().unwrap().status()
    }

    /// Where the process keeps its files.
    pub(crate) fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Stops the process and hands back its data directory and database (to start it again
    /// on them).
    pub(crate) async fn stop_keeping_data(
        mut self,
    ) -> (tempfile::TempDir, Option<(String, String)>) {
        let running = self.running.take().unwrap();
        let report = running.stop().await;
        assert!(report.is_clean(), "{report:?}");
        let dir = tempfile::tempdir().unwrap();
        (std::mem::replace(&mut self._dir, dir), self.database.take())
    }

    pub(crate) async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            let report = running.stop().await;
            assert!(report.is_clean(), "{report:?}");
        }
        if let Some((admin_url, name)) = self.database.take() {
            let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
    }

    /// Sends a request; the body is JSON text (not necessarily valid: tests send bad input).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> (StatusCode, Value, HeaderMap) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value, headers)
    }

    /// A write with a token and an idempotency key.
    pub(crate) async fn post(
        &self,
        path: &str,
        token: &str,
        key: &str,
        body: &Value,
    ) -> (StatusCode, Value, HeaderMap) {
        let auth = format!("Bearer {token}");
        self.send(
            Method::POST,
            path,
            &[("authorization", &auth), ("idempotency-key", key)],
            Some(body.to_string()),
        )
        .await
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, body, _) = self.send(Method::GET, path, &[], None).await;
        (status, body)
    }

    /// Creates the standard configuration of the test scope (CD 45 nm, gain −5, dose 40).
    pub(crate) async fn configure(&self) -> Value {
        let (status, body, _) = self
            .post("/v1/apc/configs", ENGINEER, &key(), &config_body(0.3))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

pub(crate) fn key() -> String {
    format!("k-{:016x}", rand::random::<u64>())
}

pub(crate) fn config_body(lambda: f64) -> Value {
    json!({
        "product": "soc-a",
        "technology": "N5",
        "layer": "M1",
        "sr_limits": { "min": 30.0, "max": 50.0 },
        "params": {
            "kind": { "type": "ewma", "lambda": lambda },
            "target": 45.0,
            "model_gain": -5.0,
            "process_gain": -5.0,
            "nominal": 40.0,
            "feedback_weight": 1.0,
            "technology_weight": 0.0,
            "outlier_k": 3.5,
            "initial_sigma": 1.0,
            "sigma_lambda": 0.05,
            "max_step": 0.02,
            "deadband": 0.05,
            "max_consecutive_outliers": 3,
            "idle_limit": 604_800_000u64,
            "feedforward_window": 28_800_000u64
        }
    })
}

pub(crate) const THREAD_PATH: &str = "/v1/apc/threads/fab-1/scanner-07/soc-a/N5/M1/RT-42";

pub(crate) fn lot(lot: &str, mode: Value) -> Value {
    json!({
        "lot": {
            "lot": lot,
            "thread": {
                "fab": "fab-1", "tool": "scanner-07", "product": "soc-a",
                "technology": "N5", "layer": "M1", "reticle": "RT-42"
            },
            "product_kind": "mobile"
        },
        "mode": mode
    })
}

pub(crate) fn formula() -> Value {
    json!({ "mode": "formula" })
}

/// The API URL of a `fab` process started with piped stdout, once it has logged both where it
/// listens and `system_started` (within 60 s); the rest of its stdout is read (and dropped) by
/// the returned task, so the process never blocks on a full pipe.
pub(crate) async fn api_of(
    child: &mut tokio::process::Child,
) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut api, mut started) = (None, false);
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if value["message"] == "fab API listening" {
                api = value["url"].as_str().map(str::to_owned);
            }
            started |= value["event"] == "system_started";
            if api.is_some() && started {
                return;
            }
        }
    })
    .await
    .expect("the fab process logged its API address and system_started within 60 s");
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (api.unwrap(), drain)
}
