//! Upgraded connections (WebSocket): the drain waits for a session, and names it if the
//! deadline cuts it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{start, unhung};

/// Opens a WebSocket session on `path`: the handshake, answered with `101`.
async fn open(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let handshake = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// The next frame from the server (unmasked, under 126 bytes): its opcode and payload.
async fn frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let first = stream.read_u8().await.unwrap();
    let len = stream.read_u8().await.unwrap() & 0x7f;
    let mut payload = vec![0; usize::from(len)];
    stream.read_exact(&mut payload).await.unwrap();
    (first & 0x0f, payload)
}

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;

#[tokio::test]
async fn the_drain_waits_for_a_websocket_session_that_ends_on_the_signal() {
    let app = start(|s| s, |b| b).await;
    let mut ws = open(app.http.local_addr(), "/ws").await;
    assert_eq!(frame(&mut ws).await, (TEXT, b"hello".to_vec()));
    app.gate.entered.notified().await;
    assert!(
        app.http.in_flight() >= 1,
        "the session counts as a request in flight"
    );

    let mut stop = tokio::spawn(app.running.stop());
    app.gate.saw_drain.notified().await;
    // Nothing else is in flight: a drain that did not wait for the session would end now.
    tokio::select! {
        report = &mut stop => panic!(
            "the drain ended while the session was open: {}",
            report.unwrap().summary()
        ),
        () = tokio::time::sleep(Duration::from_millis(200)) => {}
    }
    app.gate.release.notify_one();
    assert_eq!(frame(&mut ws).await.0, CLOSE, "the session closes");
    let report = unhung(stop).await.unwrap();
    assert!(report.is_clean(), "{}", report.summary());
}

#[tokio::test]
async fn a_websocket_session_still_open_at_the_drain_deadline_is_named() {
    let app = start(|s| s.drain_timeout(Duration::from_millis(100)), |b| b).await;
    let _ws = open(app.http.local_addr(), "/ws-deaf").await;
    app.gate.entered.notified().await;

    let report = unhung(app.running.stop()).await;
    let outcome = report.component("http").unwrap().outcome.to_string();
    assert!(
        outcome.contains("cut 1 request in flight: GET /ws-deaf (1)"),
        "{outcome}"
    );
}
