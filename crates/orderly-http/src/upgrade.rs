//! Upgraded connections (WebSocket and the like) stay in the drain's sight.
//!
//! When a handler answers `101 Switching Protocols`, hyper hands the connection's socket to
//! the handler (axum's `WebSocketUpgrade` runs the session in a task of its own) and the
//! connection, as hyper sees it, is over. Without more, a drain would then neither wait for
//! the session nor name it when the deadline cuts the rest.
//!
//! So every connection's socket is wrapped in an [`Io`] that holds its [`Peer`] and a token of the
//! tracker of the listener's sockets. A `101` response keeps its request in flight, held by the
//! connection's [`Peer`] and listed with the upgraded sessions, until the socket is dropped, that
//! is, until the session ends: the drain waits for it like for any request in flight (a session
//! that selects on the [`Shutdown`](crate::Shutdown) signal ends when the drain begins), and the
//! report names it (`GET /ws`) if the deadline comes first. A session that ignores the signal is
//! left to the end of the process: the server holds no handle on it by which to close it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncRead;
use tokio::net::TcpStream;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::service::Peer;

/// A connection's socket as hyper (and, after an upgrade, the handler) uses it.
#[derive(Debug)]
pub(crate) struct Io {
    inner: TokioIo<TcpStream>,
    peer: Arc<Peer>,
    /// Nothing read yet: the first bytes tell an HTTP/2 connection (see [`Io::poll_read`]).
    fresh: bool,
    /// Keeps the drain waiting while the socket is open.
    _open: TaskTrackerToken,
}

impl Io {
    pub(crate) fn new(stream: TcpStream, peer: Arc<Peer>, open: TaskTrackerToken) -> Self {
        Self {
            inner: TokioIo::new(stream),
            peer,
            fresh: true,
            _open: open,
        }
    }
}

/// The answer to a head cut short by the header-read timeout.
const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

impl Drop for Io {
    fn drop(&mut self) {
        if self.peer.clock.cut_a_head_short() {
            // A few bytes into an idle socket's send buffer: written at once, or not at all.
            let _ = self.inner.inner().try_write(REQUEST_TIMEOUT);
        }
        // An upgraded session ends with its socket.
        self.peer.end_upgrade();
    }
}

impl Read for Io {
    /// Reads, and tells the connection's [`HeadClock`](crate::head_timer::HeadClock) that
    /// bytes arrived (part of a head, if no request is in progress). The first read also looks
    /// at the connection's first bytes: an HTTP/2 client with prior knowledge begins with the
    /// preface (`PRI * HTTP/2.0`), and such a connection waits for no request head, so its
    /// clock is turned off at once rather than at its first request.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.fresh || buf.remaining() == 0 {
            let read = Pin::new(&mut this.inner).poll_read(cx, buf);
            if let Poll::Ready(Ok(())) = read {
                // Bytes, or the end of the stream (which ends the connection anyway).
                this.peer.clock.received();
            }
            return read;
        }
        // Through a small buffer of our own, whose bytes can be looked at, then copied on.
        let mut first = [0u8; 24];
        let len = buf.remaining().min(first.len());
        let mut read = tokio::io::ReadBuf::new(&mut first[..len]);
        ready!(Pin::new(this.inner.inner_mut()).poll_read(cx, &mut read))?;
        let bytes = read.filled();
        if bytes.starts_with(b"PRI ") {
            this.peer.clock.turn_off();
        } else if !bytes.is_empty() {
            this.peer.clock.received();
        }
        this.fresh = false;
        buf.put_slice(bytes);
        Poll::Ready(Ok(()))
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
