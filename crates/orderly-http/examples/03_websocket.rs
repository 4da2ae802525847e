//! WebSocket sessions that end cleanly at shutdown: each one closes with `1001 Going Away` when
//! the server begins draining, so its client can reconnect at once (to a replica that is not
//! stopping) and the drain does not wait for its deadline.
//!
//! ```text
//! cargo run -p orderly-http --example 03_websocket
//! websocat ws://localhost:8080/echo    # echoes each line; Ctrl-C the server: closed, 1001
//! ```
//!
//! A session that ignored the signal would hold the drain open until its deadline (10 s here)
//! and be named in the stop's report (`GET /echo`); the server has no hold on an upgraded
//! connection, so it would last until the process exits.

use std::process::ExitCode;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use axum::{Router, routing::get};
use orderly::{Env, System};
use orderly_http::{Admin, HttpServer, Shutdown};

/// How long a closing session waits for its client to answer the close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

async fn echo(upgrade: WebSocketUpgrade, shutdown: Shutdown) -> Response {
    upgrade.on_upgrade(move |socket| session(socket, shutdown))
}

/// Echoes each text message until the client leaves or the server drains.
async fn session(mut socket: WebSocket, shutdown: Shutdown) {
    loop {
        tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                // The client closed, or the connection is gone.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                // Binary, ping, pong: pings are answered by the socket itself.
                Some(Ok(_)) => {}
            },
            () = shutdown.draining() => break,
        }
    }
    let away = CloseFrame {
        code: close_code::AWAY,
        reason: "server stopping".into(),
    };
    if socket.send(Message::Close(Some(away))).await.is_err() {
        return;
    }
    // The client's close frame completes the closing handshake; a client that never sends it
    // is not waited for long.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(message)) = socket.recv().await {
            if let Message::Close(_) = message {
                break;
            }
        }
    })
    .await;
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().init();
    let env = Env::process();
    let app = Router::new().route("/echo", get(echo));

    let mut system = System::builder("websocket")
        .env(env.clone())
        .log_all_events();
    system.add("admin", (), Admin::new().from_env(&env));
    system.add(
        "http",
        (),
        HttpServer::new(app)
            .from_env(&env)
            .drain_timeout(Duration::from_secs(10)),
    );
    system.run().await
}
