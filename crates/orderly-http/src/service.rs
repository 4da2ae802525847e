//! The hyper service around the user's tower service: counts requests in flight, enforces the
//! body limit and the request timeout, and hands each request the [`Shutdown`] signal.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::future::{BoxFuture, poll_fn};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use http_body_util::Limited;
use hyper::body::Incoming;
use orderly::BoxError;
use tower_service::Service;

use crate::in_flight::{Guard, InFlight};
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

/// What the accept loop serves: the user's service plus the server's bookkeeping.
#[derive(Clone, Debug)]
pub(crate) struct Handler<S> {
    service: S,
    limits: Limits,
    in_flight: Arc<InFlight>,
    shutdown: Shutdown,
}

impl<S> Handler<S> {
    pub(crate) fn new(
        service: S,
        limits: Limits,
        in_flight: Arc<InFlight>,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            service,
            limits,
            in_flight,
            shutdown,
        }
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for Handler<S>
where
    S: HttpService,
{
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Tracked>, Infallible>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let guard = self.in_flight.enter(request.method(), request.uri().path());
        let limit = self.limits.body_limit;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            let response = plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds the limit of {limit} bytes\n"),
            );
            return Box::pin(async move { Ok(response.map(|b| Tracked::new(b, guard))) });
        }
        request.extensions_mut().insert(self.shutdown.clone());
        let request = request.map(|body| Body::new(Limited::new(body, limit)));
        let mut service = self.service.clone();
        let timeout = self.limits.request_timeout;
        Box::pin(async move {
            let call = async move {
                poll_fn(|cx| service.poll_ready(cx)).await?;
                service.call(request).await
            };
            let result = match timeout {
                Some(after) => match tokio::time::timeout(after, call).await {
                    Ok(result) => result,
                    Err(_) => {
                        let response = plain(
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("no response within the request timeout of {after:?}\n"),
                        );
                        return Ok(response.map(|b| Tracked::new(b, guard)));
                    }
                },
                None => call.await,
            };
            let response = match result {
                Ok(response) => response.map(Body::new),
                Err(error) => {
                    let error: BoxError = error.into();
                    tracing::error!(error = %error, "the HTTP service failed");
                    plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into())
                }
            };
            Ok(response.map(|b| Tracked::new(b, guard)))
        })
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

/// A response body that keeps its request in flight until it has been sent or dropped.
#[derive(Debug)]
pub(crate) struct Tracked {
    body: Body,
    _guard: Guard,
}

impl Tracked {
    fn new(body: Body, guard: Guard) -> Self {
        Self {
            body,
            _guard: guard,
        }
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
