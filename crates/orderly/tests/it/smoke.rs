use std::sync::{Arc, Mutex};
use std::time::Duration;

use orderly::{BoxError, Component, Context, EventKind, Spec, System};

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);
impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().expect("the log lock").push(s.into());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().expect("the log lock"))
    }
}

struct Probe {
    name: &'static str,
    log: Log,
    fail_start: bool,
    hang_stop: bool,
}
impl Probe {
    fn new(name: &'static str, log: &Log) -> Self {
        Self {
            name,
            log: log.clone(),
            fail_start: false,
            hang_stop: false,
        }
    }
}
impl Component for Probe {
    type Deps = ();
    type Resource = &'static str;
    async fn start(&mut self, (): (), _ctx: Context) -> Result<&'static str, BoxError> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if self.fail_start {
            return Err(format!("{} refused", self.name).into());
        }
        self.log.push(format!("start {}", self.name));
        Ok(self.name)
    }
    async fn stop(&mut self) -> Result<(), BoxError> {
        if self.hang_stop {
            std::future::pending::<()>().await;
        }
        self.log.push(format!("stop {}", self.name));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn smoke() {
    let log = Log::default();
    let mut b = System::builder("smoke");
    let a = b.add("a", (), Probe::new("a", &log));
    let l = log.clone();
    let c = b.add_fn("c", (a,), move |(a,): (&'static str,), _ctx| {
        let l = l.clone();
        async move {
            l.push(format!("start c after {a}"));
            Ok::<_, BoxError>(a.len())
        }
    });
    let running = b.build().unwrap().start().await.unwrap();
    assert_eq!(running.resource(c), Some(1));
    let report = running.stop().await;
    println!("{report}");
    assert!(report.is_clean());
    assert_eq!(log.take(), ["start a", "start c after a", "stop a"]);
}

#[tokio::test(start_paused = true)]
async fn rollback_and_timeout() {
    let log = Log::default();
    let mut b = System::builder("rb");
    let a = b.add(
        Spec::new("a").stop_timeout(Duration::from_secs(1)),
        (),
        Probe {
            hang_stop: true,
            ..Probe::new("a", &log)
        },
    );
    let base = b.add("base", (), Probe::new("base", &log));
    let _ = a;
    b.add_fn("bad", (base,), |_: (&'static str,), _ctx| async {
        Err::<(), _>("boom")
    });
    let system = b.build().unwrap();
    let mut events = system.events();
    let err = system.start().await.unwrap_err();
    println!("{}", err.report());
    assert_eq!(err.report().exit_code, 1);
    while let Some(e) = events.recv().await {
        println!("{:?} {}", e.elapsed, e.kind.name());
        if matches!(e.kind, EventKind::SystemStopped { .. }) {
            break;
        }
    }
    assert_eq!(log.take(), ["start a", "start base", "stop base"]);
}

#[tokio::test(start_paused = true)]
async fn nested_and_delay() {
    let log = Log::default();
    let mut child = System::builder("child");
    let inner = child.add("inner", (), Probe::new("inner", &log));
    let child = child.build().unwrap();
    let mut parent = System::builder("parent")
        .shutdown_delay(Duration::from_secs(5))
        .env(orderly::Env::empty());
    let c = parent.add("child", (), child);
    let l = log.clone();
    parent.add_fn(
        "user",
        (c.get(inner),),
        move |(v,): (&'static str,), _ctx| {
            let l = l.clone();
            async move {
                l.push(format!("user got {v}"));
                Ok::<_, BoxError>(())
            }
        },
    );
    let system = parent.build().unwrap();
    let running = system.start().await.unwrap();
    running.signal(orderly::Signal::Terminate);
    let report = running.wait().await;
    println!("{report}");
    assert!(report.is_clean(), "{report}");
    assert!(report.stop_took >= Duration::from_secs(5));
    assert_eq!(log.take(), ["start inner", "user got inner", "stop inner"]);
}
