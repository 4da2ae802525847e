//! The load balancer: an in-process listener that forwards each request to the next routable
//! endpoint over pooled keep-alive connections, like a real proxy — and never retries, so a
//! lost request is seen.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::endpoints::{Endpoints, ReplicaName};
use crate::executor::Tracked;
use crate::load::HttpVersion;
use crate::outcome::{DRILL_ERROR, DRILL_REPLICA, FailureKind};

/// Headers that belong to one connection, not to the message (RFC 9110, 7.6.1).
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

struct Balancer {
    endpoints: Arc<Endpoints>,
    upstream: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

/// Serves on `listener` until `stop`, every connection task on `tracker`.
pub(crate) fn serve(
    listener: TcpListener,
    endpoints: Arc<Endpoints>,
    version: HttpVersion,
    timeout: Duration,
    tracker: &TaskTracker,
    stop: CancellationToken,
) {
    let executor = Tracked(tracker.clone());
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let upstream = Client::builder(executor.clone())
        .http2_only(version == HttpVersion::Http2)
        // hyper-util resends a request whose pooled connection turned out closed before the
        // request was written: exactly the keep-alive race a drill must see, so never.
        .retry_canceled_requests(false)
        .build(connector);
    let balancer = Arc::new(Balancer {
        endpoints,
        upstream,
        timeout,
    });
    let connections = tracker.clone();
    tracker.spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, most likely: back off instead of spinning.
                    tracing::warn!(%error, "the load balancer cannot accept");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let balancer = balancer.clone();
            let stop = stop.clone();
            let executor = executor.clone();
            connections.spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(executor);
                let service = service_fn(move |request| {
                    let balancer = balancer.clone();
                    async move { Ok::<_, Infallible>(balancer.forward(request).await) }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = connection => {}
                    () = stop.cancelled() => {}
                }
            });
        }
    });
}

impl Balancer {
    async fn forward(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some((replica, addr)) = self.endpoints.pick(Instant::now()) else {
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                FailureKind::NoEndpoint,
                None,
            );
        };
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return failure(StatusCode::BAD_REQUEST, FailureKind::Eof, None),
        };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut upstream = Request::builder()
            .method(parts.method)
            .uri(format!("http://{addr}{path}"));
        for (name, value) in &parts.headers {
            if name != header::HOST && !HOP_BY_HOP.contains(name) {
                upstream = upstream.header(name, value);
            }
        }
        let Ok(upstream) = upstream.body(Full::new(body)) else {
            return failure(StatusCode::BAD_REQUEST, FailureKind::Other, Some(&replica));
        };
        let exchange = async {
            let response = self.upstream.request(upstream).await.map_err(|error| {
                tracing::debug!(error = %DisplayChain(&error), %replica, "upstream request failed");
                FailureKind::of(&error)
            })?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|error| {
                tracing::debug!(error = %DisplayChain(&error), %replica, "upstream body failed");
                FailureKind::of(&error)
            })?;
            Ok::<_, FailureKind>((parts, body.to_bytes()))
        };
        let (parts, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => {
                return failure(
                    StatusCode::BAD_GATEWAY,
                    FailureKind::Timeout,
                    Some(&replica),
                );
            }
            Ok(Err(kind)) => return failure(StatusCode::BAD_GATEWAY, kind, Some(&replica)),
            Ok(Ok(response)) => response,
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = parts.status;
        for (name, value) in &parts.headers {
            if !HOP_BY_HOP.contains(name) && name != header::CONTENT_LENGTH {
                response.headers_mut().append(name, value.clone());
            }
        }
        set_replica(&mut response, &replica);
        response
    }
}

fn failure(
    status: StatusCode,
    kind: FailureKind,
    replica: Option<&ReplicaName>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!(
        "orderly-drill load balancer: {}\n",
        kind.as_str()
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        HeaderName::from_static(DRILL_ERROR),
        HeaderValue::from_static(kind.as_str()),
    );
    if let Some(replica) = replica {
        set_replica(&mut response, replica);
    }
    response
}

fn set_replica(response: &mut Response<Full<Bytes>>, replica: &ReplicaName) {
    if let Ok(value) = HeaderValue::from_str(replica) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(DRILL_REPLICA), value);
    }
}

/// An error and its sources on one line, for the log.
pub(crate) struct DisplayChain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// Binds the load balancer's listener.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, crate::Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| crate::Error::new(crate::error::ErrorKind::Bind { addr, source }))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A balancer in front of `endpoints`, with `timeout` upstream; its address.
    async fn balancer(endpoints: &[SocketAddr], timeout: Duration) -> (SocketAddr, TaskTracker) {
        let table = Arc::new(Endpoints::default());
        for (i, addr) in endpoints.iter().enumerate() {
            table.set_ready(&format!("r{i}").into(), *addr);
        }
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tracker = TaskTracker::new();
        serve(
            listener,
            table,
            HttpVersion::Http1,
            timeout,
            &tracker,
            CancellationToken::new(),
        );
        (addr, tracker)
    }

    /// One GET through the balancer: status, `x-drill-error` and `x-drill-replica`.
    async fn get(addr: SocketAddr) -> (u16, Option<String>, Option<String>) {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let driver = tokio::spawn(connection);
        let request = Request::get("/work")
            .header(header::HOST, addr.to_string())
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
        };
        let (error, replica) = (header(DRILL_ERROR), header(DRILL_REPLICA));
        drop(sender);
        driver.abort();
        (response.status().as_u16(), error, replica)
    }

    fn r0() -> Option<String> {
        Some("r0".to_owned())
    }

    /// A raw upstream that answers each request with `answer` (then closes), counting requests.
    async fn upstream(answer: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut head = [0; 1024];
                    if stream.read(&mut head).await.unwrap_or(0) > 0 {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let _ = stream.write_all(answer).await;
                        if answer.is_empty() {
                            // Never answer.
                            std::future::pending::<()>().await;
                        }
                    }
                });
            }
        });
        (addr, requests)
    }

    #[tokio::test]
    async fn no_routable_endpoint_is_a_503_no_endpoint() {
        let (addr, _tracker) = balancer(&[], Duration::from_secs(5)).await;
        assert_eq!(get(addr).await, (503, Some("no-endpoint".to_owned()), None));
    }

    #[tokio::test]
    async fn a_closed_port_is_a_502_refused() {
        let closed = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let (addr, _tracker) = balancer(&[closed], Duration::from_secs(5)).await;
        assert_eq!(get(addr).await, (502, Some("refused".to_owned()), r0()));
    }

    #[tokio::test]
    async fn a_response_cut_mid_body_is_a_502_eof_and_is_not_retried() {
        let (upstream, requests) =
            upstream(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial").await;
        let (addr, _tracker) = balancer(&[upstream], Duration::from_secs(5)).await;
        assert_eq!(get(addr).await, (502, Some("eof".to_owned()), r0()));
        assert_eq!(requests.load(Ordering::SeqCst), 1, "sent exactly once");
    }

    #[tokio::test]
    async fn an_upstream_that_never_answers_is_a_502_timeout() {
        let (upstream, requests) = upstream(b"").await;
        let (addr, _tracker) = balancer(&[upstream], Duration::from_millis(200)).await;
        assert_eq!(get(addr).await, (502, Some("timeout".to_owned()), r0()));
        assert_eq!(requests.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_whole_response_is_passed_on_with_the_replica_named() {
        let (upstream, _) =
            upstream(b"HTTP/1.1 201 Created\r\ncontent-length: 3\r\nconnection: close\r\n\r\nyes")
                .await;
        let (addr, _tracker) = balancer(&[upstream], Duration::from_secs(5)).await;
        assert_eq!(get(addr).await, (201, None, r0()));
    }
}
