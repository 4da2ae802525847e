//! Server-sent events that end cleanly at shutdown: each stream says goodbye when the server
//! begins draining, so the drain does not wait for its deadline.
//!
//! ```text
//! cargo run -p orderly-http --example 02_sse
//! curl -N localhost:8080/ticks    # a tick a second; Ctrl-C the server: "event: bye"
//! ```

use std::convert::Infallible;
use std::process::ExitCode;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Router, routing::get};
use futures_util::{Stream, StreamExt, stream};
use orderly::{Env, System};
use orderly_http::{Admin, HttpServer, Shutdown};

/// Ticks until the server drains, then one last event.
async fn ticks(shutdown: Shutdown) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = stream::unfold(0u64, |n| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some((Ok(Event::default().data(format!("tick {n}"))), n + 1))
    });
    let bye = stream::once(async { Ok(Event::default().event("bye").data("server stopping")) });
    Sse::new(ticks.take_until(shutdown.draining()).chain(bye)).keep_alive(KeepAlive::default())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().init();
    let env = Env::process();
    let app = Router::new().route("/ticks", get(ticks));

    let mut system = System::builder("sse").env(env.clone()).log_all_events();
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
