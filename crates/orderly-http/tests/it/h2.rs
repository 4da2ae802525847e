//! HTTP/2 (h2c, prior knowledge) at the drain, on raw frames: the client receives GOAWAY and
//! the stream in flight still completes.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{start, unhung};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;

struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend([kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// Reads one frame, answering SETTINGS and PING as a client must; `None` at end of stream.
async fn next(conn: &mut TcpStream) -> Option<Frame> {
    loop {
        let mut head = [0u8; 9];
        conn.read_exact(&mut head).await.ok()?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0; len];
        conn.read_exact(&mut payload).await.ok()?;
        let f = Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        };
        match (f.kind, f.flags & ACK) {
            (SETTINGS, 0) => conn.write_all(&frame(SETTINGS, ACK, 0, &[])).await.ok()?,
            (PING, 0) => conn
                .write_all(&frame(PING, ACK, 0, &f.payload))
                .await
                .ok()?,
            (SETTINGS | PING, _) => {}
            _ => return Some(f),
        }
    }
}

/// A HEADERS frame asking for `GET path` on `stream`, ending the stream. HPACK: :method GET,
/// :scheme http (indexed), :path and :authority (literal, not indexed).
fn get(stream: u32, path: &str) -> Vec<u8> {
    let length = u8::try_from(path.len())
        .ok()
        .filter(|n| *n < 127)
        .expect("a path of at most 126 bytes (one HPACK length byte)");
    let mut block = vec![0x82, 0x86, 0x04, length];
    block.extend(path.as_bytes());
    block.extend([0x01, 4]);
    block.extend(b"test");
    frame(HEADERS, 0x4 | END_STREAM, stream, &block)
}

/// A connection to `addr` that speaks HTTP/2 with prior knowledge: the preface and the
/// client's (empty) SETTINGS sent.
async fn h2c(addr: std::net::SocketAddr) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(PREFACE).await.unwrap();
    conn.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    conn
}

#[tokio::test]
async fn an_http2_client_gets_goaway_and_its_stream_in_flight_completes() {
    let app = start(|s| s, |b| b).await;
    let mut conn = h2c(app.http.local_addr()).await;
    conn.write_all(&get(1, "/slow")).await.unwrap();
    app.gate.entered.notified().await;

    let stop = tokio::spawn(app.running.stop());
    let goaway = loop {
        let f = next(&mut conn).await.expect("GOAWAY before the end");
        if f.kind == GOAWAY {
            break f;
        }
    };
    // GOAWAY's error code (after the last stream id) is NO_ERROR.
    assert_eq!(goaway.payload[4..8], [0, 0, 0, 0]);

    app.gate.release.notify_one();
    let (mut status, mut body) = (None, Vec::<u8>::new());
    let mut ended = false;
    while let Some(f) = next(&mut conn).await {
        match f.kind {
            HEADERS if f.stream == 1 => status = f.payload.first().copied(),
            DATA if f.stream == 1 => {
                body.extend(&f.payload);
                ended |= f.flags & END_STREAM != 0;
            }
            _ => {}
        }
    }
    assert_eq!(status, Some(0x88), ":status 200 (HPACK static index 8)");
    assert_eq!(body, b"done");
    assert!(
        ended,
        "the stream ended normally before the connection closed"
    );
    let report = unhung(stop).await.unwrap();
    assert!(report.is_clean(), "{}", report.summary());
}

/// An HTTP/2 connection waits for no request head: one that is quiet for longer than the
/// header-read timeout before its first request is not cut (an HTTP/1 connection would be).
#[tokio::test]
async fn an_http2_connection_quiet_before_its_first_request_is_not_cut() {
    let app = start(
        |s| s.header_read_timeout(std::time::Duration::from_millis(100)),
        |b| b,
    )
    .await;
    let mut conn = h2c(app.http.local_addr()).await;
    // Three header-read timeouts of silence.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    conn.write_all(&get(1, "/fast")).await.unwrap();
    let (mut status, mut body) = (None, Vec::<u8>::new());
    loop {
        let f = next(&mut conn).await.expect("the connection was cut");
        match f.kind {
            HEADERS if f.stream == 1 => status = f.payload.first().copied(),
            DATA if f.stream == 1 => {
                body.extend(&f.payload);
                if f.flags & END_STREAM != 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    assert_eq!(status, Some(0x88), ":status 200");
    assert_eq!(body, b"fast");
    // The drain's GOAWAY and PING are answered until the server closes the connection.
    let stop = tokio::spawn(app.running.stop());
    while next(&mut conn).await.is_some() {}
    let report = unhung(stop).await.unwrap();
    assert!(report.is_clean(), "{}", report.summary());
}

/// Streams still in flight at the drain deadline are cut and named, each one: the report is
/// written by the requests the cut ends, and over HTTP/2 those are stream tasks, not
/// connections.
#[tokio::test]
async fn http2_streams_in_flight_at_the_drain_deadline_are_cut_and_named() {
    let app = start(
        |s| s.drain_timeout(std::time::Duration::from_millis(100)),
        |b| b,
    )
    .await;
    let mut conn = h2c(app.http.local_addr()).await;
    conn.write_all(&get(1, "/stuck")).await.unwrap();
    app.gate.entered.notified().await;
    conn.write_all(&get(3, "/stuck")).await.unwrap();
    app.gate.entered.notified().await;
    assert_eq!(app.http.in_flight(), 2);

    let stop = tokio::spawn(app.running.stop());
    // GOAWAY, then nothing for the stuck streams until the cut closes the connection.
    while next(&mut conn).await.is_some() {}
    let report = unhung(stop).await.unwrap();
    assert!(!report.is_clean());
    let outcome = report.component("http").unwrap().outcome.to_string();
    assert!(
        outcome.contains("cut 2 requests in flight: GET /stuck (2)"),
        "{outcome}"
    );
}
