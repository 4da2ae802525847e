//! C8: ignorable components: skipped on a failed start, absent for optional dependents, fatal
//! for required ones, and not obeyed when they ask to stop or restart the system.

use std::time::Duration;

use orderly::{BoxError, EventKind, ExitReason, FailureKind, Outcome, Phase, Spec, State};

use crate::support::{
    Act, Log, Probe, build, builder, failed, next, observed, started, trace, until_stopped,
};

#[tokio::test(start_paused = true)]
async fn an_ignorable_component_that_fails_to_start_is_skipped_and_optional_dependents_get_none() {
    let log = Log::default();
    let mut b = builder("ignorable");
    let cache = Probe::new("cache", &log).on_start(Act::Fail);
    let cache = b.add(Spec::new("cache").ignorable(), (), cache);
    let api = b.add_fn(
        "api",
        cache.optional(),
        |cache: Option<&'static str>, _ctx| async move {
            Ok::<_, BoxError>(format!("cache: {cache:?}"))
        },
    );
    let (system, mut events) = observed(b);

    let running = started(system).await;

    assert_eq!(running.resource(api).as_deref(), Some("cache: None"));
    assert_eq!(running.resource(cache), None);
    assert_eq!(
        running.status().borrow().component("cache").unwrap().state,
        State::Skipped
    );
    let report = running.stop().await;
    assert!(report.is_clean(), "{report}");
    let outcome = &report.component("cache").unwrap().outcome;
    assert_eq!(outcome.to_string(), "skipped: cache refused to start");
    let events = trace(&until_stopped(&mut events).await);
    assert!(
        events.contains(&"component_skipped cache".to_owned()),
        "{events:?}"
    );
    assert!(
        !events.contains(&"component_stopping cache".to_owned()),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_ignorable_component_that_times_out_or_panics_is_skipped_too() {
    let log = Log::default();
    let mut b = builder("ignorable");
    let slow = Probe::new("slow", &log).on_start(Act::Hang);
    b.add(
        Spec::new("slow")
            .ignorable()
            .start_timeout(Duration::from_secs(1)),
        (),
        slow,
    );
    let wild = Probe::new("wild", &log).on_start(Act::Panic);
    b.add(Spec::new("wild").ignorable(), (), wild);

    let report = started(build(b)).await.stop().await;

    assert!(report.is_clean(), "{report}");
    let skipped = |name| match &report.component(name).unwrap().outcome {
        Outcome::Skipped(failure) => failure.clone(),
        other => panic!("{name}: {other}"),
    };
    assert!(skipped("slow").is_timeout());
    assert!(skipped("wild").is_panic());
}

#[tokio::test(start_paused = true)]
async fn a_required_dependent_of_a_skipped_component_fails_naming_both() {
    let log = Log::default();
    let mut b = builder("ignorable");
    let base = b.add("base", (), Probe::new("base", &log));
    let cache = Probe::new("cache", &log).on_start(Act::Fail);
    let cache = b.add(Spec::new("cache").ignorable(), (), cache);
    b.add("api", (base, cache), Probe::new("api", &log));

    let report = failed(build(b)).await;

    let ExitReason::StartFailed { component, failure } = &report.reason else {
        panic!("expected a start failure, got {}", report.reason);
    };
    assert_eq!(&**component, "api");
    assert!(matches!(failure.kind(), FailureKind::DependencyUnavailable(dep) if &**dep == "cache"));
    assert_eq!(
        report.reason.to_string(),
        "component 'api' failed to start: required dependency 'cache' is unavailable"
    );
    assert_eq!(report.exit_code, 1);
    assert_eq!(log.take(), ["start base", "stop base"]);
}

#[tokio::test(start_paused = true)]
async fn an_ignorable_components_stop_and_restart_requests_are_logged_not_obeyed() {
    let mut b = builder("ignorable");
    b.add_fn(Spec::new("flaky").ignorable(), (), |(), ctx| async move {
        ctx.shutdown();
        ctx.restart();
        Ok::<_, BoxError>(())
    });
    let (system, mut events) = observed(b);
    let running = started(system).await;

    let ignored = next(&mut events, "request_ignored flaky").await;
    assert!(matches!(
        ignored.kind,
        EventKind::RequestIgnored {
            request: "shutdown",
            ..
        }
    ));
    let ignored = next(&mut events, "request_ignored flaky").await;
    assert!(matches!(
        ignored.kind,
        EventKind::RequestIgnored {
            request: "restart",
            ..
        }
    ));

    assert_eq!(running.status().borrow().phase, Phase::Running);
    let report = running.stop().await;
    assert!(
        matches!(report.reason, ExitReason::Requested { by: None }),
        "{report}"
    );
    assert_eq!(report.restarts, 0);
}
