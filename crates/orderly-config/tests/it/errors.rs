//! Bad input: each problem names its culprit (the variable, or the file and key) with what was
//! expected and what was found; several at once are all reported; a failed start exits 78.

use orderly::{Env, System};
use orderly_config::{Config, ConfigError, Problem, ProblemKind};
use serde::Deserialize;

use crate::support::{Dir, Settings};

fn load(env: &[(&str, &str)], files: &[&std::path::Path]) -> Result<Settings, ConfigError> {
    files
        .iter()
        .fold(Config::<Settings>::builder("FAB"), |b, f| b.file(f))
        .env(Env::from_pairs(env.iter().copied()))
        .strict()
        .build()
        .load()
}

/// The only problem of `result`.
fn only(result: Result<Settings, ConfigError>) -> Problem {
    let error = result.expect_err("a problem");
    assert_eq!(error.problems().len(), 1, "{error}");
    error.problems()[0].clone()
}

#[test]
fn a_missing_required_variable_names_the_variable_and_the_files() {
    let dir = Dir::new();
    let file = dir.write("config.toml", "[db]\npool_size = 3\n");
    let problem = only(load(&[], &[&file]));

    assert_eq!(problem.kind(), ProblemKind::Missing);
    assert_eq!(problem.variable(), Some("FAB_NAME"));
    assert_eq!(problem.key(), Some("name"));
    assert_eq!(
        problem.to_string(),
        format!(
            "name: missing (expected a string); set FAB_NAME or `name` in {}",
            file.display()
        )
    );
}

#[test]
fn a_wrong_type_names_the_variable_and_says_what_was_expected_and_found() {
    let problem = only(load(
        &[("FAB_NAME", "x"), ("FAB_DB__POOL_SIZE", "ten")],
        &[],
    ));

    assert_eq!(problem.kind(), ProblemKind::Invalid);
    assert_eq!(problem.variable(), Some("FAB_DB__POOL_SIZE"));
    assert_eq!(problem.key(), Some("db.pool_size"));
    assert_eq!(
        problem.to_string(),
        "FAB_DB__POOL_SIZE: expected u16, found string \"ten\""
    );
}

#[test]
fn a_wrong_type_in_a_file_names_the_file_and_the_key() {
    let dir = Dir::new();
    let file = dir.write("config.toml", "name = \"x\"\n[db]\npool_size = 70000\n");
    let problem = only(load(&[], &[&file]));

    assert_eq!(problem.file(), Some(file.as_path()));
    assert_eq!(
        problem.to_string(),
        format!(
            "{}: db.pool_size: expected u16, found signed int `70000`",
            file.display()
        )
    );
}

#[test]
fn an_unparsable_duration_says_why() {
    let problem = only(load(
        &[("FAB_NAME", "x"), ("FAB_DB__TIMEOUT", "5 sec")],
        &[],
    ));
    assert_eq!(
        problem.to_string(),
        "FAB_DB__TIMEOUT: expected a duration like 500ms or 5s, found '5 sec': unknown unit \
         ' sec' (use ms, s, m or h)"
    );
}

#[test]
fn an_unknown_key_is_a_problem_in_strict_mode_only() {
    let dir = Dir::new();
    let file = dir.write("config.toml", "name = \"x\"\n[db]\npoolsize = 3\n");
    let env = [("FAB_HTTP__PROT", "8081")];

    let error = load(&env, &[&file]).unwrap_err();
    let lines: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            format!("{}: db.poolsize: unknown setting", file.display()),
            "FAB_HTTP__PROT: http.prot: unknown setting".to_owned(),
        ]
    );
    assert!(
        error
            .problems()
            .iter()
            .all(|p| p.kind() == ProblemKind::Unknown)
    );

    let lenient = Config::<Settings>::builder("FAB")
        .file(&file)
        .env(Env::from_pairs(env))
        .build()
        .load();
    assert!(lenient.is_ok(), "{lenient:?}");
}

#[test]
fn a_malformed_file_is_named_with_the_line_and_column() {
    let dir = Dir::new();
    let file = dir.write("config.toml", "name = \"x\"\n[db\n");
    let problem = only(load(&[("FAB_NAME", "x")], &[&file]));

    assert_eq!(problem.kind(), ProblemKind::Malformed);
    assert_eq!(problem.file(), Some(file.as_path()));
    assert_eq!(
        problem.to_string(),
        format!(
            "{}: not valid TOML at line 2, column 4: unclosed table, expected `]`",
            file.display()
        )
    );
}

#[test]
fn a_missing_required_file_and_an_unknown_format_are_named() {
    let dir = Dir::new();
    let absent = dir.path("absent.toml");
    let ini = dir.write("config.ini", "name = x");
    let error = load(&[("FAB_NAME", "x")], &[&absent, &ini]).unwrap_err();
    let problems = error.problems();

    assert_eq!(problems.len(), 2, "{error}");
    assert_eq!(problems[0].file(), Some(absent.as_path()));
    assert!(
        problems[0].to_string().contains("cannot be read"),
        "{error}"
    );
    assert_eq!(problems[1].file(), Some(ini.as_path()));
    assert!(
        problems[1].to_string().contains("unknown format"),
        "{error}"
    );
    assert!(problems.iter().all(|p| p.kind() == ProblemKind::Unreadable));
}

#[test]
fn several_problems_are_all_reported_at_once_each_once() {
    let dir = Dir::new();
    let broken = dir.write("broken.yaml", "db: [1, 2\n");
    let typed = dir.write("typed.toml", "[http]\nport = \"eighty\"\n");
    let env = [
        ("FAB_DB__POOL_SIZE", "ten"),
        ("FAB_DB__TIMEOUT", "soon"),
        ("FAB_DB__MAX_PAYLOAD", "lots"),
        ("FAB_HTTP__HOSTS", "[a, [b]]"),
        ("FAB_HTTP__DEBUG", "maybe"),
        ("FAB_UNKNOWN", "1"),
    ];

    let error = load(&env, &[&broken, &typed]).unwrap_err();
    let culprits: Vec<String> = error
        .problems()
        .iter()
        .map(|p| {
            let at = p.variable().map_or_else(
                || {
                    p.file()
                        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                },
                |v| Some(v.to_owned()),
            );
            format!("{:?} {}", p.kind(), at.unwrap_or_default())
        })
        .collect();

    assert_eq!(
        culprits,
        [
            "Malformed broken.yaml",
            "Invalid FAB_DB__MAX_PAYLOAD",
            "Invalid FAB_DB__POOL_SIZE",
            "Invalid FAB_DB__TIMEOUT",
            "Invalid FAB_HTTP__DEBUG",
            "Invalid FAB_HTTP__HOSTS",
            "Invalid typed.toml",
            "Missing FAB_NAME",
            "Unknown FAB_UNKNOWN",
        ],
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with("invalid configuration (9 problems):"),
        "{text}"
    );
    for line in [
        "FAB_DB__MAX_PAYLOAD: expected a size like 512KiB or 10MiB, found \"lots\"",
        "FAB_HTTP__HOSTS: http.hosts.1: expected a string, found sequence",
        "FAB_HTTP__DEBUG: expected a boolean, found string \"maybe\"",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only deserialized")]
struct Service {
    tls: Tls,
    mode: Mode,
    #[serde(default)]
    limits: Limits,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only deserialized")]
struct Tls {
    cert: String,
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Primary,
    Replica,
}

#[derive(Debug, Default, Deserialize)]
#[allow(dead_code, reason = "only deserialized")]
struct Limits {
    rate: u32,
    burst: u32,
}

#[test]
fn a_missing_table_reports_its_missing_keys_and_a_missing_enum_its_variants() {
    let error = Config::<Service>::builder("SVC")
        .env(Env::from_pairs([("SVC_LIMITS__BURST", "10")]))
        .build()
        .load()
        .unwrap_err();
    let lines: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "limits.rate: missing (expected u32); set SVC_LIMITS__RATE",
            "tls.cert: missing (expected a string); set SVC_TLS__CERT",
            "tls.key: missing (expected a string); set SVC_TLS__KEY",
            "mode: missing (expected one of `primary`, `replica`); set SVC_MODE",
        ],
        "{error}"
    );
    assert!(
        error
            .problems()
            .iter()
            .all(|p| p.kind() == ProblemKind::Missing)
    );
}

#[test]
fn a_variable_that_looks_like_a_list_but_does_not_fit_is_reported_as_it_was_read() {
    let problem = only(load(
        &[("FAB_NAME", "x"), ("FAB_DB__POOL_SIZE", "[1, 2]")],
        &[],
    ));
    assert_eq!(
        problem.to_string(),
        "FAB_DB__POOL_SIZE: expected u16, found sequence"
    );
}

#[tokio::test]
async fn a_first_start_with_invalid_settings_fails_with_exit_code_78_naming_every_problem() {
    let env = Env::from_pairs([("FAB_DB__POOL_SIZE", "ten")]);
    let mut system = System::builder("app");
    let config = system.add(
        "config",
        (),
        Config::<Settings>::builder("FAB").env(env).build(),
    );
    system.add_fn("db", config, |_: std::sync::Arc<Settings>, _ctx| async {
        Ok::<_, std::io::Error>(())
    });

    let report = system
        .build()
        .unwrap()
        .start()
        .await
        .unwrap_err()
        .into_report();

    assert_eq!(report.exit_code, 78, "{report}");
    let reason = report.reason.to_string();
    assert!(
        reason.contains("FAB_DB__POOL_SIZE: expected u16"),
        "{reason}"
    );
    assert!(reason.contains("name: missing"), "{reason}");
    assert!(
        report
            .component("db")
            .is_some_and(|c| c.started_in.is_none()),
        "nothing that depends on the config started: {report}"
    );
}
