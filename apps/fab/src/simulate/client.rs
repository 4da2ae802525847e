//! The simulation's HTTP client: a bounded number of requests in flight, every answer
//! counted by status with its latency, nothing retried, a lost connection stops everything.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// What a request's answer means to the simulation.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// 2xx, with its body.
    Done(Bytes),
    /// A lot the fab refused to dispatch (an out-of-spec SR or an inhibited tool).
    Held,
    /// Anything else: counted as a failure.
    Failed,
}

/// Whether a refusal is a production hold rather than a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holds {
    /// Every non-2xx answer is a failure.
    None,
    /// A sub-recipe request: 422 on `mode.sr` (checkSpec) or 409 on `lot.thread.tool`
    /// (FDC inhibit) hold the lot.
    Dispatch,
}

/// Counters of everything sent.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) by_status: BTreeMap<String, u64>,
    pub(crate) latencies: Vec<Duration>,
    pub(crate) failed: u64,
    pub(crate) failures: Vec<String>,
    pub(crate) held_out_of_spec: u64,
    pub(crate) held_inhibited: u64,
    pub(crate) unreachable: Option<String>,
}

/// How many failure messages a summary keeps.
const KEPT_FAILURES: usize = 10;

impl Recorder {
    pub(crate) fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.failures.len() < KEPT_FAILURES {
            self.failures.push(what);
        }
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    field: Option<String>,
}

/// The fab's API as the simulation uses it.
#[derive(Debug)]
pub(crate) struct Api {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    permits: Semaphore,
    timeout: Duration,
    session: u64,
    keys: AtomicU64,
    cancel: CancellationToken,
    pub(crate) record: Mutex<Recorder>,
}

impl Api {
    pub(crate) fn new(
        base: &str,
        in_flight: usize,
        timeout: Duration,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            base: base.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            permits: Semaphore::new(in_flight),
            timeout,
            session: rand::random(),
            keys: AtomicU64::new(0),
            cancel,
            record: Mutex::new(Recorder::default()),
        })
    }

    /// The base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// A name unique to this simulation (so a second run against the same fab never collides
    /// with the first's lots, measurements or idempotency keys).
    pub(crate) fn unique(&self, prefix: &str) -> String {
        let n = self.keys.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{:08x}-{n}", self.session & 0xffff_ffff)
    }

    pub(crate) fn recorder(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one request (a write when `token` is given, with a fresh idempotency key).
    /// A write returns `Err` (without sending) once the simulation is stopping; a connection error
    /// records the fab as unreachable and stops the simulation.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        holds: Holds,
    ) -> Result<(StatusCode, Outcome), Stopped> {
        let (status, bytes) = self.exchange(method.clone(), path, token, body).await?;
        let Some(status) = status else {
            return Ok((StatusCode::GATEWAY_TIMEOUT, Outcome::Failed));
        };
        let mut record = self.recorder();
        if status.is_success() {
            return Ok((status, Outcome::Done(bytes)));
        }
        let field = serde_json::from_slice::<ErrorBody>(&bytes)
            .ok()
            .and_then(|e| e.field);
        let hold = match (holds, status, field.as_deref()) {
            (Holds::Dispatch, StatusCode::UNPROCESSABLE_ENTITY, Some("mode.sr")) => {
                Some(&mut record.held_out_of_spec)
            }
            (Holds::Dispatch, StatusCode::CONFLICT, Some("lot.thread.tool")) => {
                Some(&mut record.held_inhibited)
            }
            _ => None,
        };
        if let Some(count) = hold {
            *count += 1;
            return Ok((status, Outcome::Held));
        }
        let text = String::from_utf8_lossy(&bytes);
        record.fail(format!("{method} {path}: HTTP {}: {text}", status.as_u16()));
        Ok((status, Outcome::Failed))
    }

    /// One request and its whole answer; `None` status for a timeout (counted as failed).
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<(Option<StatusCode>, Bytes), Stopped> {
        // Once stopping, no more writes; the final reads (alarms) still go.
        let writing = token.is_some();
        if writing && self.cancel.is_cancelled() {
            return Err(Stopped);
        }
        let permit = tokio::select! {
            biased;
            () = self.cancel.cancelled(), if writing => return Err(Stopped),
            permit = self.permits.acquire() => permit.map_err(|_| Stopped)?,
        };
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request
                .header("authorization", format!("Bearer {token}"))
                .header("idempotency-key", self.unique("sim"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = match request.body(Full::new(Bytes::from(body.unwrap_or_default()))) {
            Ok(request) => request,
            Err(e) => {
                self.recorder().fail(format!("{method} {path}: {e}"));
                return Ok((None, Bytes::new()));
            }
        };
        let started = tokio::time::Instant::now();
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, bytes))
        };
        let answer = tokio::time::timeout(self.timeout, exchange).await;
        let latency = started.elapsed();
        drop(permit);
        let mut record = self.recorder();
        match answer {
            Ok(Ok((status, bytes))) => {
                *record
                    .by_status
                    .entry(status.as_u16().to_string())
                    .or_default() += 1;
                record.latencies.push(latency);
                Ok((Some(status), bytes))
            }
            Ok(Err(e)) => {
                *record.by_status.entry("connection".to_owned()).or_default() += 1;
                record.fail(format!("{method} {path}: {}", chain(e.as_ref())));
                if record.unreachable.is_none() {
                    record.unreachable = Some(chain(e.as_ref()));
                }
                drop(record);
                self.cancel.cancel();
                Err(Stopped)
            }
            Err(_) => {
                *record.by_status.entry("timeout".to_owned()).or_default() += 1;
                record.fail(format!(
                    "{method} {path}: no answer within {:?}",
                    self.timeout
                ));
                Ok((None, Bytes::new()))
            }
        }
    }
}

/// The simulation is stopping (Ctrl-C, or the fab went away): send nothing more.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stopped;

/// An error and its sources on one line (hyper's own message is just "client error").
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
