//! C1 the component contract, C2 declared and validated dependencies, C3 dependency mapping.

use std::sync::Arc;

use orderly::{BoxError, Component, Context, Env, Problem, SHUTDOWN_DELAY, SHUTDOWN_TIMEOUT};

use crate::support::{Log, Probe, build, builder, started};

#[derive(Clone, Debug, PartialEq)]
struct Config {
    service: String,
    mongodb: MongoConfig,
}

#[derive(Clone, Debug, PartialEq)]
struct MongoConfig {
    url: String,
}

fn config() -> Config {
    Config {
        service: "apc".into(),
        mongodb: MongoConfig {
            url: "mongodb://db".into(),
        },
    }
}

/// A component written as a type: receives the URL it declared, delegates a pool, has a stop.
struct Database {
    log: Log,
}

#[derive(Clone, Debug, PartialEq)]
struct Pool(Arc<str>);

impl Component for Database {
    type Deps = MongoConfig;
    type Resource = Pool;

    async fn start(&mut self, config: MongoConfig, ctx: Context) -> Result<Pool, BoxError> {
        self.log
            .push(format!("{} connects to {}", ctx.name(), config.url));
        Ok(Pool(config.url.into()))
    }

    async fn stop(&mut self) -> Result<(), BoxError> {
        self.log.push("db closes");
        Ok(())
    }
}

/// A component made by a factory function.
fn greeter(log: &Log) -> impl Component<Deps = (Pool, String), Resource = String> {
    let log = log.clone();
    orderly::from_fn(move |(pool, service): (Pool, String), ctx: Context| {
        let log = log.clone();
        async move {
            log.push(format!("{} got {} and {service}", ctx.name(), pool.0));
            Ok::<_, BoxError>(format!("hello from {service}"))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn start_receives_exactly_what_it_declared_and_returns_what_it_delegates() {
    let log = Log::default();
    let mut b = builder("contract");
    let config = b.add_fn("config", (), |(), _ctx| async {
        Ok::<_, BoxError>(config())
    });
    let db = b.add(
        "db",
        config.map(|c| c.mongodb.clone()),
        Database { log: log.clone() },
    );
    let greeting = b.add(
        "greeter",
        (db, config.map(|c| c.service.clone())),
        greeter(&log),
    );

    let running = started(build(b)).await;
    assert_eq!(running.resource(db), Some(Pool("mongodb://db".into())));
    assert_eq!(
        running.resource(greeting).as_deref(),
        Some("hello from apc")
    );
    let report = running.stop().await;

    assert!(report.is_clean(), "{report}");
    assert_eq!(
        log.take(),
        [
            "db connects to mongodb://db",
            "greeter got mongodb://db and apc",
            "db closes",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn stop_is_optional() {
    let log = Log::default();
    let mut b = builder("contract");
    // A closure has no stop; a probe does.
    let base = b.add("base", (), Probe::new("base", &log));
    b.add_fn("closure", base, |_: &'static str, _ctx| async {
        Ok::<_, BoxError>(())
    });

    let report = started(build(b)).await.stop().await;

    assert!(report.is_clean(), "{report}");
    for name in ["base", "closure"] {
        assert_eq!(
            report.component(name).unwrap().outcome.to_string(),
            "stopped"
        );
    }
    assert_eq!(log.take(), ["start base", "stop base"]);
}

#[test]
fn build_reports_every_problem_at_once_naming_the_components() {
    let log = Log::default();
    let mut b = builder("broken").env(Env::from_pairs([(SHUTDOWN_DELAY, "soon")]));
    b.add("db", (), Probe::new("db", &log));
    b.add("db", (), Probe::new("db", &log));
    let cache = b.add("cache", (), Probe::new("cache", &log));
    b.add("api", cache, Probe::new("api", &log));
    b.remove(cache);
    let first = b.add("first", (), Probe::new("first", &log));
    let second = b.add("second", first, Probe::new("second", &log));
    b.replace(first, second, Probe::new("first", &log));

    let error = b.build().unwrap_err();

    assert_eq!(
        error.problems(),
        [
            Problem::InvalidVariable {
                variable: SHUTDOWN_DELAY,
                reason: "expected a duration like 500ms or 5s, found 'soon': unknown unit 'soon' \
                         (use ms, s, m or h)"
                    .into(),
            },
            Problem::DuplicateName("db".into()),
            Problem::UnknownDependency {
                component: "api".into()
            },
            Problem::Cycle(vec!["first".into(), "second".into(), "first".into()]),
        ]
    );
    let message = error.to_string();
    for part in [
        "'broken'",
        "'db'",
        "'api'",
        "'first' -> 'second' -> 'first'",
        SHUTDOWN_DELAY,
    ] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
    assert!(!error.is_config());
    assert_eq!(error.exit_code(), 70);
    assert_eq!(log.take(), Vec::<String>::new(), "nothing starts");
}

#[test]
fn invalid_shutdown_variables_alone_are_invalid_configuration() {
    let env = Env::from_pairs([(SHUTDOWN_DELAY, "5"), (SHUTDOWN_TIMEOUT, "")]);
    let mut b = builder("config").env(env);
    b.add("db", (), Probe::new("db", &Log::default()));

    let error = b.build().unwrap_err();

    let variables: Vec<&str> = error
        .problems()
        .iter()
        .map(|p| match p {
            Problem::InvalidVariable { variable, .. } => *variable,
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(variables, [SHUTDOWN_DELAY, SHUTDOWN_TIMEOUT]);
    assert!(error.is_config());
    assert_eq!(error.exit_code(), 78);
}

#[test]
fn empty_names_and_keys_of_another_system_are_rejected() {
    let log = Log::default();
    let mut other = builder("other");
    let foreign = other.add("foreign", (), Probe::new("foreign", &log));
    let mut b = builder("mixed");
    b.add(" ", (), Probe::new("blank", &log));
    b.add("user", foreign, Probe::new("user", &log));

    let error = b.build().unwrap_err();

    assert_eq!(
        error.problems(),
        [
            Problem::EmptyName,
            Problem::ForeignDependency {
                component: "user".into()
            },
        ]
    );
    assert_eq!(error.exit_code(), 70);
}

#[tokio::test(start_paused = true)]
async fn a_mapped_dependency_receives_a_typed_part_under_its_own_name() {
    let mut b = builder("mapping");
    let config = b.add_fn("config", (), |(), _ctx| async {
        Ok::<_, BoxError>(config())
    });
    // corpjs: dependsOn({ component: 'config', source: 'mongodb', as: 'mongodbConfig' })
    let mongo = b.add_fn(
        "mongo",
        (
            config.map(|c| c.mongodb.clone()),
            config.map(|c| c.service.len()),
        ),
        |(mongodb_config, length): (MongoConfig, usize), _ctx| async move {
            Ok::<_, BoxError>(format!(
                "{} for a {length}-letter service",
                mongodb_config.url
            ))
        },
    );

    let running = started(build(b)).await;

    assert_eq!(
        running.resource(mongo).as_deref(),
        Some("mongodb://db for a 3-letter service")
    );
    assert!(running.stop().await.is_clean());
}
