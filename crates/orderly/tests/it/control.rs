//! C9 control from inside a component (stop, fail, restart), C15 test support (replace,
//! provide, remove, key by name).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use orderly::{BoxError, Context, ExitReason, Key, Problem, Spec, SystemBuilder, from_fn};
use tokio::sync::Notify;

use crate::support::{
    Act, Log, Probe, build, builder, failed, next, observed, started, trace, until, until_stopped,
    within,
};

/// What a component asks of the system.
#[derive(Clone, Copy)]
enum Ask {
    Shutdown,
    Fail,
    Restart,
}

impl Ask {
    fn send(self, ctx: &Context) {
        match self {
            Ask::Shutdown => ctx.shutdown(),
            Ask::Fail => ctx.fail("disk full"),
            Ask::Restart => ctx.restart(),
        }
    }
}

/// base <- job: `job` spawns a task that asks `ask` when `trigger` is notified, and whose
/// resource is how many times it was started before (its generation).
fn with_job(log: &Log, trigger: &Arc<Notify>, ask: Ask) -> (SystemBuilder, Key<u64>) {
    let mut b = builder("control");
    let base = b.add("base", (), Probe::new("base", log));
    let (trigger, starts) = (trigger.clone(), Arc::new(AtomicU64::new(0)));
    let job = b.add_fn("job", base, move |_: &'static str, ctx: Context| {
        let (trigger, generation) = (trigger.clone(), starts.fetch_add(1, Ordering::SeqCst));
        async move {
            let task = ctx.clone();
            ctx.spawn("watch", async move {
                tokio::select! {
                    () = trigger.notified() => ask.send(&task),
                    () = task.stopping() => {}
                }
                Ok::<_, BoxError>(())
            });
            Ok::<_, BoxError>(generation)
        }
    });
    (b, job)
}

#[tokio::test(start_paused = true)]
async fn shutdown_from_a_task_stops_the_system_cleanly() {
    let (log, trigger) = (Log::default(), Arc::new(Notify::new()));
    let (b, _) = with_job(&log, &trigger, Ask::Shutdown);
    let running = started(build(b)).await;

    trigger.notify_one();
    let report = running.wait().await;

    assert!(matches!(&report.reason, ExitReason::Requested { by: Some(by) } if &**by == "job"));
    assert_eq!(report.reason.to_string(), "stop requested by 'job'");
    assert_eq!(report.exit_code, 0);
    assert_eq!(log.take(), ["start base", "stop base"]);
}

#[tokio::test(start_paused = true)]
async fn fail_from_a_task_stops_the_system_with_code_1_naming_the_component() {
    let (log, trigger) = (Log::default(), Arc::new(Notify::new()));
    let (b, _) = with_job(&log, &trigger, Ask::Fail);
    let running = started(build(b)).await;

    trigger.notify_one();
    let report = running.wait().await;

    assert!(
        matches!(&report.reason, ExitReason::Failed { component, .. } if &**component == "job")
    );
    assert_eq!(
        report.reason.to_string(),
        "component 'job' failed: disk full"
    );
    assert_eq!(report.exit_code, 1);
    assert_eq!(log.take(), ["start base", "stop base"]);
}

#[tokio::test(start_paused = true)]
async fn restart_from_a_task_stops_everything_in_reverse_and_starts_it_again() {
    let (log, trigger) = (Log::default(), Arc::new(Notify::new()));
    let (b, job) = with_job(&log, &trigger, Ask::Restart);
    let (system, mut events) = observed(b);
    let running = started(system).await;
    assert_eq!(running.resource(job), Some(0));

    trigger.notify_one();
    next(&mut events, "restarting").await;
    next(&mut events, "system_started").await;

    assert_eq!(
        running.resource(job),
        Some(1),
        "the resources of the new start"
    );
    let report = running.stop().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.restarts, 1);
    assert_eq!(
        log.take(),
        ["start base", "stop base", "start base", "stop base"]
    );
}

#[tokio::test(start_paused = true)]
async fn restart_from_start_stops_in_reverse_order_then_starts_in_order() {
    let log = Log::default();
    let mut b = builder("control");
    let config = b.add("config", (), Probe::new("config", &log));
    let db = b.add("db", config, Probe::new("db", &log));
    let generations = Arc::new(AtomicU64::new(0));
    b.add_fn("reloader", db, move |_: &'static str, ctx: Context| {
        // The first start finds the configuration changed and asks for a restart.
        if generations.fetch_add(1, Ordering::SeqCst) == 0 {
            ctx.restart();
        }
        async { Ok::<_, BoxError>(()) }
    });
    let (system, mut events) = observed(b);
    let running = started(system).await;

    next(&mut events, "restarting").await;
    let restart = trace(&until(&mut events, "system_started").await);
    let report = running.stop().await;

    assert_eq!(
        restart,
        [
            "readiness_changed",
            "system_stopping",
            "component_stopping reloader",
            "component_stopped reloader",
            "component_stopping db",
            "component_stopped db",
            "component_stopping config",
            "component_stopped config",
            "system_starting",
            "component_starting config",
            "component_started config",
            "component_starting db",
            "component_started db",
            "component_starting reloader",
            "component_started reloader",
            "system_started",
        ]
    );
    assert_eq!(report.restarts, 1);
    assert_eq!(log.count("start db"), 2);
    assert_eq!(log.count("stop db"), 2);
}

#[derive(Clone, Debug, PartialEq)]
struct Pool(&'static str);

/// What application code hands a test: config <- db <- api, and api optionally uses a cache.
fn application(log: &Log) -> SystemBuilder {
    let mut b = builder("app");
    let config = b.add("config", (), Probe::new("config", log));
    let db = b.add_fn(
        Spec::new("db").start_timeout(Duration::from_secs(1)),
        config,
        |_: &'static str, _ctx| async { Ok::<_, BoxError>(Pool("postgres")) },
    );
    let cache = b.add("cache", (), Probe::new("cache", log));
    let log = log.clone();
    b.add_fn("api", (db, cache.optional()), move |(pool, cache), _ctx| {
        let log = log.clone();
        async move {
            log.push(format!("api got {pool:?} and {cache:?}"));
            Ok::<_, BoxError>(())
        }
    });
    b
}

#[tokio::test(start_paused = true)]
async fn key_finds_a_component_by_name_and_resource_type() {
    let b = application(&Log::default());

    assert!(b.key::<Pool>("db").is_some());
    assert!(b.key::<&'static str>("db").is_none(), "wrong resource type");
    assert!(b.key::<Pool>("nosuch").is_none());
}

#[tokio::test(start_paused = true)]
async fn replace_puts_a_fake_in_place_keeping_the_name_and_options() {
    let log = Log::default();
    let mut b = application(&log);
    let db = b.key::<Pool>("db").unwrap();
    b.replace(
        db,
        (),
        from_fn(|(), _ctx| async { Ok::<_, BoxError>(Pool("fake")) }),
    );

    let running = started(build(b)).await;
    assert_eq!(running.resource(db), Some(Pool("fake")));
    assert!(running.stop().await.component("db").is_some());
    assert!(
        log.take()
            .contains(&r#"api got Pool("fake") and Some("cache")"#.to_owned())
    );

    // The start timeout of "db" still applies to its replacement.
    let mut b = application(&log);
    let db = b.key::<Pool>("db").unwrap();
    b.replace(
        db,
        (),
        from_fn(|(), _ctx| std::future::pending::<Result<Pool, BoxError>>()),
    );
    let report = failed(build(b)).await;
    assert_eq!(
        report.reason.to_string(),
        "component 'db' failed to start: timed out after 1s"
    );
}

#[tokio::test(start_paused = true)]
async fn provide_hands_dependents_a_fixed_value_instead_of_starting_the_component() {
    let log = Log::default();
    let mut b = application(&log);
    let config = b.key::<&'static str>("config").unwrap();
    b.provide(config, "fixed");

    let running = started(build(b)).await;

    assert_eq!(running.resource(config), Some("fixed"));
    assert!(running.stop().await.is_clean());
    assert!(!log.take().contains(&"start config".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn remove_leaves_optional_dependents_with_none() {
    let log = Log::default();
    let mut b = application(&log);
    let cache = b.key::<&'static str>("cache").unwrap();
    b.remove(cache);

    let running = within(started(build(b))).await;

    assert_eq!(running.resource(cache), None);
    assert!(running.stop().await.is_clean());
    assert_eq!(
        log.take(),
        [
            "start config",
            r#"api got Pool("postgres") and None"#,
            "stop config"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn removing_a_required_dependency_is_a_build_error() {
    let mut b = application(&Log::default());
    b.remove(b.key::<Pool>("db").unwrap());

    let error = b.build().unwrap_err();

    assert_eq!(
        error.problems(),
        [Problem::UnknownDependency {
            component: "api".into()
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn a_system_started_in_process_hands_out_resources_and_a_report() {
    let log = Log::default();
    let mut b = builder("in-process");
    let a = b.add("a", (), Probe::new("a", &log).on_stop(Act::Fail));
    let (system, mut events) = observed(b);

    let running = started(system).await;
    assert_eq!(running.resource(a), Some("a"));
    assert_eq!(running.resources().get(a), Some("a"));
    let report = running.stop().await;

    assert_eq!(report.exit_code, 1);
    assert_eq!(
        report.component("a").unwrap().outcome.to_string(),
        "stop failed: a refused to stop"
    );
    assert_eq!(
        trace(&until_stopped(&mut events).await).last().unwrap(),
        "system_stopped"
    );
}
