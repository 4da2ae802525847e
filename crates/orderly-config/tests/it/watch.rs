//! Reloading while the system runs: a valid edit of a watched file restarts the system with the
//! new value; an invalid one keeps the old settings, logs why and reports the config degraded.
//! SIGHUP does the same on demand; a restart for another reason keeps valid settings only; a
//! watched endpoints file works the same way. Events are the oracle; the files are real, the
//! clock too (the polling interval is short, and nothing asserts how long anything took).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orderly::{
    BoxError, Env, Event, EventKind, EventStream, Health, Key, Report, Running, SighupPolicy,
    Signal, System,
};
use orderly_config::{Config, Reload};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::support::{Captured, Dir, GUARD, Settings, trace, until};

const WATCH: Reload = Reload::Watch {
    interval: Duration::from_millis(20),
};

/// What a test system reads: a file (and its first text) into settings of type `T`, of which
/// its `user` component reports a part at each start.
struct Watched<T> {
    component: &'static str,
    prefix: &'static str,
    file: &'static str,
    text: &'static str,
    part: fn(&T) -> String,
}

fn name(settings: &Settings) -> String {
    settings.name.clone()
}

/// `config.toml` into `Settings`; `user` reports the name, "one" at first.
const SETTINGS: Watched<Settings> = Watched {
    component: "config",
    prefix: "FAB",
    file: "config.toml",
    text: "name = \"one\"\n",
    part: name,
};

/// A system of the config and a `user` component that reports the part it was started with.
struct App<T> {
    dir: Dir,
    file: PathBuf,
    running: Running,
    component: &'static str,
    config: Key<Arc<T>>,
    part: fn(&T) -> String,
    events: EventStream,
    seen: Vec<Event>,
    starts: mpsc::UnboundedReceiver<String>,
}

async fn app(reload: Reload, sighup: SighupPolicy) -> App<Settings> {
    let mut app = launch(SETTINGS, reload, sighup).await;
    assert_eq!(app.started_with().await, "one");
    app
}

async fn launch<T>(watched: Watched<T>, reload: Reload, sighup: SighupPolicy) -> App<T>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    let dir = Dir::new();
    let file = dir.write(watched.file, watched.text);
    let (tx, starts) = mpsc::unbounded_channel();
    let mut system = System::builder("app").sighup(sighup);
    let config = system.add(
        watched.component,
        (),
        Config::<T>::builder(watched.prefix)
            .file(&file)
            .env(Env::empty())
            .reload(reload)
            .build(),
    );
    let part = watched.part;
    system.add_fn(
        "user",
        config.map(move |c| part(c)),
        move |part: String, _ctx| {
            let _ = tx.send(part);
            async { Ok::<_, BoxError>(()) }
        },
    );
    let system = system.build().expect("a valid system");
    let events = system.events();
    let running = system.start().await.expect("a started system");
    App {
        dir,
        file,
        running,
        component: watched.component,
        config,
        part,
        events,
        seen: Vec::new(),
        starts,
    }
}

impl<T: Send + Sync + 'static> App<T> {
    /// The part the `user` component was started with next.
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
        let component = self.component;
        self.until(
            |k| matches!(k, EventKind::Restarting { requested_by: Some(by) } if **by == *component),
        )
        .await;
    }

    async fn degraded(&mut self) -> Event {
        let config = self.component;
        self.until(|k| {
            matches!(k, EventKind::HealthChanged { component, health: Health::Degraded(_) } if **component == *config)
        })
        .await
    }

    fn restarts_seen(&self) -> usize {
        trace(&self.seen)
            .iter()
            .filter(|e| *e == "restarting")
            .count()
    }

    /// The part of the running settings.
    fn part(&self) -> String {
        let settings = self
            .running
            .resource(self.config)
            .expect("the config is running");
        (self.part)(&settings)
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
    assert_eq!(app.part(), "two");
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
    assert_eq!(app.part(), "one");
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
    assert_eq!(app.part(), "one");

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

fn spec(endpoints: &Endpoints) -> String {
    endpoints.spec.clone()
}

#[tokio::test]
async fn a_watched_endpoints_file_restarts_the_system_the_same_way() {
    let endpoints = Watched {
        component: "endpoints",
        prefix: "PEERS",
        file: "endpoints.yaml",
        text: "spec: http://127.0.0.1:8081\n",
        part: spec,
    };
    let mut app = launch(endpoints, WATCH, SighupPolicy::Ignore).await;
    assert_eq!(app.started_with().await, "http://127.0.0.1:8081");

    app.dir
        .replace("endpoints.yaml", "spec: http://127.0.0.1:9091\n");
    app.restarted().await;

    assert_eq!(app.started_with().await, "http://127.0.0.1:9091");
    assert_eq!(app.stop().await.restarts, 1);
}
