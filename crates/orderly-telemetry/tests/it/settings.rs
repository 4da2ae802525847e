//! `LOG_FORMAT`, `LOG_LEVEL` and `RUST_LOG`, read from an explicit environment.

use orderly::Env;
use orderly_telemetry::{
    Error, ErrorKind, LOG_FORMAT, LOG_LEVEL, LogFormat, LogSettings, RUST_LOG,
};

fn settings(pairs: &[(&str, &str)]) -> Result<LogSettings, Error> {
    LogSettings::from_env(&Env::from_pairs(pairs.iter().copied()))
}

/// The error for `pairs`, which must be invalid.
fn error(pairs: &[(&str, &str)]) -> Error {
    settings(pairs).expect_err("an invalid variable")
}

#[test]
fn log_format_selects_json_or_pretty() {
    let json = settings(&[(LOG_FORMAT, "json")]).unwrap();
    assert_eq!(json.format(), LogFormat::Json);
    let pretty = settings(&[(LOG_FORMAT, "pretty")]).unwrap();
    assert_eq!(pretty.format(), LogFormat::Pretty);
    let shouted = settings(&[(LOG_FORMAT, "JSON")]).unwrap();
    assert_eq!(shouted.format(), LogFormat::Json);
}

#[test]
fn an_invalid_log_format_is_invalid_configuration_naming_the_variable_and_the_value() {
    let error = error(&[(LOG_FORMAT, "xml")]);

    assert_eq!(error.variable(), Some(LOG_FORMAT));
    assert!(error.is_invalid_config());
    assert_eq!(error.exit_code(), 78);
    assert_eq!(
        error.to_string(),
        "LOG_FORMAT: expected json or pretty, found 'xml'"
    );
    assert!(matches!(error.kind(), ErrorKind::InvalidVariable { .. }));
}

#[test]
fn the_level_defaults_to_info() {
    let settings = settings(&[]).unwrap();
    assert_eq!(settings.filter(), "info");
    assert_eq!(settings.filter_from(), None);
}

#[test]
fn log_level_sets_the_level_in_any_case() {
    for (given, level) in [
        ("debug", "debug"),
        ("WARN", "warn"),
        (" error ", "error"),
        ("off", "off"),
    ] {
        let settings = settings(&[(LOG_LEVEL, given)]).unwrap();
        assert_eq!(settings.filter(), level, "LOG_LEVEL={given:?}");
        assert_eq!(settings.filter_from(), Some(LOG_LEVEL));
    }
}

#[test]
fn an_invalid_log_level_names_the_variable_and_the_levels() {
    let error = error(&[(LOG_LEVEL, "verbose")]);

    assert_eq!(error.variable(), Some(LOG_LEVEL));
    assert_eq!(
        error.to_string(),
        "LOG_LEVEL: expected one of trace, debug, info, warn, error, off, found 'verbose'"
    );
}

#[test]
fn rust_log_takes_full_directives() {
    let settings = settings(&[(RUST_LOG, "warn,orderly=debug,my_service::db=trace")]).unwrap();
    assert_eq!(settings.filter(), "warn,orderly=debug,my_service::db=trace");
    assert_eq!(settings.filter_from(), Some(RUST_LOG));
}

#[test]
fn rust_log_wins_over_log_level() {
    let settings = settings(&[(LOG_LEVEL, "error"), (RUST_LOG, "orderly=debug")]).unwrap();
    assert_eq!(settings.filter(), "orderly=debug");
    assert_eq!(settings.filter_from(), Some(RUST_LOG));
}

#[test]
fn invalid_rust_log_directives_name_the_variable() {
    let error = error(&[(RUST_LOG, "orderly=loud")]);

    assert_eq!(error.variable(), Some(RUST_LOG));
    assert!(error.to_string().starts_with("RUST_LOG: "), "{error}");
    assert_eq!(error.exit_code(), 78);
}
