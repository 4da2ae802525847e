//! The load generator: every request has an id and every outcome is recorded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::balancer::DisplayChain;
use crate::endpoints::ReplicaName;
use crate::executor::Tracked;
use crate::outcome::{DRILL_ERROR, DRILL_ID, DRILL_REPLICA, FailureKind, Outcome};
use crate::template::{ExpectedStatus, Template};

/// How much load to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Load {
    /// This many clients, each sending its next request as soon as the previous one ended.
    Clients(usize),
    /// This many requests a second, whatever the latency (an open model: a slow server does not
    /// slow the load down).
    Rate(u32),
}

/// How the load generator uses connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Connections {
    /// A keep-alive pool, as browsers and HTTP client libraries do.
    Pooled,
    /// A new connection for each request.
    Fresh,
}

/// An HTTP version (on the clear: HTTP/2 with prior knowledge).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum HttpVersion {
    /// HTTP/1.1.
    #[value(name = "http1")]
    Http1,
    /// HTTP/2.
    #[value(name = "http2")]
    Http2,
}

/// One request in the ledger.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) id: u64,
    /// When it was sent, from the drill's start.
    pub(crate) sent: Duration,
    pub(crate) latency: Duration,
    pub(crate) outcome: Outcome,
    /// The replica the load balancer chose, if it got that far.
    pub(crate) replica: Option<ReplicaName>,
}

/// What the load generator sends, and where.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) load: Load,
    pub(crate) connections: Connections,
    pub(crate) version: HttpVersion,
    pub(crate) target: SocketAddr,
    /// Method, path and query, headers and body, `{id}` filled in per request.
    pub(crate) template: Template,
    /// The statuses that count as a success.
    pub(crate) expect: ExpectedStatus,
    pub(crate) timeout: Duration,
}

struct Sender {
    settings: Settings,
    /// Present in pooled mode.
    pool: Option<Client<HttpConnector, Full<Bytes>>>,
    tracker: TaskTracker,
    ids: AtomicU64,
    epoch: Instant,
}

/// Sends load until `stop`, then waits for the requests in flight (each bounded by its
/// timeout) and returns every record, in no particular order.
pub(crate) async fn run(
    settings: Settings,
    epoch: Instant,
    tracker: TaskTracker,
    stop: CancellationToken,
) -> Vec<Record> {
    let pool = (settings.connections == Connections::Pooled).then(|| {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Client::builder(Tracked(tracker.clone()))
            .http2_only(settings.version == HttpVersion::Http2)
            // No request is sent twice, not even one that never left (see the balancer).
            .retry_canceled_requests(false)
            .build(connector)
    });
    let sender = Arc::new(Sender {
        pool,
        tracker,
        ids: AtomicU64::new(1),
        epoch,
        settings,
    });
    let mut tasks = JoinSet::new();
    let mut records = Vec::new();
    match sender.settings.load {
        Load::Clients(clients) => {
            for _ in 0..clients {
                let sender = sender.clone();
                let stop = stop.clone();
                tasks.spawn(async move {
                    let mut records = Vec::new();
                    while !stop.is_cancelled() {
                        records.push(sender.send(Instant::now()).await);
                    }
                    records
                });
            }
        }
        Load::Rate(per_second) => {
            let mut ticks = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
            // An open model: ticks missed while the runtime was busy are sent at once.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            loop {
                let scheduled = tokio::select! {
                    () = stop.cancelled() => break,
                    scheduled = ticks.tick() => scheduled,
                };
                let sender = sender.clone();
                tasks.spawn(async move { vec![sender.send(scheduled).await] });
                // Reap what has finished so the set stays small.
                while let Some(done) = tasks.try_join_next() {
                    records.extend(done.unwrap_or_default());
                }
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        records.extend(done.unwrap_or_default());
    }
    records
}

impl Sender {
    /// Sends one request; its latency counts from `sent`, the time it was due (in the open
    /// model, a request sent late because the runtime was busy counts its wait: no coordinated
    /// omission).
    async fn send(&self, sent: Instant) -> Record {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let (outcome, replica) =
            match tokio::time::timeout(self.settings.timeout, self.exchange(id)).await {
                Ok(result) => result,
                Err(_) => (Outcome::Client(FailureKind::Timeout), None),
            };
        Record {
            id,
            sent: sent.duration_since(self.epoch),
            latency: sent.elapsed(),
            outcome,
            replica,
        }
    }

    /// One request and its whole response.
    async fn exchange(&self, id: u64) -> (Outcome, Option<ReplicaName>) {
        let response = match self.request(id).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(id, error = %DisplayChain(&*error), "request failed");
                return (Outcome::Client(FailureKind::of(&*error)), None);
            }
        };
        let status = response.status();
        let replica = response
            .headers()
            .get(DRILL_REPLICA)
            .and_then(|v| v.to_str().ok())
            .map(ReplicaName::from);
        let upstream_failure = response
            .headers()
            .get(DRILL_ERROR)
            .and_then(|v| v.to_str().ok())
            .map(FailureKind::from_name);
        if let Err(error) = response.into_body().collect().await {
            tracing::debug!(id, error = %DisplayChain(&error), "response body failed");
            return (Outcome::Client(FailureKind::of(&error)), replica);
        }
        let outcome = match upstream_failure {
            Some(kind) => Outcome::Upstream(kind),
            None if self.settings.expect.matches(status) => Outcome::Ok,
            None => Outcome::Status(status.as_u16()),
        };
        (outcome, replica)
    }

    async fn request(
        &self,
        id: u64,
    ) -> Result<Response<Incoming>, Box<dyn std::error::Error + Send + Sync>> {
        let target = self.settings.target;
        let rendered = self.settings.template.render(id)?;
        let path = rendered.path.as_str();
        // Origin form for an HTTP/1.1 connection of our own, absolute form otherwise.
        let uri = match (&self.pool, self.settings.version) {
            (None, HttpVersion::Http1) => path.to_owned(),
            _ => format!("http://{target}{path}"),
        };
        let mut request = Request::builder()
            .method(self.settings.template.method.clone())
            .uri(uri)
            .header(DRILL_ID, id);
        for (name, value) in rendered.headers {
            request = request.header(name, value);
        }
        if self.pool.is_none() && self.settings.version == HttpVersion::Http1 {
            request = request.header(header::HOST, target.to_string());
        }
        let request = request.body(Full::new(rendered.body))?;
        if let Some(pool) = &self.pool {
            return Ok(pool.request(request).await?);
        }
        let stream = tokio::net::TcpStream::connect(target).await?;
        stream.set_nodelay(true)?;
        let io = TokioIo::new(stream);
        match self.settings.version {
            HttpVersion::Http1 => {
                let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
                // The connection ends when the response has been read and `sender` dropped.
                self.tracker.spawn(connection);
                Ok(sender.send_request(request).await?)
            }
            HttpVersion::Http2 => {
                let executor = Tracked(self.tracker.clone());
                let (mut sender, connection) =
                    hyper::client::conn::http2::handshake(executor, io).await?;
                self.tracker.spawn(connection);
                Ok(sender.send_request(request).await?)
            }
        }
    }
}

/// Writes `records` to `path` as JSON lines, by id.
pub(crate) fn write_records(path: &std::path::Path, records: &[Record]) -> std::io::Result<()> {
    use std::io::Write;
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_unstable_by_key(|r| r.id);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for record in sorted {
        let line = serde_json::json!({
            "id": record.id,
            "sent_ms": record.sent.as_secs_f64() * 1000.0,
            "latency_ms": record.latency.as_secs_f64() * 1000.0,
            "outcome": record.outcome.label(),
            "replica": record.replica.as_deref(),
        });
        writeln!(out, "{line}")?;
    }
    out.flush()
}
