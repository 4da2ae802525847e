//! The hyper service around the user's tower service: tracks requests in flight, enforces the
//! body limit and the request timeout, hands each request the [`Shutdown`] signal and its
//! [`RequestId`](crate::RequestId), and records each request in the HTTP metrics and the access log.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use http_body_util::Limited;
use hyper::body::Incoming;
use orderly::BoxError;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::access_log::{AccessLog, Entry};
use crate::head_timer::HeadClock;
use crate::http_metrics::Instruments;
use crate::in_flight::{Flight, Guard, InFlight, Upgraded};
use crate::request_id::{REQUEST_ID, RequestId};
use crate::route::{Known, Routed};
use crate::shutdown::Shutdown;

/// A service [`HttpServer`](crate::HttpServer) can serve: any tower service from
/// `Request<axum::body::Body>` to a response with a `Bytes` body, cloneable and `Send`, such as
/// an axum `Router`. Implemented for every such service; not to be implemented by hand.
pub trait HttpService:
    Service<
        Request<Body>,
        Response = Response<Self::ResponseBody>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + Sync
    + 'static
{
    /// The response body.
    type ResponseBody: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> HttpService for S
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type ResponseBody = B;
}

/// The protections applied to every request before it reaches the user's service.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// How long a client may take to send a request's head (HTTP/1).
    pub(crate) header_read_timeout: Duration,
    /// The largest request body accepted, in bytes.
    pub(crate) body_limit: usize,
    /// How long the service may take to produce a response head; `None` for no limit.
    pub(crate) request_timeout: Option<Duration>,
}

/// What a listener records about its requests.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Observe {
    /// Request ids, the route layer, HTTP metrics and the access log (the public server).
    On {
        /// The access log's level.
        access_log: AccessLog,
        /// Whether every response carries a request id, even one nothing recorded.
        id_on_every_response: bool,
    },
    /// Only the in-flight count every drain needs (the admin listener: probes and scrapes are
    /// not traffic).
    Off,
}

/// What the accept loop serves: the user's service plus the server's bookkeeping. Cloned for
/// each connection, which then knows its client's address.
#[derive(Clone, Debug)]
pub(crate) struct Handler<S> {
    /// With the route layer, if `S` is a router.
    service: S,
    /// The router without the layer, for the paths of static routes seen before.
    known: Option<(S, Arc<Known>)>,
    limits: Limits,
    /// The connection's.
    pub(crate) peer: Arc<Peer>,
}

/// What every request of a listener shares.
#[derive(Debug)]
pub(crate) struct Listener {
    /// What the server records; `None` for [`Observe::Off`].
    pub(crate) recording: Option<Recording>,
    pub(crate) in_flight: Arc<InFlight>,
    pub(crate) shutdown: Shutdown,
}

/// What the requests of one connection share. A request holds it (one reference count)
/// rather than each of the listener's parts.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) listener: Arc<Listener>,
    /// The client's address as the access log writes it (formatted once per connection), if
    /// the server records requests.
    remote: Option<Box<str>>,
    /// When the connection waits for a request head (the header-read timeout).
    pub(crate) clock: HeadClock,
    /// Set once a response switched protocols (see `upgrade`).
    upgraded: AtomicBool,
    /// That request, kept in flight until the connection's socket is dropped.
    upgrade: Mutex<Option<Upgraded>>,
}

impl Peer {
    /// A connection of `listener` accepted now, from `remote` if it is recorded.
    pub(crate) fn new(listener: Arc<Listener>, remote: Option<Box<str>>) -> Self {
        Self {
            listener,
            remote,
            clock: HeadClock::new(),
            upgraded: AtomicBool::new(false),
            upgrade: Mutex::new(None),
        }
    }

    /// The request of `guard` switched protocols: it stays in flight until
    /// [`end_upgrade`](Self::end_upgrade).
    fn begin_upgrade(&self, guard: &Guard) {
        let session = Upgraded::new(guard);
        let previous = self
            .upgrade
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(session);
        drop(previous);
        self.upgraded.store(true, Ordering::Release);
    }

    /// The connection's socket is gone: an upgraded session has ended.
    pub(crate) fn end_upgrade(&self) {
        if self.upgraded.load(Ordering::Acquire) {
            let guard = self
                .upgrade
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            drop(guard);
        }
    }
}

#[cfg(test)]
impl Peer {
    /// A connection of a listener that records nothing and never drains, whose requests go in
    /// `in_flight`.
    pub(crate) fn for_tests(in_flight: Arc<InFlight>) -> Arc<Peer> {
        let listener = Listener::new(Observe::Off, in_flight, Shutdown::never());
        Arc::new(Peer::new(Arc::new(listener), None))
    }
}

/// What a server with [`Observe::On`] records with.
#[derive(Debug)]
pub(crate) struct Recording {
    access_log: AccessLog,
    id_on_every_response: bool,
    instruments: Instruments,
}

impl Listener {
    pub(crate) fn new(observe: Observe, in_flight: Arc<InFlight>, shutdown: Shutdown) -> Self {
        let recording = match observe {
            Observe::On {
                access_log,
                id_on_every_response,
            } => Some(Recording {
                access_log,
                id_on_every_response,
                instruments: Instruments::register(),
            }),
            Observe::Off => None,
        };
        Self {
            recording,
            in_flight,
            shutdown,
        }
    }
}

impl<S> Handler<S> {
    pub(crate) fn new(service: Routed<S>, limits: Limits, listener: Listener) -> Self {
        Self {
            service: service.recording,
            known: service.known,
            limits,
            peer: Arc::new(Peer::new(Arc::new(listener), None)),
        }
    }

    /// The handler of a connection from `remote`.
    pub(crate) fn for_connection(&self, remote: SocketAddr) -> Self
    where
        S: Clone,
    {
        let listener = &self.peer.listener;
        Self {
            peer: Arc::new(Peer::new(
                listener.clone(),
                listener
                    .recording
                    .as_ref()
                    .map(|_| remote.to_string().into()),
            )),
            ..self.clone()
        }
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for Handler<S>
where
    S: HttpService,
{
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Respond<S>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.peer.clock.request(request.version());
        let client_id = self.peer.listener.recording.as_ref().and_then(|recording| {
            recording.instruments.entered();
            RequestId::from_client(request.headers())
        });
        // A static route seen before: the router without the layer, the route known.
        let (service, route, learn) = match &self.known {
            Some((plain, known)) => match known.route(request.uri().path()) {
                Some(route) => (plain, Some(route), None),
                None => (&self.service, None, Some(known.clone())),
            },
            None => (&self.service, None, None),
        };
        // An axum `Router` runs no route, layer or handler when called, only when its future is
        // polled; another service may run the user's code in `call`.
        let runs_code_when_called = self.known.is_none();
        let flight = Arc::new(Flight::new(
            request.method().clone(),
            request.uri().path(),
            self.peer.clone(),
            client_id,
            route,
        ));
        let exchange = Exchange {
            guard: Guard::enter(flight),
            status: None,
            bytes: 0,
            learn,
        };
        let limit = self.limits.body_limit;
        // The declared `Content-Length`, as hyper parsed it (none for a chunked body).
        let declared = http_body::Body::size_hint(request.body()).upper();
        if declared.is_some_and(|len| len > limit as u64) {
            let response = plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds the limit of {limit} bytes\n"),
            );
            return Respond::answered(exchange, response);
        }
        let request = request.map(|body| Body::new(Limited::new(body, limit)));
        let mut service = service.clone();
        // Called at once if it is ready (an axum `Router` always is), so that the request is
        // not moved into the response future and out again; otherwise when it is polled.
        let state = match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => State::Calling {
                future: if runs_code_when_called {
                    let _current = exchange.guard.make_current();
                    service.call(request)
                } else {
                    service.call(request)
                },
            },
            _ => State::Ready {
                service,
                request: Some(request),
            },
        };
        Respond {
            state,
            timeout: self.limits.request_timeout,
            sleep: None,
            exchange: Some(exchange),
        }
    }
}

pin_project! {
    /// The future of a response: the user's service called when it is ready, within the
    /// request timeout. A type of its own rather than a boxed `async` block: no allocation per
    /// request, and no timer unless the service is not done at its first poll (most are not
    /// slow, and a timer costs an entry in the runtime's timer wheel).
    pub(crate) struct Respond<S: HttpService> {
        #[pin]
        state: State<S>,
        // The request timeout (from the request head), if there is one.
        timeout: Option<Duration>,
        // The timer, once the service has been waited for (boxed: most requests need none,
        // and the future, which hyper moves, stays small).
        sleep: Option<Pin<Box<Sleep>>>,
        // `None` once the response has been returned.
        exchange: Option<Exchange>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S: HttpService> {
        // Answered without calling the service (the body limit).
        Answered { response: Option<Response<Body>> },
        // Waiting for the service to be ready.
        Ready { service: S, request: Option<Request<Body>> },
        // The service's response future.
        Calling { #[pin] future: S::Future },
    }
}

impl<S: HttpService> Respond<S> {
    fn answered(exchange: Exchange, response: Response<Body>) -> Self {
        Self {
            state: State::Answered {
                response: Some(response),
            },
            timeout: None,
            sleep: None,
            exchange: Some(exchange),
        }
    }
}

impl<S: HttpService> Future for Respond<S> {
    type Output = Result<Response<Tracked>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let current = this.exchange.as_ref().map(|e| e.guard.make_current());
        // `Ok(None)`: polled again after it completed.
        let outcome: Poll<Result<Option<Response<Body>>, BoxError>> = loop {
            match this.state.as_mut().project() {
                StateProj::Answered { response } => break Poll::Ready(Ok(response.take())),
                StateProj::Ready { service, request } => match service.poll_ready(cx) {
                    Poll::Ready(Ok(())) => match request.take() {
                        Some(request) => {
                            let future = service.call(request);
                            this.state.set(State::Calling { future });
                        }
                        None => break Poll::Ready(Ok(None)),
                    },
                    Poll::Ready(Err(error)) => break Poll::Ready(Err(error.into())),
                    Poll::Pending => break Poll::Pending,
                },
                StateProj::Calling { future } => {
                    break future.poll(cx).map(|result| match result {
                        Ok(response) => Ok(Some(response.map(Body::new))),
                        Err(error) => Err(error.into()),
                    });
                }
            }
        };
        drop(current);
        let result = match outcome {
            Poll::Ready(result) => result,
            Poll::Pending => {
                let (Some(after), Some(exchange)) = (*this.timeout, &*this.exchange) else {
                    return Poll::Pending;
                };
                let sleep = this.sleep.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep_until(
                        exchange.guard.flight().start + after,
                    ))
                });
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                Ok(Some(plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("no response within the request timeout of {after:?}\n"),
                )))
            }
        };
        let response = match result {
            Ok(Some(response)) => response,
            // hyper does not poll a completed future; if something did, it would wait forever.
            Ok(None) => return Poll::Pending,
            Err(error) => {
                tracing::error!(error = %error, "the HTTP service failed");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into())
            }
        };
        // Done: the service's future (cut by the timeout, perhaps) and the timer go now.
        this.state.set(State::Answered { response: None });
        *this.sleep = None;
        match this.exchange.take() {
            Some(exchange) => Poll::Ready(Ok(exchange.respond(response))),
            None => Poll::Pending,
        }
    }
}

/// One request from its head to the end of its response body: it is in flight meanwhile, and
/// when it ends (dropped) it is counted in the HTTP metrics and written to the access log.
/// Small, as hyper moves the response body it is part of.
#[derive(Debug)]
struct Exchange {
    guard: Guard,
    /// The response status, once there is a response.
    status: Option<StatusCode>,
    /// Response body bytes sent.
    bytes: u64,
    /// Where to remember the route the layer finds, if the path's route was not known.
    learn: Option<Arc<Known>>,
}

/// The status recorded for a request that ended without a response head: the client went
/// away, or the drain deadline cut it (nginx's "client closed request").
const NO_RESPONSE: u16 = 499;

impl Exchange {
    /// The response to send: with the request id if it has one, and a body that ends the
    /// exchange.
    fn respond(mut self, mut response: Response<Body>) -> Response<Tracked> {
        self.status = Some(response.status());
        let flight = self.guard.flight();
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            flight.peer.begin_upgrade(&self.guard);
        }
        if let Some(recording) = &flight.peer.listener.recording {
            let id = match flight.request_id_if_any() {
                // The client's, or one the handler asked for.
                Some(id) => Some(id),
                // One made now, if the access log will write it (or every response gets one).
                None if recording.id_on_every_response || recording.access_log.enabled() => {
                    flight.request_id()
                }
                None => None,
            };
            if let Some(id) = id {
                response
                    .headers_mut()
                    .insert(REQUEST_ID, id.header_value().clone());
            }
        }
        response.map(|body| Tracked {
            body,
            exchange: self,
        })
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let flight = self.guard.flight();
        let now = Instant::now();
        flight.peer.clock.response_ended(now);
        let Some(recording) = &flight.peer.listener.recording else {
            return;
        };
        let duration = now.saturating_duration_since(flight.start);
        let status = self.status.map_or(NO_RESPONSE, |s| s.as_u16());
        if let (Some(known), Some(route)) = (&self.learn, flight.route()) {
            known.learn(flight.path(), route);
        }
        let route = flight.route().unwrap_or(&recording.instruments.unmatched);
        recording
            .instruments
            .ended(route, &flight.method, status, duration);
        if !recording.access_log.enabled() {
            return;
        }
        let Some(request_id) = flight.request_id() else {
            return;
        };
        recording.access_log.write(&Entry {
            method: flight.method.as_str(),
            route: &route.name,
            path: flight.path(),
            status,
            duration,
            bytes: self.bytes,
            request_id,
            remote: flight.peer.remote.as_deref(),
        });
    }
}

/// A short `text/plain` response.
pub(crate) fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A response body that keeps its request in flight until it has been sent or dropped, and
/// counts the bytes sent.
#[derive(Debug)]
pub(crate) struct Tracked {
    body: Body,
    exchange: Exchange,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        if let Some(data) = frame.as_ref().and_then(|f| f.as_ref().ok()?.data_ref()) {
            this.exchange.bytes += data.len() as u64;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
