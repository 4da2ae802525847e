//! Real processes: the examples run as child processes with exactly the environment a test
//! gives them; their exit code and their log on stdout are the oracle.
//!
//! `cargo test` builds the examples; `cargo test --test it` alone does not, so after a change
//! run `cargo test -p orderly-config` (or `cargo build -p orderly-config --examples`) first.

use std::path::{Path, PathBuf};
use std::process::Output;

use tokio::process::Command;

use crate::support::GUARD;

const SECRET: &str = "s3cr3t-from-the-environment";

/// `target/<profile>/examples/NAME`, next to the `deps` folder this test runs from.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary runs from target/<profile>/deps")
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run these tests with `cargo test -p orderly-config`, which builds the \
         examples",
        path.display()
    );
    path
}

/// Runs an example to its end with exactly `env`.
async fn run(name: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let child = Command::new(example(name))
        .env_clear()
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    let Output {
        status,
        stdout,
        stderr,
    } = tokio::time::timeout(GUARD, child)
        .await
        .expect("the example ended before the guard")
        .expect("the example ran");
    let mut text = String::from_utf8_lossy(&stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&stderr));
    (status.code(), text)
}

#[tokio::test]
async fn invalid_settings_end_the_process_with_78_naming_every_problem_and_no_secret() {
    let (code, output) = run(
        "01_settings",
        &[
            ("FAB_DB__POOL_SIZE", "ten"),
            ("FAB_HTTP__TIMEOUT", "soon"),
            ("FAB_HTTP__PROT", "8081"),
            ("FAB_DB__PASSWORD", SECRET),
        ],
    )
    .await;

    assert_eq!(code, Some(78), "{output}");
    for problem in [
        "invalid configuration (3 problems)",
        r#"FAB_DB__POOL_SIZE: expected u16, found string \"ten\""#,
        "FAB_HTTP__TIMEOUT: expected a duration like 500ms or 5s, found 'soon'",
        "FAB_HTTP__PROT: http.prot: unknown setting",
    ] {
        assert!(output.contains(problem), "`{problem}` in {output}");
    }
    assert!(
        !output.contains(
            "component starting system=\"settings\" event=\"component_starting\" component=\"show\""
        ),
        "{output}"
    );
    assert!(!output.contains(SECRET), "{output}");
}

#[tokio::test]
async fn valid_settings_are_layered_and_logged_with_the_secret_redacted() {
    let (code, output) = run(
        "01_settings",
        &[("FAB_DB__POOL_SIZE", "20"), ("FAB_DB__PASSWORD", SECRET)],
    )
    .await;

    assert_eq!(code, Some(0), "{output}");
    for line in [
        "pool_size: 20,",
        "password: [redacted],",
        "port: 8080,",
        "max_payload: 10485760,",
    ] {
        assert!(output.contains(line), "`{line}` in {output}");
    }
    assert!(!output.contains(SECRET), "{output}");
}

#[tokio::test]
async fn the_watch_example_restarts_on_valid_edits_and_rejects_the_invalid_one() {
    let (code, output) = run("02_watch", &[]).await;

    assert_eq!(code, Some(0), "{output}");
    for line in [
        "bonjour; the spec service is at http://127.0.0.1:8081",
        "the new settings are invalid; the system keeps running on the previous ones",
        "bonjour; the spec service is at http://127.0.0.1:9091",
    ] {
        assert!(output.contains(line), "`{line}` in {output}");
    }
}
