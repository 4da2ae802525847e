//! Upgraded connections (WebSocket and the like) stay in the drain's sight.
//!
//! When a handler answers `101 Switching Protocols`, hyper hands the connection's socket to
//! the handler (axum's `WebSocketUpgrade` runs the session in a task of its own) and the
//! connection, as hyper sees it, is over. Without more, a drain would then neither wait for
//! the session nor name it when the deadline cuts the rest.
//!
//! So every connection's socket is wrapped in an [`Io`] that holds its [`Peer`] and a token
//! of the server's upgrade tracker. A `101` response puts its request back in the in-flight
//! list, in the connection's [`Peer`], where it stays until the socket is dropped, that is,
//! until the session ends: the drain waits for it like for any request in flight (a session
//! that selects on the [`Shutdown`](crate::Shutdown) signal ends when the drain begins), and
//! the report names it (`GET /ws`) if the deadline comes first. A session that ignores the
//! signal is left to the end of the process: the server holds no handle on it by which to
//! close it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::service::Peer;

/// A connection's socket as hyper (and, after an upgrade, the handler) uses it.
#[derive(Debug)]
pub(crate) struct Io {
    inner: TokioIo<TcpStream>,
    peer: Arc<Peer>,
    /// Keeps the drain waiting while the socket is open.
    _open: TaskTrackerToken,
}

impl Io {
    pub(crate) fn new(stream: TcpStream, peer: Arc<Peer>, open: TaskTrackerToken) -> Self {
        Self {
            inner: TokioIo::new(stream),
            peer,
            _open: open,
        }
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // An upgraded session ends with its socket.
        self.peer.end_upgrade();
    }
}

impl Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
}
