//! `fab all` as a process: starts in an empty directory with no configuration, prints where it
//! listens, is ready, and exits 0 on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::api_of;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fab_all_starts_with_no_configuration_prints_its_addresses_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // No configuration at all, except port 0 so that parallel tests and other services on this
    // machine do not collide (the default ports are 8080 and 9090).
    let mut child = Command::new(env!("CARGO_BIN_EXE_fab"))
        .arg("all")
        .current_dir(dir.path())
        .env_clear()
        .env("PORT", "0")
        .env("ADMIN_PORT", "0")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut api, mut admin, mut started) = (None, None, false);
    let found = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let url = value["url"].as_str().map(str::to_owned);
            match value["message"].as_str() {
                Some("fab API listening") => api = url,
                Some(m) if m.starts_with("fab admin listening") => admin = url,
                _ => {}
            }
            // Ready once every component has started: the lifecycle's own line says so.
            started |= value["event"] == "system_started";
            if api.is_some() && admin.is_some() && started {
                return;
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "no address or started lines within {DEADLINE:?}"
    );
    let (api, admin) = (api.unwrap(), admin.unwrap());
    assert!(api.starts_with("http://127.0.0.1:"), "{api}");

    let ready = http_get(&format!("{admin}/readyz")).await;
    assert_eq!(ready, 200);
    // The embedded default made its database and its tokens in the working directory.
    assert!(dir.path().join("fab-data/fab.db").exists());
    assert!(dir.path().join("fab-data/tokens.env").exists());
    // Reads are open: a thread that does not exist is a JSON 404.
    assert_eq!(
        http_get(&format!("{api}/v1/apc/threads/f/t/p/N5/l/r")).await,
        404
    );

    let pid = Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    // Drain stdout so the process never blocks on a full pipe while stopping.
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .unwrap()
        .unwrap();
    drain.await.unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// The status of a GET (a minimal client is enough here).
async fn http_get(url: &str) -> u16 {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

fn fab(args: &[&str], dir: &std::path::Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fab"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fab_apc_without_a_database_url_exits_78_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::time::timeout(
        DEADLINE,
        fab(&["apc"], dir.path(), &[("PORT", "0"), ("ADMIN_PORT", "0")]).output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("DATABASE_URL"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fab_simulate_without_tokens_exits_78_and_without_a_fab_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    // No FAB_TOKENS and no ./fab-data/tokens.env: says where the tokens come from.
    let output = tokio::time::timeout(DEADLINE, fab(&["simulate"], dir.path(), &[]).output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("FAB_TOKENS") && text.contains("tokens.env"),
        "{text}"
    );

    // Nothing listens on port 1: connection refused is a clear error and exit 1.
    let tokens = (
        "FAB_TOKENS",
        "tool:tool-token-01,engineer:eng-token-01,admin:adm-token-01",
    );
    let output = tokio::time::timeout(
        DEADLINE,
        fab(
            &["simulate", "--url", "http://127.0.0.1:1"],
            dir.path(),
            &[tokens],
        )
        .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("cannot reach the fab at http://127.0.0.1:1"),
        "{text}"
    );
    assert!(!text.contains("eng-token-01"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_out_fab_migrate_then_fab_apc_on_postgres() {
    let base = std::env::var("POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("fab_proc_{:016x}", rand::random::<u64>());
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let url = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => format!("{}/{name}", &base[..i]),
        _ => format!("{base}/{name}"),
    };
    let dir = tempfile::tempdir().unwrap();

    // The admin task: applies the migrations, exits 0; a second run has nothing to do.
    for _ in 0..2 {
        let output = tokio::time::timeout(
            DEADLINE,
            fab(&["migrate"], dir.path(), &[("DATABASE_URL", &url)]).output(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    let env = [
        ("DATABASE_URL", url.as_str()),
        ("FAB_TOKENS", "engineer:engineer-token-0001"),
        ("PORT", "0"),
        ("ADMIN_PORT", "0"),
    ];
    let mut child = fab(&["apc"], dir.path(), &env)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (api, drain) = api_of(&mut child).await;

    // A write through the process lands in PostgreSQL.
    let body = crate::support::config_body(0.3).to_string();
    let status = http_post(
        &format!("{api}/v1/apc/configs"),
        "engineer-token-0001",
        &body,
    )
    .await;
    assert_eq!(status, 201);
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM apc_configs")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(n, 1);
    db.close().await;

    let pid = Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .unwrap()
        .unwrap();
    drain.await.unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}

async fn http_post(url: &str, token: &str, body: &str) -> u16 {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let request = hyper::Request::post(url)
        .header("authorization", format!("Bearer {token}"))
        .header("idempotency-key", "proc-1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_idempotency_retention_exits_78_naming_it() {
    for retention in ["soon", "0"] {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("PORT", "0"),
            ("ADMIN_PORT", "0"),
            ("FAB_IDEMPOTENCY_RETENTION", retention),
        ];
        let output = tokio::time::timeout(DEADLINE, fab(&["all"], dir.path(), &env).output())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(output.status.code(), Some(78), "{retention}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains("FAB_IDEMPOTENCY_RETENTION"),
            "{retention}: {text}"
        );
    }
}
