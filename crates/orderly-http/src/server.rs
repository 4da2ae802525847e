//! The HTTP server component: serves a router (or any tower service) and drains on stop.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Component, Context, Env};
use tokio::sync::watch;

use crate::access_log::AccessLog;
use crate::config::{PORT, addr_from_env, local};
use crate::error::ErrorKind;
use crate::route::record_routes;
use crate::serve::{self, Gauges, Serving};
use crate::service::{HttpService, Limits, Observe};

/// The default drain deadline: inside the default global shutdown deadline (25 s).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// An HTTP/1.1 and HTTP/2 (h2c) server for an axum `Router` or any tower service, as an
/// orderly [`Component`].
///
/// It starts by binding its address (a port in use fails the start, naming the address) and
/// serves until the component is asked to stop; then it *drains*: it stops accepting, answers
/// the requests in flight with `Connection: close` (HTTP/1.1) or after a GOAWAY (HTTP/2),
/// closes idle keep-alive connections and connections that never sent a request, and waits for
/// the requests in flight. Long-lived responses end when their [`Shutdown`](crate::Shutdown)
/// signal fires. At the [drain deadline](HttpServer::drain_timeout) what is left is cut, and
/// the stop fails with an [`Error`](crate::Error) naming how many requests on which routes were cut, so the
/// system's report shows them.
///
/// Its resource is a [`ServerHandle`] (the bound address, for tests that bind port 0).
///
/// Each request gets a [`RequestId`](crate::RequestId), is counted in the request metrics and
/// written to the [access log](HttpServer::access_log) when it ends (see the [crate
/// docs](crate#observability)). To label them with the route that matched, the server puts a
/// layer on every route of the axum `Router` it serves; a service of any other type is served
/// as it is, and its requests count as `unmatched`.
///
/// Protections, each configurable: a header-read timeout against slowloris clients (408
/// Request Timeout and the connection closed if part of a head had arrived, the connection
/// closed without a word if it was idle), a body size limit (413 Payload Too Large, before the service is
/// called when `Content-Length` says so, while reading otherwise), and a request timeout on
/// the response head (503 Service Unavailable: the server, not the client, was too slow; a
/// streaming body is not limited by it).
///
/// The component's stop timeout ([`Spec::stop_timeout`](orderly::Spec::stop_timeout)), if
/// set, should be longer than the drain timeout, or the core abandons the stop first.
#[must_use]
pub struct HttpServer<D, S> {
    make: Box<dyn FnMut(D) -> S + Send>,
    addr: Result<SocketAddr, ErrorKind>,
    drain_timeout: Duration,
    limits: Limits,
    access_log: AccessLog,
    id_on_every_response: bool,
    serving: Option<Serving>,
}

impl<S: Clone + Send + 'static> HttpServer<(), S> {
    /// Serves `service` (e.g. an axum `Router`) on 127.0.0.1:8080 unless told otherwise.
    pub fn new(service: S) -> Self {
        Self::from_fn(move |()| service.clone())
    }
}

impl<D, S> HttpServer<D, S> {
    /// Serves what `make` builds from the component's dependencies at each start: a router
    /// whose state is the database pool, for example. Add the server with those dependencies,
    /// and it stops (drains) before them.
    pub fn from_fn(make: impl FnMut(D) -> S + Send + 'static) -> Self {
        Self {
            make: Box::new(make),
            addr: Ok(local(8080)),
            drain_timeout: DRAIN_TIMEOUT,
            limits: Limits {
                header_read_timeout: Duration::from_secs(10),
                body_limit: 2 * 1024 * 1024,
                request_timeout: Some(Duration::from_secs(30)),
            },
            access_log: AccessLog::default(),
            id_on_every_response: false,
            serving: None,
        }
    }

    /// Listens on `addr` (port 0 picks a free port; see [`ServerHandle::local_addr`]).
    pub fn bind(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.addr = Ok(addr.into());
        self
    }

    /// Listens on the port in `PORT` (default 8080): on every interface in a Kubernetes
    /// container, on 127.0.0.1 otherwise. An invalid value fails the start with
    /// [`InvalidConfig`](orderly::InvalidConfig) naming `PORT` (exit code 78).
    pub fn from_env(mut self, env: &Env) -> Self {
        self.addr = addr_from_env(env, PORT, 8080);
        self
    }

    /// How long the drain may take before the requests still in flight are cut. Default 20 s.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// How long an HTTP/1 client may take to send a request's head, counted from the accept or
    /// the end of the previous response, before the connection is closed (slowloris): with
    /// `408 Request Timeout` if part of the head had arrived. Default 10 s.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout;
        self
    }

    /// The largest request body accepted, in bytes; larger ones get 413. Default 2 MiB.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.limits.body_limit = bytes;
        self
    }

    /// How long the service may take to produce a response head before the client gets 503;
    /// `None` for no limit. Default 30 s.
    pub fn request_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.limits.request_timeout = timeout.into();
        self
    }

    /// Whether and at which level to write the access log; default [`AccessLog::Debug`].
    pub fn access_log(mut self, access_log: AccessLog) -> Self {
        self.access_log = access_log;
        self
    }

    /// Whether every response carries an `x-request-id`. By default (`false`) a response
    /// carries one when its request has an id something recorded: the client's, one the
    /// handler asked for ([`RequestId`](crate::RequestId)) before its response, or one the
    /// access log will write. A response whose id nothing recorded would carry a number that
    /// leads nowhere, and making it costs about 3 % of the requests/s a small handler serves
    /// (`benches/README.md`).
    pub fn request_id_on_every_response(mut self, every: bool) -> Self {
        self.id_on_every_response = every;
        self
    }
}

impl<D, S> fmt::Debug for HttpServer<D, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .field("drain_timeout", &self.drain_timeout)
            .field("limits", &self.limits)
            .field("access_log", &self.access_log)
            .field("id_on_every_response", &self.id_on_every_response)
            .field("serving", &self.serving.is_some())
            .finish_non_exhaustive()
    }
}

impl<D, S> Component for HttpServer<D, S>
where
    D: Send + 'static,
    S: HttpService,
{
    type Deps = D;
    type Resource = ServerHandle;

    /// Binds the address and serves in a task of the component. Draining begins when the
    /// component is asked to stop ([`Context::stopping`]).
    async fn start(&mut self, deps: D, ctx: Context) -> Result<ServerHandle, BoxError> {
        let (listener, local_addr) = serve::bind(&self.addr).await?;
        let service = record_routes((self.make)(deps));
        // The server's metrics are described and registered (`serve::spawn`) with the
        // recorder installed now.
        let observe = Observe::On {
            access_log: self.access_log,
            id_on_every_response: self.id_on_every_response,
        };
        let (serving, gauges) = serve::spawn(
            &ctx,
            "http accept loop",
            listener,
            service,
            self.limits,
            observe,
            ctx.stopping_token(),
        );
        self.serving = Some(serving);
        tracing::info!(component = ctx.name(), addr = %local_addr, "HTTP server listening");
        Ok(ServerHandle {
            inner: Arc::new(HandleInner { local_addr, gauges }),
        })
    }

    /// Drains: see [`HttpServer`]. Fails, naming the routes, when requests were cut.
    async fn stop(&mut self) -> Result<(), BoxError> {
        match self.serving.take() {
            Some(serving) => Ok(serving.drain(self.drain_timeout).await?),
            None => Ok(()),
        }
    }
}

/// The resource of an [`HttpServer`]: where it listens, what it is doing.
#[derive(Clone, Debug)]
#[must_use]
pub struct ServerHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    local_addr: SocketAddr,
    gauges: Gauges,
}

impl ServerHandle {
    /// The address the server listens on (with the port picked when it bound port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// How many requests are in flight (until their response bodies are sent).
    pub fn in_flight(&self) -> usize {
        self.inner.gauges.in_flight.count()
    }

    /// The number of open connections, updated as connections open and close.
    pub fn connections(&self) -> watch::Receiver<usize> {
        self.inner.gauges.connections.clone()
    }
}
