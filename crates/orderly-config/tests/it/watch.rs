//! Reloading while the system runs: a valid edit of a watched file restarts the system with the
//! new value; an invalid one keeps the old settings, logs why and reports the config degraded.
//! SIGHUP does the same on demand; a restart for another reason keeps valid settings only; a
//! watched endpoints file works the same way. Events are the oracle; the files are real, the
//! clock too (the polling interval is short, and nothing asserts how long anything took).

use std::path::PathBuf;
use std::time::Duration;

use orderly::{
    BoxError, Env, Event, EventKind, EventStream, Health, Key, Report, Running, SighupPolicy,
    Signal, System,
};
use orderly_config::{Config, Reload};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::support::{Captured, Dir, GUARD, Settings, trace, until};

const WATCH: Reload = Reload::Watch {
    interval: Duration::from_millis(20),
};

/// A system whose `user` component reports, at each start, the name it was started with.
struct App {
    dir: Dir,
    file: PathBuf,
    running: Running,
    config: Key<std::sync::Arc<Settings>>,
    events: EventStream,
    seen: Vec<Event>,
    starts: mpsc::UnboundedReceiver<String>,
}

async fn app(reload: Reload, sighup: SighupPolicy) -> App {
    let dir = Dir::new();
    let file = dir.write("config.toml", "name = \"one\"\n");
    let (tx, starts) = mpsc::unbounded_channel();
    let mut system = System::builder("app").sighup(sighup);
    let config = system.add(
        "config",
        (),
        Config::<Settings>::builder("FAB")
            .file(&file)
            .env(Env::empty())
            .reload(reload)
            .build(),
    );
    system.add_fn(
        "user",
        config.map(|c| c.name.clone()),
        move |name: String, _ctx| {
            let _ = tx.send(name);
            async { Ok::<_, BoxError>(()) }
        },
    );
    let system = system.build().expect("a valid system");
    let events = system.events();
    let running = system.start().await.expect("a started system");
    let mut app = App {
        dir,
        file,
        running,
        config,
        events,
        seen: Vec::new(),
        starts,
    };
    assert_eq!(app.started_with().await, "one");
    app
}

impl App {
    /// The name the `user` component was started with next.
    async fn started_with(&mut self) -> String {
        tokio::time::timeout(GUARD, self.starts.recv())
            .await
            .expect("a start before the guard")
            .expect("the system is still there")
    }

    async fn until(&mut self, wanted: impl Fn(&EventKind) -> bool) -> Event {
        until(&mut self.events, &mut self.seen, wanted).await
    }

    async fn restarted(&mut self) {
        self.until(
            |k| matches!(k, EventKind::Restarting { requested_by: Some(by) } if &**by == "config"),
        )
        .await;
    }

    async fn degraded(&mut self) -> Event {
        self.until(|k| {
            matches!(k, EventKind::HealthChanged { component, health: Health::Degraded(_) } if &**component == "config")
        })
        .await
    }

    fn restarts_seen(&self) -> usize {
        trace(&self.seen)
            .iter()
            .filter(|e| *e == "restarting")
            .count()
    }

    fn name(&self) -> String {
        self.running
            .resource(self.config)
            .expect("the config is running")
            .name
            .clone()
    }

    async fn stop(self) -> Report {
        let report = self.running.stop().await;
        assert!(report.is_clean(), "{report}");
        report
    }
}

#[tokio::test]
async fn a_valid_edit_restarts_the_system_with_the_new_value() {
    let mut app = app(WATCH, SighupPolicy::Ignore).await;

    // Written in place: the watcher may read it half-written, and waits for it to settle.
    app.dir.write("config.toml", "name = \"two\"\n");
    app.restarted().await;

    assert_eq!(app.started_with().await, "two");
    assert_eq!(app.name(), "two");
    assert_eq!(app.stop().await.restarts, 1);
}

/// On a paused clock, so each read of the files falls between two edits: reading happens on a
/// blocking thread, and tokio does not move a paused clock while one runs.
#[tokio::test(start_paused = true)]
async fn a_change_is_acted_on_only_once_the_files_have_settled() {
    let second = Duration::from_secs(1);
    let mut app = app(Reload::Watch { interval: second }, SighupPolicy::Ignore).await;
    let begin = tokio::time::Instant::now();

    // Reads at 1 s, 2 s, 3 s. The first edit is seen at 1 s and replaced before 2 s; the second
    // is seen at 2 s and again at 3 s: only then does the system restart, with it.
    tokio::time::sleep_until(begin + second / 2).await;
    app.dir.write("config.toml", "name = \"draft\"\n");
    tokio::time::sleep_until(begin + second * 3 / 2).await;
    app.dir.write("config.toml", "name = \"final\"\n");
    app.restarted().await;

    assert_eq!(app.started_with().await, "final", "never the draft");
    assert_eq!(app.stop().await.restarts, 1);
}

#[tokio::test]
async fn an_invalid_edit_keeps_the_old_settings_and_logs_why() {
    let log = Captured::default();
    let _guard = log.install();
    let mut app = app(WATCH, SighupPolicy::Ignore).await;

    app.dir
        .replace("config.toml", "name = \"two\"\n[db]\npool_size = \"ten\"\n");
    app.degraded().await;

    assert_eq!(app.restarts_seen(), 0, "{:?}", trace(&app.seen));
    assert_eq!(app.name(), "one");
    let text = log.text();
    let why = format!(
        "{}: db.pool_size: expected u16, found string \"ten\"",
        app.file.display()
    );
    assert!(text.contains(&why), "{text}");
    assert!(
        text.contains("keeps running on the previous ones"),
        "{text}"
    );

    // The next valid edit is taken, once.
    app.dir.replace("config.toml", "name = \"three\"\n");
    app.restarted().await;
    assert_eq!(app.started_with().await, "three");
    let status = app.running.status().borrow().clone();
    assert_eq!(status.components[0].health, Health::Healthy, "{status:?}");
    assert_eq!(app.stop().await.restarts, 1);
}

#[tokio::test]
async fn reverting_an_invalid_edit_makes_the_config_healthy_again_without_a_restart() {
    let mut app = app(WATCH, SighupPolicy::Ignore).await;

    app.dir.replace("config.toml", "name = 1\nname = 2\n");
    app.degraded().await;
    app.dir.replace("config.toml", "name = \"one\"\n");
    app.until(|k| {
        matches!(k, EventKind::HealthChanged { component, health: Health::Healthy } if &**component == "config")
    })
    .await;

    assert_eq!(app.restarts_seen(), 0, "{:?}", trace(&app.seen));
    assert_eq!(app.stop().await.restarts, 0);
}

#[tokio::test]
async fn sighup_reloads_on_demand_and_restarts_only_for_valid_settings() {
    let mut app = app(Reload::OnSighup, SighupPolicy::Notify).await;

    app.dir.write("config.toml", "[db]\npool_size = 1\n");
    app.running.signal(Signal::Hangup);
    app.degraded().await;
    assert_eq!(app.restarts_seen(), 0, "{:?}", trace(&app.seen));
    assert_eq!(app.name(), "one");

    app.dir.write("config.toml", "name = \"two\"\n");
    app.running.signal(Signal::Hangup);
    app.restarted().await;
    assert_eq!(app.started_with().await, "two");
    assert_eq!(app.stop().await.restarts, 1);
}

#[tokio::test]
async fn a_restart_with_invalid_files_keeps_the_previous_settings() {
    let log = Captured::default();
    let _guard = log.install();
    let mut app = app(Reload::OnRestart, SighupPolicy::Ignore).await;

    app.dir
        .write("config.toml", "name = \"two\"\n[http]\nport = -1\n");
    app.running.restart();

    assert_eq!(app.started_with().await, "one", "the previous settings");
    app.degraded().await;
    let text = log.text();
    assert!(text.contains("http.port: expected u16"), "{text}");
    assert!(text.contains("keeping the previous ones"), "{text}");
    assert_eq!(app.stop().await.restarts, 1);
}

#[derive(Debug, Deserialize)]
struct Endpoints {
    spec: String,
}

#[tokio::test]
async fn a_watched_endpoints_file_restarts_the_system_the_same_way() {
    let dir = Dir::new();
    let file = dir.write("endpoints.yaml", "spec: http://127.0.0.1:8081\n");
    let (tx, mut starts) = mpsc::unbounded_channel();
    let mut system = System::builder("apc");
    let endpoints = system.add(
        "endpoints",
        (),
        Config::<Endpoints>::builder("PEERS")
            .file(&file)
            .env(Env::empty())
            .reload(WATCH)
            .build(),
    );
    system.add_fn(
        "spec-client",
        endpoints.map(|e| e.spec.clone()),
        move |url: String, _ctx| {
            let _ = tx.send(url);
            async { Ok::<_, BoxError>(()) }
        },
    );
    let running = system.build().unwrap().start().await.unwrap();
    let mut next = async || {
        tokio::time::timeout(GUARD, starts.recv())
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(next().await, "http://127.0.0.1:8081");

    dir.replace("endpoints.yaml", "spec: http://127.0.0.1:9091\n");

    assert_eq!(next().await, "http://127.0.0.1:9091");
    let report = running.stop().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.restarts, 1);
}
