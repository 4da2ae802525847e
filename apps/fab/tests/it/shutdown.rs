//! Shutdown under load: SIGTERM to `fab apc` while clients send sub-recipe requests. No
//! request fails, and every 200 has its run record in the database.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;

use crate::support::{api_of, config_body, formula, lot};

const DEADLINE: Duration = Duration::from_secs(60);
const TOKEN: &str = "tool-and-engineer-0001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_fab_apc_under_load_fails_no_request_and_loses_no_run() {
    let base = std::env::var("POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("fab_shut_{:016x}", rand::random::<u64>());
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let url = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => format!("{}/{name}", &base[..i]),
        _ => format!("{base}/{name}"),
    };
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    fab::store::Store::postgres(db.clone())
        .migrate()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fab"))
        .arg("apc")
        .current_dir(dir.path())
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("FAB_TOKENS", format!("engineer:{TOKEN}"))
        .env("PORT", "0")
        .env("ADMIN_PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info,orderly_http::access=warn")
        // Load balancers stop sending during the delay; these clients keep sending through
        // half of it, so requests arrive before, at and after the signal.
        .env("SHUTDOWN_DELAY", "1500ms")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (api, drain) = api_of(&mut child).await;

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let post = move |path: &str, body: String, key: String| {
        let request = hyper::Request::post(format!("{api}{path}"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let client = client.clone();
        async move {
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body))
        }
    };
    let (status, _) = post(
        "/v1/apc/configs",
        config_body(0.3).to_string(),
        "config".into(),
    )
    .await
    .unwrap();
    assert_eq!(status, 201);

    // Four clients, each on its own thread (tool), sending back to back.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..4 {
        let stop = Arc::clone(&stop);
        let post = post.clone();
        clients.spawn(async move {
            let mut runs = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let mut body = lot(&format!("LOT-{c}-{n}"), formula());
                body["lot"]["thread"]["tool"] = serde_json::json!(format!("scanner-{c}"));
                let (status, bytes) =
                    post("/v1/apc/subrecipe", body.to_string(), format!("c{c}-{n}")).await?;
                if status != 200 {
                    return Err(format!(
                        "status {status}: {}",
                        String::from_utf8_lossy(&bytes)
                    ));
                }
                let value: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                runs.push(value["run"].as_str().unwrap_or_default().to_owned());
            }
            Ok::<_, String>(runs)
        });
    }
    // Let load build up (the first few runs committed), then signal.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM apc_runs")
            .fetch_one(&db)
            .await
            .unwrap();
        if n >= 20 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no load");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut answered = Vec::new();
    while let Some(result) = clients.join_next().await {
        answered.extend(result.unwrap().expect("no request fails"));
    }
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .unwrap()
        .unwrap();
    drain.await.unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");

    // Every answered run is durable.
    assert!(answered.len() >= 20, "{}", answered.len());
    let stored: Vec<(String,)> = sqlx::query_as("SELECT run FROM apc_runs")
        .fetch_all(&db)
        .await
        .unwrap();
    let stored: std::collections::HashSet<String> = stored.into_iter().map(|(r,)| r).collect();
    for run in &answered {
        assert!(
            stored.contains(run),
            "run {run} was answered 200 but is not stored"
        );
    }
    db.close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
