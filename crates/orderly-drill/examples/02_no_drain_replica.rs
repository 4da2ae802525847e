//! The drill's first negative control: a plain hyper server with no drain. It follows the same
//! contract as `01_replica` (`PORT`, `ADMIN_PORT` with `/readyz`, `DRILL_LEDGER`,
//! `GET /work?ms=N`) but exits the moment SIGTERM arrives, cutting requests in flight and
//! refusing those the load balancer still sends. A drill of it must report failures:
//!
//! ```text
//! cargo build -p orderly-drill --examples
//! target/debug/orderly-drill --replica-cmd target/debug/examples/02_no_drain_replica \
//!     --expect-failures
//! ```

use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use orderly_drill::{ADMIN_PORT, DRILL_ID, DRILL_LEDGER, PORT};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

type Ledger = Option<Arc<Mutex<File>>>;

fn port(variable: &str) -> Result<u16, String> {
    let value = std::env::var(variable).map_err(|_| format!("{variable} is not set"))?;
    value
        .parse()
        .map_err(|_| format!("{variable}={value:?} is not a port"))
}

async fn handle(
    request: Request<Incoming>,
    ledger: Ledger,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let ms: u64 = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("ms=")))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(5);
    tokio::time::sleep(Duration::from_millis(ms.min(10_000))).await;
    if let (Some(file), Some(id)) = (&ledger, request.headers().get(DRILL_ID)) {
        let mut line = id.as_bytes().to_vec();
        line.push(b'\n');
        let _ = file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(&line);
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"done\n"))))
}

async fn ready(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"ready\n")));
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// Serves `service` on every connection `listener` accepts, forever.
async fn serve<F, Fut>(listener: TcpListener, service: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let service = service.clone();
        // An example of what not to do: connections nobody tracks or drains.
        tokio::spawn(async move {
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection(TokioIo::new(stream), service_fn(service))
                .await;
        });
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let (port, admin_port) = match (port(PORT), port(ADMIN_PORT)) {
        (Ok(port), Ok(admin_port)) => (port, admin_port),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("{error}");
            return ExitCode::from(78);
        }
    };
    let ledger: Ledger = match std::env::var(DRILL_LEDGER) {
        Ok(path) => match OpenOptions::new().create(true).append(true).open(&path) {
            Ok(file) => Some(Arc::new(Mutex::new(file))),
            Err(error) => {
                eprintln!("cannot open the ledger {path}: {error}");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => None,
    };
    let Ok(mut sigterm) = signal(SignalKind::terminate()) else {
        return ExitCode::FAILURE;
    };
    let bind = |port| TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let (public, admin) = match (bind(port).await, bind(admin_port).await) {
        (Ok(public), Ok(admin)) => (public, admin),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("cannot listen: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("no-drain replica on {port}, admin on {admin_port}");
    tokio::select! {
        () = serve(public, move |request| handle(request, ledger.clone())) => {}
        () = serve(admin, ready) => {}
        _ = sigterm.recv() => eprintln!("SIGTERM: exiting at once"),
    }
    ExitCode::SUCCESS
}
