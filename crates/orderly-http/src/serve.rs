//! The accept loop shared by the HTTP server and the admin listener: one hyper connection per
//! accepted socket, graceful shutdown of every connection when draining begins, a cut at the
//! drain deadline.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use hyper_util::rt::TokioTimer;
use hyper_util::server::conn::auto;
use orderly::{BoxError, Context, InvalidConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, ErrorKind};
use crate::head_timer::Timed;
use crate::in_flight::InFlight;
use crate::route::Routed;
use crate::service::{Handler, HttpService, Limits, Listener, Observe};
use crate::shutdown::Shutdown;
use crate::upgrade::Io;

/// Binds the configured address: an invalid variable is [`InvalidConfig`] (exit code 78), a
/// bind failure names the address. Returns the listener and the address it got.
pub(crate) async fn bind(
    addr: &Result<SocketAddr, ErrorKind>,
) -> Result<(TcpListener, SocketAddr), BoxError> {
    let addr = addr
        .clone()
        .map_err(|kind| InvalidConfig::new(Error::new(kind)))?;
    let bind_error = |error: std::io::Error| {
        Error::new(ErrorKind::Bind {
            addr,
            reason: error.to_string(),
        })
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local_addr))
}

/// A listener being served; [`drain`](Serving::drain) ends it.
#[derive(Debug)]
pub(crate) struct Serving {
    draining: CancellationToken,
    cut: CancellationToken,
    finished: CancellationToken,
    in_flight: Arc<InFlight>,
}

/// What the handle of a served listener can see.
#[derive(Clone, Debug)]
pub(crate) struct Gauges {
    pub(crate) in_flight: Arc<InFlight>,
    pub(crate) connections: watch::Receiver<usize>,
}

/// Serves `service` on `listener` in a task of `ctx` named `task`, until `draining` fires.
pub(crate) fn spawn<S>(
    ctx: &Context,
    task: &str,
    listener: TcpListener,
    service: Routed<S>,
    limits: Limits,
    observe: Observe,
    draining: CancellationToken,
) -> (Serving, Gauges)
where
    S: HttpService,
{
    let in_flight = Arc::new(InFlight::default());
    let begun = Arc::new(Begun::default());
    let (connections_tx, connections) = watch::channel(0);
    let serving = Serving {
        draining: draining.clone(),
        cut: CancellationToken::new(),
        finished: CancellationToken::new(),
        in_flight: in_flight.clone(),
    };
    let handler = Handler::new(
        service,
        limits,
        Listener::new(
            observe,
            in_flight.clone(),
            Shutdown::new(begun.token.clone()),
        ),
    );
    let accept = Accept {
        listener,
        limits,
        draining,
        begun,
        cut: serving.cut.clone(),
        connections: connections_tx,
    };
    let finished = serving.finished.clone();
    ctx.spawn(task.to_owned(), async move {
        let _finished = finished.drop_guard();
        accept.run(handler).await;
        Ok::<(), BoxError>(())
    });
    (
        serving,
        Gauges {
            in_flight,
            connections,
        },
    )
}

impl Serving {
    /// Begins draining (if it has not begun) and waits for every connection to end, at most
    /// `timeout`; then cuts what is left and names the requests that were in flight.
    pub(crate) async fn drain(self, timeout: Duration) -> Result<(), Error> {
        self.draining.cancel();
        if tokio::time::timeout(timeout, self.finished.cancelled())
            .await
            .is_ok()
        {
            return Ok(());
        }
        // The requests the cut ends write their lines from here on (see `in_flight`).
        self.in_flight.cut();
        self.cut.cancel();
        self.finished.cancelled().await;
        let cut = self.in_flight.report();
        if cut.is_empty() {
            // Connections were still closing, but no request was lost.
            return Ok(());
        }
        let error = Error::new(ErrorKind::DrainDeadline {
            after: timeout,
            cut,
        });
        tracing::warn!(error = %error, "drain cut short");
        Err(error)
    }
}

struct Accept {
    listener: TcpListener,
    limits: Limits,
    /// Asks the listener to drain.
    draining: CancellationToken,
    /// Tells its connections and their handlers that draining has begun.
    begun: Arc<Begun>,
    cut: CancellationToken,
    connections: watch::Sender<usize>,
}

impl Accept {
    async fn run<S>(self, handler: Handler<S>)
    where
        S: HttpService,
    {
        let streams = Streams {
            tracker: TaskTracker::new(),
            cut: self.cut.clone(),
        };
        // Every connection's socket, upgraded ones included (see `upgrade`).
        let sockets = TaskTracker::new();
        let mut builder = auto::Builder::new(streams.clone());
        // The server times the wait for request heads itself (see `head_timer`).
        builder.http1().header_read_timeout(None);
        builder.http2().timer(TokioTimer::new());
        // Shared by the connections, each of which borrows it in its task.
        let builder = Arc::new(builder);
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                biased;
                () = self.draining.cancelled() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {
                    self.connections.send_replace(connections.len());
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        let handler = handler.for_connection(remote);
                        let io = Io::new(stream, handler.peer.clone(), sockets.token());
                        let connection = serve_one(
                            &builder,
                            io,
                            handler,
                            self.limits.header_read_timeout,
                            self.begun.clone(),
                        );
                        connections.spawn(connection);
                        self.connections.send_replace(connections.len());
                    }
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %error, "accept failed");
                        tokio::select! {
                            () = self.draining.cancelled() => break,
                            () = tokio::time::sleep(Duration::from_millis(50)) => {}
                        }
                    }
                }
            }
        }
        self.begun.begin();
        // Stop accepting: connections in the backlog are refused from here on.
        drop(self.listener);
        let drained = async {
            while connections.join_next().await.is_some() {
                self.connections.send_replace(connections.len());
            }
            streams.tracker.close();
            streams.tracker.wait().await;
            // Upgraded sessions.
            sockets.close();
            sockets.wait().await;
        };
        tokio::select! {
            () = drained => return,
            () = self.cut.cancelled() => {}
        }
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        self.connections.send_replace(0);
        streams.tracker.close();
        streams.tracker.wait().await;
        // Upgraded sessions still open are not waited for: the server has no hold on them
        // (the drain's report names them).
    }
}

/// Serves one connection; when draining begins, asks hyper to end it gracefully (HTTP/1:
/// `Connection: close` on the response in flight, an idle connection closed at once; HTTP/2:
/// GOAWAY, streams in flight finish).
fn serve_one<S>(
    builder: &Arc<auto::Builder<Streams>>,
    io: Io,
    handler: Handler<S>,
    header_read_timeout: Duration,
    draining: Arc<Begun>,
) -> impl std::future::Future<Output = ()> + Send + 'static
where
    S: HttpService,
{
    let peer = handler.peer.clone();
    let mut timed = Timed::new(header_read_timeout);
    let builder = builder.clone();
    async move {
        let connection = builder.serve_connection_with_upgrades(io, handler);
        tokio::pin!(connection);
        let signal = draining.token.cancelled();
        tokio::pin!(signal);
        let mut registered = false;
        let served = poll_fn(|cx| {
            // Draining first: a handler woken by the same signal must not answer before hyper
            // knows to send `Connection: close`. The signal's future is polled once, to
            // register this task's waker; after that, the flag tells whether it fired (a poll
            // of the future, or the token's `is_cancelled`, would lock a mutex each time the
            // connection wakes). This future is polled by one task only, the one the signal
            // wakes.
            let fired = if registered {
                draining.has_begun()
            } else {
                registered = true;
                signal.as_mut().poll(cx).is_ready()
            };
            if fired {
                return Poll::Ready(None);
            }
            timed
                .poll(&peer.clock, connection.as_mut(), cx)
                .map(|served| Some(served.ok_or(HeadTimeout)))
        })
        .await;
        let result = match served {
            Some(result) => result,
            None => {
                connection.as_mut().graceful_shutdown();
                poll_fn(|cx| timed.poll(&peer.clock, connection.as_mut(), cx))
                    .await
                    .ok_or(HeadTimeout)
            }
        };
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(error = %error, "connection ended with an error"),
            Err(HeadTimeout) => tracing::debug!(
                timeout = ?header_read_timeout,
                "connection closed: no request head within the header-read timeout"
            ),
        }
    }
}

/// Draining has begun, as a listener's connections and handlers see it: a flag each connection
/// reads when it wakes, set before the token that wakes the connections and fires the handlers'
/// [`Shutdown`] signals is cancelled. So whatever a handler does on its signal, its connection
/// sees the flag when it next runs.
#[derive(Debug, Default)]
struct Begun {
    flag: AtomicBool,
    token: CancellationToken,
}

impl Begun {
    fn begin(&self) {
        self.flag.store(true, Ordering::Release);
        self.token.cancel();
    }

    fn has_begun(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// A connection waited for a request head past the header-read timeout.
struct HeadTimeout;

/// Runs HTTP/2 streams as tasks the server tracks; the drain waits for them and the cut ends
/// them.
#[derive(Clone, Debug)]
struct Streams {
    tracker: TaskTracker,
    cut: CancellationToken,
}

impl<F> hyper::rt::Executor<F> for Streams
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        let cut = self.cut.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = future => {}
                () = cut.cancelled() => {}
            }
        });
    }
}
