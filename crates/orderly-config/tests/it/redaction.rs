//! Redaction: a secret set in the environment (or a file) never appears in Debug output, error
//! messages, logs, orderly's events, the status, or the admin endpoint's `/status`.

use std::fmt::Debug;

use orderly::{Env, Event, System};
use orderly_config::{Config, Secret};
use orderly_http::Admin;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Captured, Db, Dir, until, until_stopped};

const SECRET: &str = "s3cr3t-hunter2";

#[derive(Debug, Deserialize)]
struct Vault {
    #[serde(default)]
    name: String,
    #[serde(default)]
    pin: Option<Secret<u32>>,
    #[serde(default)]
    db: Db,
}

#[track_caller]
fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "the secret shows in {what}: {text}");
}

fn debug(values: &[impl Debug]) -> String {
    values.iter().map(|v| format!("{v:#?}\n")).collect()
}

#[test]
fn the_settings_debug_output_shows_redacted_in_place_of_a_secret() {
    let env = Env::from_pairs([("FAB_DB__PASSWORD", SECRET), ("FAB_PIN", "1234")]);
    let vault = Config::<Vault>::builder("FAB")
        .env(env)
        .build()
        .load()
        .unwrap();

    assert_eq!(vault.db.password.expose(), SECRET);
    assert_eq!(vault.pin.as_ref().map(|p| *p.expose()), Some(1234));
    let shown = format!("{vault:?} {vault:#?} {}", vault.db.password);
    assert_hidden("Debug and Display", &shown);
    assert!(shown.contains("password: [redacted]"), "{shown}");
    assert!(!shown.contains("1234"), "{shown}");
}

#[test]
fn errors_name_the_culprit_without_quoting_the_secret() {
    let dir = Dir::new();
    // A secret where a number goes, a secret in a malformed file, a secret under a misspelt
    // key, and a secret where a number goes in a file.
    let malformed = dir.write("broken.toml", &format!("[db]\npassword = {SECRET}\n"));
    let typed = dir.write("typed.yaml", &format!("pin: {SECRET}\n"));
    let env = Env::from_pairs([
        ("FAB_PIN", SECRET),
        ("FAB_DB__PASWORD", SECRET),
        ("FAB_DB__PASSWORD", SECRET),
    ]);
    let config = Config::<Vault>::builder("FAB")
        .file(&malformed)
        .file(&typed)
        .env(env)
        .strict()
        .build();
    let error = config.load().unwrap_err();

    let lines: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            format!(
                "{}: not valid TOML at line 2, column 12: string values must be quoted, \
                 expected literal string",
                malformed.display()
            ),
            "FAB_PIN: expected u32 (a secret: the value found is not shown)".to_owned(),
            "FAB_DB__PASWORD: db.pasword: unknown setting".to_owned(),
        ],
        "{error}"
    );
    assert_hidden("the error", &format!("{error} {error:?} {config:?}"));

    // The file's value, once the variable is gone.
    let env = Env::from_pairs([("FAB_DB__PASSWORD", SECRET)]);
    let error = Config::<Vault>::builder("FAB")
        .file(&typed)
        .env(env)
        .build()
        .load()
        .unwrap_err();
    assert_eq!(
        error.problems()[0].to_string(),
        format!(
            "{}: pin: expected u32 (a secret: the value found is not shown)",
            typed.display()
        )
    );
    assert_hidden("the error", &format!("{error} {error:?}"));
}

#[tokio::test]
async fn a_failed_start_shows_no_secret_in_logs_events_status_or_report() {
    let log = Captured::default();
    let _guard = log.install();
    let env = Env::from_pairs([("FAB_PIN", SECRET), ("FAB_DB__PASSWORD", SECRET)]);
    let mut system = System::builder("vault").log_all_events();
    system.add(
        "config",
        (),
        Config::<Vault>::builder("FAB").env(env).build(),
    );
    let system = system.build().unwrap();
    let mut events = system.events();
    let status = system.status();

    let error = system.start().await.unwrap_err();
    let events = until_stopped(&mut events).await;

    let report = error.report();
    assert_eq!(report.exit_code, 78);
    let failure = status.borrow().components[0]
        .failure
        .clone()
        .expect("a failure");
    assert!(
        failure.to_string().contains("FAB_PIN: expected u32"),
        "{failure}"
    );
    assert!(
        log.text().contains("FAB_PIN: expected u32"),
        "the problem is logged"
    );
    assert_hidden("the status", &format!("{:?} {failure}", *status.borrow()));
    assert_hidden("the report", &format!("{error} {report} {report:?}"));
    assert_hidden("the events", &debug(&events));
    assert_hidden("the log", &log.text());
}

#[tokio::test]
async fn the_status_endpoint_of_a_system_on_its_previous_settings_shows_no_secret() {
    let log = Captured::default();
    let _guard = log.install();
    let dir = Dir::new();
    let file = dir.write("vault.toml", "name = \"vault\"\n");
    let env = Env::from_pairs([("FAB_DB__PASSWORD", SECRET)]);
    let mut system = System::builder("vault").log_all_events();
    let admin = system.add("admin", (), Admin::new().bind(([127, 0, 0, 1], 0)));
    let config = system.add(
        "config",
        (),
        Config::<Vault>::builder("FAB").file(&file).env(env).build(),
    );
    let running = system.build().unwrap().start().await.unwrap();
    let mut events = running.events();
    let mut seen: Vec<Event> = Vec::new();

    // The file turns invalid with a secret in it; the restart keeps the previous settings.
    dir.write(
        "vault.toml",
        &format!("name = \"vault\"\npin = \"{SECRET}\"\n"),
    );
    running.restart();
    until(&mut events, &mut seen, |kind| {
        matches!(kind, orderly::EventKind::SystemStarted { .. })
    })
    .await;
    let body = get_status(running.resource(admin).unwrap().local_addr()).await;
    let settings = running.resource(config).unwrap();
    assert_eq!(
        (&*settings.name, settings.db.password.expose().as_str()),
        ("vault", SECRET)
    );

    let report = running.stop().await;
    seen.extend(until_stopped(&mut events).await);
    assert!(body.contains(r#""name":"config""#), "{body}");
    assert!(
        body.contains("degraded: the new settings are invalid"),
        "{body}"
    );
    assert!(
        log.text().contains("pin: expected u32"),
        "the problem is logged"
    );
    assert_hidden("/status", &body);
    assert_hidden("the events", &debug(&seen));
    assert_hidden("the report", &format!("{report} {report:?}"));
    assert_hidden("the log", &log.text());
}

/// `GET /status` over a plain connection; the response as text.
async fn get_status(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the admin listener");
    stream
        .write_all(b"GET /status HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .await
        .expect("the request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("the response read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}
