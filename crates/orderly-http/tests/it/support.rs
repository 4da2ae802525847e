//! A system with the admin endpoints and an HTTP server on port 0, a router whose handlers the
//! test steps through, a raw HTTP/1 client for exact control of the wire, and a recorder of
//! metrics and logs of one test.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use futures_util::{StreamExt, stream};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use orderly::{Env, Key, Running, System, SystemBuilder};
use orderly_http::{Admin, HttpServer, RequestId, ServerHandle, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Lets a test step through a handler: it says when it entered, when it saw the drain begin,
/// and waits to be released.
#[derive(Clone, Default)]
pub(crate) struct Gate {
    pub(crate) entered: Arc<Notify>,
    pub(crate) saw_drain: Arc<Notify>,
    pub(crate) release: Arc<Notify>,
}

pub(crate) type Server = HttpServer<(), Router>;

pub(crate) fn router(gate: &Gate) -> Router {
    let slow = gate.clone();
    let stuck = gate.clone();
    let events = gate.clone();
    let ws = gate.clone();
    let deaf = gate.clone();
    Router::new()
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/slow",
            get(move |shutdown: Shutdown| async move {
                slow.entered.notify_one();
                shutdown.draining().await;
                slow.saw_drain.notify_one();
                slow.release.notified().await;
                "done"
            }),
        )
        .route(
            "/stuck",
            get(move || async move {
                stuck.entered.notify_one();
                std::future::pending::<&'static str>().await
            }),
        )
        .route(
            "/events",
            get(move |shutdown: Shutdown| async move {
                events.entered.notify_one();
                let hello =
                    stream::once(async { Ok::<_, Infallible>(Event::default().data("hello")) });
                let bye =
                    stream::once(async { Ok(Event::default().event("bye").data("stopping")) });
                Sse::new(
                    hello
                        .chain(stream::pending())
                        .take_until(shutdown.draining())
                        .chain(bye),
                )
            }),
        )
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/items/{id}",
            get(|Path(id): Path<String>| async move { format!("item {id}") }),
        )
        .route("/id", get(|id: RequestId| async move { id.to_string() }))
        .route(
            "/ws",
            get(
                move |upgrade: WebSocketUpgrade, shutdown: Shutdown| async move {
                    upgrade.on_upgrade(move |mut socket| async move {
                        let _ = socket.send(Message::text("hello")).await;
                        ws.entered.notify_one();
                        shutdown.draining().await;
                        ws.saw_drain.notify_one();
                        ws.release.notified().await;
                        let _ = socket.send(Message::Close(None)).await;
                    })
                },
            ),
        )
        .route(
            "/ws-deaf",
            get(move |upgrade: WebSocketUpgrade| async move {
                upgrade.on_upgrade(move |socket| async move {
                    deaf.entered.notify_one();
                    let _open = socket;
                    std::future::pending::<()>().await;
                })
            }),
        )
}

pub(crate) struct App {
    pub(crate) running: Running,
    pub(crate) http: ServerHandle,
    pub(crate) http_key: Key<ServerHandle>,
    pub(crate) admin: SocketAddr,
    pub(crate) gate: Gate,
}

/// Starts `admin` + `http` (the server as `configure` makes it), on port 0.
pub(crate) async fn start(
    configure: impl FnOnce(Server) -> Server,
    system: impl FnOnce(SystemBuilder) -> SystemBuilder,
) -> App {
    start_with(Admin::new(), configure, system).await
}

/// [`start`] with the given admin component.
pub(crate) async fn start_with(
    admin: Admin,
    configure: impl FnOnce(Server) -> Server,
    system: impl FnOnce(SystemBuilder) -> SystemBuilder,
) -> App {
    let gate = Gate::default();
    let mut builder = system(System::builder("test").env(Env::empty()));
    let admin = builder.add("admin", (), admin.bind(local()));
    let http = builder.add(
        "http",
        (),
        // No test may pass by waiting out a drain deadline, unless it sets one.
        configure(
            HttpServer::new(router(&gate))
                .bind(local())
                .drain_timeout(Duration::from_secs(3600)),
        ),
    );
    let running = builder.build().unwrap().start().await.unwrap();
    App {
        http: running.resource(http).unwrap(),
        http_key: http,
        admin: running.resource(admin).unwrap().local_addr(),
        running,
        gate,
    }
}

pub(crate) fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Guards against a regression that makes a drain hang (it would otherwise wait for the
/// test's hour-long drain deadline). Never reached when the code is right; no test asserts
/// how long anything took.
pub(crate) async fn unhung<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("hung: a drain that should end by itself did not")
}

/// One parsed HTTP/1 response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A raw HTTP/1 connection.
pub(crate) struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub(crate) async fn send(&mut self, bytes: &str) {
        self.stream.write_all(bytes.as_bytes()).await.unwrap();
    }

    pub(crate) async fn get(&mut self, path: &str) {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
            .await;
    }

    /// Reads more; false at end of stream (or a reset, which also ends it).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Reads until `needle` has arrived; returns everything up to and including it.
    pub(crate) async fn read_until(&mut self, needle: &str) -> String {
        loop {
            if let Some(at) = find(&self.buf, needle.as_bytes()) {
                let rest = self.buf.split_off(at + needle.len());
                let head = std::mem::replace(&mut self.buf, rest);
                return String::from_utf8(head).unwrap();
            }
            assert!(
                self.fill().await,
                "connection ended before {needle:?}; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    async fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "connection ended inside a body");
        }
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// Reads one whole response (Content-Length or chunked).
    pub(crate) async fn response(&mut self) -> Reply {
        let head = self.read_until("\r\n\r\n").await;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let body = if let Some(len) = headers.get("content-length") {
            self.read_exact(len.parse().unwrap()).await
        } else if headers
            .get("transfer-encoding")
            .is_some_and(|v| v == "chunked")
        {
            let mut body = Vec::new();
            loop {
                let size = self.read_until("\r\n").await;
                let size = usize::from_str_radix(size.trim_end(), 16).unwrap();
                let chunk = self.read_exact(size + 2).await;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
            body
        } else {
            Vec::new()
        };
        Reply {
            status,
            headers,
            body: String::from_utf8(body).unwrap(),
        }
    }

    /// Whether the server closed the connection: reads to the end; true when nothing but the
    /// end (or a reset) came.
    pub(crate) async fn closed(&mut self) -> bool {
        while self.fill().await {}
        self.buf.is_empty()
    }

    /// Everything read until the server closed the connection.
    pub(crate) async fn rest(&mut self) -> String {
        while self.fill().await {}
        String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection that asks to be closed after it.
pub(crate) async fn fetch(addr: SocketAddr, path: &str) -> Reply {
    fetch_with(addr, path, &[]).await
}

/// What one test's servers recorded: the `metrics` they recorded, in a Prometheus recorder of
/// the test's own, and the log events, as JSON lines.
#[derive(Clone)]
pub(crate) struct Recorded {
    pub(crate) metrics: PrometheusHandle,
    logs: Logs,
}

impl Recorded {
    /// The access log's events so far, as JSON objects.
    pub(crate) fn access_log(&self) -> Vec<serde_json::Value> {
        let bytes = self.logs.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter(|event| event["target"] == "orderly_http::access")
            .collect()
    }
}

/// Runs `test` on a current-thread runtime with a `metrics` recorder and a `tracing`
/// subscriber of its own. Every task of the test's system runs on this one thread, where both
/// are installed (thread-locally), so they see all of the test's requests and none of another
/// test's: a global recorder or subscriber would be shared by every test of the binary.
pub(crate) fn recorded<F: Future<Output = ()>>(test: impl FnOnce(Recorded) -> F) {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("http_server_request_duration_seconds".into()),
            &[0.005, 0.05, 0.5, 5.0],
        )
        .unwrap()
        .build_recorder();
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(logs.clone())
        .finish();
    let recorded = Recorded {
        metrics: recorder.handle(),
        logs,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        tracing::subscriber::with_default(subscriber, || runtime.block_on(test(recorded)));
    });
}

/// Log lines written to memory.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// One request with `headers` (`name: value` lines) on a fresh connection that asks to be
/// closed after it.
pub(crate) async fn fetch_with(addr: SocketAddr, path: &str, headers: &[&str]) -> Reply {
    let mut raw = Raw::connect(addr).await;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    raw.send(&request).await;
    raw.response().await
}

/// Waits until the server has no connection left: then every request it served has ended,
/// and has been counted and logged.
pub(crate) async fn idle(http: &ServerHandle) {
    unhung(http.connections().wait_for(|&n| n == 0))
        .await
        .unwrap();
}
