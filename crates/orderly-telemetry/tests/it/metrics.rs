//! The Prometheus recorder behind the `metrics` facade. The recorder is process-global, so one
//! test installs it.

use orderly::{Env, Spec, System};
use orderly_telemetry::{ErrorKind, Metrics};

#[tokio::test]
async fn the_recorder_renders_what_the_facade_records_and_runs_as_a_foundation() {
    let metrics = Metrics::install().expect("the first recorder installs");
    let second = Metrics::install().expect_err("one recorder per process");
    assert!(
        matches!(second.kind(), ErrorKind::RecorderInstalled),
        "{second}"
    );
    assert_eq!(second.exit_code(), 70);

    let mut system = System::builder("metrics").env(Env::empty());
    let key = system.add(Spec::new("metrics").foundation(), (), metrics.clone());
    system.add_fn("orders", (), |(), _ctx| async {
        metrics::counter!("orders_total", "outcome" => "accepted").increment(3);
        metrics::gauge!("orders_in_flight").set(2.0);
        metrics::histogram!("order_seconds").record(0.25);
        Ok::<_, orderly::BoxError>(())
    });
    let running = system.build().unwrap().start().await.unwrap();
    let rendered = running.resource(key).expect("metrics runs").render();
    let report = running.stop().await;

    assert!(report.is_clean(), "{report}");
    for expected in [
        "# TYPE orders_total counter",
        r#"orders_total{outcome="accepted"} 3"#,
        "orders_in_flight 2",
        // `*_seconds` metrics get latency buckets: a histogram, not a summary.
        "# TYPE order_seconds histogram",
        r#"order_seconds_bucket{le="0.25"} 1"#,
        r#"order_seconds_bucket{le="0.1"} 0"#,
        "order_seconds_count 1",
    ] {
        assert!(
            rendered.contains(expected),
            "no `{expected}` in:\n{rendered}"
        );
    }
    assert_eq!(
        metrics.render(),
        rendered,
        "every clone renders the one recorder"
    );
}
