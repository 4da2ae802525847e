//! The queue drill's run: database, replicas, publishing with restarts or kills, drain, stop,
//! verification.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, ErrorKind};
use crate::queue::broker::Client;
use crate::queue::broker::Depth;
use crate::queue::database::{Database, Effect};
use crate::queue::options::{Cleanup, QueueOptions, Scenario};
use crate::queue::publish::{self, Published, Settled, message_id, message_number};
use crate::queue::replicas::{Consumers, Stop};
use crate::queue::report::{LISTED, QueueEvent, QueueReport};

/// How often the drill looks at the broker and the database while it waits.
const POLL: Duration = Duration::from_millis(50);

/// How long a JetStream replica runs before it counts as consuming (the server does not count
/// the clients of a shared durable pull consumer).
const STARTUP: Duration = Duration::from_secs(1);

/// A message-queue drill, validated and ready to [`run`](QueueDrill::run).
#[derive(Debug)]
#[must_use = "a drill does nothing until it is run"]
pub struct QueueDrill {
    options: QueueOptions,
}

impl QueueDrill {
    /// Validates `options`; the error lists every problem, each naming its option.
    pub fn new(options: QueueOptions) -> Result<Self, Error> {
        options.validate()?;
        Ok(Self { options })
    }

    /// Runs the drill: creates its database, starts the replicas, publishes while restarting
    /// or killing them, drains the queue, stops the replicas with SIGTERM and checks every
    /// confirmed message's effect; then drops the database and deletes the queue (unless
    /// [`Cleanup::Keep`]). A lost message is the report's result, not an error; the error is
    /// for a drill that could not run (broker, database, a replica that never consumed). If
    /// the future is dropped, the replicas are killed (`kill_on_drop`).
    pub async fn run(self) -> Result<QueueReport, Error> {
        let options = &self.options;
        let name = options.name.clone().unwrap_or_else(unique_name);
        let work_dir = match &options.work_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
                dir.clone()
            }
            None => tempfile::Builder::new()
                .prefix("orderly-qdrill-")
                .tempdir()
                .map_err(|e| Error::file(std::env::temp_dir(), e))?
                .keep(),
        };
        tracing::info!(work_dir = %work_dir.display(), %name, "queue drill");
        let database = Database::create(
            &options.database_url,
            &name.replace('-', "_"),
            &options.target.effects_query,
            options.target.create_effects_table,
        )
        .await?;
        let result = self.with_database(&name, &database, work_dir).await;
        if options.cleanup == Cleanup::Drop
            && let Err(error) = database.drop_database().await
        {
            tracing::warn!(%error, "cannot drop the drill's database");
        }
        result
    }

    async fn with_database(
        &self,
        queue: &str,
        database: &Database,
        work_dir: PathBuf,
    ) -> Result<QueueReport, Error> {
        let broker = Client::connect(&self.options.broker, queue).await?;
        let tracker = TaskTracker::new();
        let abort = CancellationToken::new();
        let result = self
            .drill(&broker, database, work_dir, &tracker, &abort)
            .await;
        // On an error, kill whatever replica is left; then wait for every supervisor.
        abort.cancel();
        tracker.close();
        tracker.wait().await;
        if self.options.cleanup == Cleanup::Drop
            && let Err(error) = broker.delete().await
        {
            tracing::warn!(%error, "cannot delete the drill's queue");
        }
        broker.close().await;
        result.map(|mut report| {
            report.broker_url = self.options.broker.redacted_url();
            report.queue = queue.to_owned();
            report
        })
    }

    async fn drill(
        &self,
        broker: &Client,
        database: &Database,
        work_dir: PathBuf,
        tracker: &TaskTracker,
        abort: &CancellationToken,
    ) -> Result<QueueReport, Error> {
        let options = &self.options;
        let epoch = Instant::now();
        let placeholders =
            |command: &str| expand(command, broker.name(), crate::queue::nats::CONSUMER);
        let mut words = placeholders(&options.replica_command).into_iter();
        let program = words.next().unwrap_or_default();
        let mut env = broker.replica_env(
            options.prefetch,
            options.database_connections,
            &database.url(),
        );
        env.extend([
            ("DATABASE_URL", database.url()),
            ("PREFETCH", options.prefetch.to_string()),
            (
                "DATABASE_MAX_CONNECTIONS",
                options.database_connections.to_string(),
            ),
        ]);
        if let Some(setup) = &options.target.setup_command {
            run_setup(&placeholders(setup), &env, &work_dir).await?;
        }
        let mut consumers = Consumers::new(
            program,
            words.collect(),
            env,
            work_dir,
            options.grace_period,
            epoch,
            tracker.clone(),
            abort.clone(),
        );
        // One at a time: replicas declaring the same new quorum queue at once can make
        // RabbitMQ answer INTERNAL_ERROR (and the replica exit 1).
        for _ in 0..options.replicas {
            consumers.start()?;
            wait_consuming(broker, &mut consumers, options.ready_timeout).await?;
        }

        let seed = options.seed.unwrap_or_else(|| {
            u64::try_from(epoch.elapsed().as_nanos()).unwrap_or_default()
                ^ u64::from(std::process::id()).rotate_left(32)
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or_default())
        });
        let publisher = broker.publisher().await?;
        let publishing_for = Duration::from_secs_f64(
            // precision: u64 → f64 is exact up to 2^53 messages
            #[allow(clippy::cast_precision_loss)]
            {
                options.messages as f64 / f64::from(options.rate)
            },
        );
        let start = Instant::now();
        let (published, events) = tokio::join!(
            publish::publish(
                &publisher,
                &options.target.body,
                options.messages,
                options.rate,
                tracker,
            ),
            self.disturb(broker, &mut consumers, start, publishing_for, seed),
        );
        publisher.close().await;
        let events = events?;
        let published_at = Instant::now();
        let confirmed = published
            .settled
            .iter()
            .filter(|s| **s == Settled::Confirmed)
            .count();
        let drained = wait_drained(broker, database, confirmed, options).await?;
        let drain = published_at.elapsed();

        for index in consumers.live() {
            consumers.stop(index, Stop::End);
        }
        for index in 0..consumers.records().len() {
            consumers
                .wait_exit(index, options.grace_period + Duration::from_secs(5))
                .await;
        }
        let dead_lettered = broker.dead_lettered().await?;
        let effects = database.effects().await?;
        let mut report = verify(&published, &effects);
        report.broker = broker.kind().to_owned();
        report.database.clone_from(&database.name);
        report.scenario = options.scenario;
        report.replicas = options.replicas;
        report.prefetch = options.prefetch;
        report.rate = options.rate;
        report.seed = seed;
        report.redelivery_bound = match options.scenario {
            Scenario::RollingRestarts(_) => 0,
            Scenario::Sigkills(_) => {
                events.iter().filter(|e| e.stop == Stop::Sigkill).count() as u64
                    * u64::from(options.prefetch)
            }
        };
        report.dead_lettered = dead_lettered;
        report.drained = drained;
        report.drain = drain;
        report.events = events;
        report.consumers = consumers.records();
        report.expectation = options.expectation;
        report.duration = epoch.elapsed();
        report.judge();
        Ok(report)
    }

    /// Restarts or kills replicas at their moments during the publishing.
    async fn disturb(
        &self,
        broker: &Client,
        consumers: &mut Consumers,
        start: Instant,
        publishing_for: Duration,
        seed: u64,
    ) -> Result<Vec<QueueEvent>, Error> {
        let options = &self.options;
        let mut rng = SmallRng::seed_from_u64(seed);
        let (count, stop) = match options.scenario {
            Scenario::RollingRestarts(n) => (n, Stop::Sigterm),
            Scenario::Sigkills(n) => (n, Stop::Sigkill),
        };
        let moments: Vec<Duration> = match options.scenario {
            Scenario::RollingRestarts(n) => (1..=n)
                .map(|i| publishing_for.mul_f64(i as f64 / (n + 1) as f64))
                .collect(),
            Scenario::Sigkills(n) => {
                let mut moments: Vec<Duration> = (0..n)
                    .map(|_| publishing_for.mul_f64(rng.random_range(0.1..0.9)))
                    .collect();
                moments.sort();
                moments
            }
        };
        let mut events = Vec::with_capacity(count);
        let settle_exit = options.grace_period + Duration::from_secs(5);
        for moment in moments {
            tokio::time::sleep_until(start + moment).await;
            let live = consumers.live();
            let victim = match stop {
                Stop::Sigkill => live.get(rng.random_range(0..live.len().max(1))).copied(),
                Stop::Sigterm | Stop::End => live.first().copied(),
            };
            let Some(victim) = victim else { break };
            let event = match stop {
                Stop::Sigkill => {
                    let at = consumers.epoch.elapsed();
                    let signalled = Instant::now();
                    consumers.stop(victim, Stop::Sigkill);
                    let exit = consumers.wait_exit(victim, settle_exit).await;
                    let exited_after = exit.map(|_| signalled.elapsed());
                    // The broker drops the dead consumer before the replacement counts.
                    wait_consuming(broker, consumers, options.ready_timeout).await?;
                    let replacement = consumers.start()?;
                    let started = Instant::now();
                    wait_consuming(broker, consumers, options.ready_timeout).await?;
                    QueueEvent {
                        stop,
                        replica: consumers.name(victim).to_owned(),
                        replacement: consumers.name(replacement).to_owned(),
                        at,
                        exited_after,
                        replacement_ready_after: Some(started.elapsed()),
                        exit,
                    }
                }
                Stop::Sigterm | Stop::End => {
                    let replacement = consumers.start()?;
                    let started = Instant::now();
                    wait_consuming(broker, consumers, options.ready_timeout).await?;
                    let replacement_ready_after = started.elapsed();
                    let at = consumers.epoch.elapsed();
                    let signalled = Instant::now();
                    consumers.stop(victim, Stop::Sigterm);
                    let exit = consumers.wait_exit(victim, settle_exit).await;
                    QueueEvent {
                        stop,
                        replica: consumers.name(victim).to_owned(),
                        replacement: consumers.name(replacement).to_owned(),
                        at,
                        exited_after: exit.map(|_| signalled.elapsed()),
                        replacement_ready_after: Some(replacement_ready_after),
                        exit,
                    }
                }
            };
            tracing::info!(?event, "done");
            events.push(event);
        }
        Ok(events)
    }
}

/// `command` split on spaces, with `{queue}` and `{consumer}` replaced in every word.
fn expand(command: &str, queue: &str, consumer: &str) -> Vec<String> {
    command
        .split_whitespace()
        .map(|word| {
            word.replace("{queue}", queue)
                .replace("{consumer}", consumer)
        })
        .collect()
}

/// How long the setup command may run.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the setup command `words` with the replicas' environment `env`, its output in
/// `<work_dir>/setup.log`; it must exit 0.
async fn run_setup(
    words: &[String],
    env: &[(&'static str, String)],
    work_dir: &std::path::Path,
) -> Result<(), Error> {
    let command = words.join(" ");
    let log_path = work_dir.join("setup.log");
    let log = std::fs::File::create(&log_path).map_err(|e| Error::file(&log_path, e))?;
    let log_err = log.try_clone().map_err(|e| Error::file(&log_path, e))?;
    let spawn_error = |source| {
        Error::new(ErrorKind::Spawn {
            replica: "setup".to_owned(),
            command: command.clone(),
            source,
        })
    };
    let (program, args) = words.split_first().ok_or_else(|| {
        spawn_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty setup command",
        ))
    })?;
    tracing::info!(%command, log = %log_path.display(), "setup");
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    let status = match tokio::time::timeout(SETUP_TIMEOUT, child.wait()).await {
        Ok(status) => status.map_err(spawn_error)?,
        Err(_) => {
            let _ = child.kill().await;
            return Err(Error::new(ErrorKind::ExitedEarly {
                replica: "setup".to_owned(),
                exit: format!(
                    "still running after {SETUP_TIMEOUT:?}, killed; log: {}",
                    log_path.display()
                ),
            }));
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::ExitedEarly {
            replica: "setup".to_owned(),
            exit: format!("{status}; log: {}", log_path.display()),
        }))
    }
}

/// A name no other drill on this machine uses at the same time: `qdrill-<pid>-<n>-<time>`.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() % 1_000_000);
    format!(
        "qdrill-{}-{}-{time}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits until the broker counts exactly the live replicas as consumers (JetStream, which
/// cannot say: until the durable consumer exists and the newest replica has run for
/// [`STARTUP`]); fails if one of them exited by itself or the time is up.
async fn wait_consuming(
    broker: &Client,
    consumers: &mut Consumers,
    within: Duration,
) -> Result<(), Error> {
    let deadline = Instant::now() + within;
    loop {
        if let Some((index, exit)) = consumers.crashed() {
            return Err(Error::new(ErrorKind::ExitedEarly {
                replica: consumers.name(index).to_owned(),
                exit: exit.to_string(),
            }));
        }
        let live = consumers.live();
        let consuming = match broker.inspect().await? {
            None => false,
            Some(Depth {
                consumers: Some(counted),
                ..
            }) => usize::try_from(counted).is_ok_and(|counted| counted == live.len()),
            Some(Depth {
                consumers: None, ..
            }) => consumers
                .newest_started()
                .is_none_or(|started| consumers.epoch.elapsed() >= started + STARTUP),
        };
        if consuming {
            consumers.mark_consuming();
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::new(ErrorKind::NotReady {
                replica: live
                    .last()
                    .map_or_else(|| "?".to_owned(), |i| consumers.name(*i).to_owned()),
                waited: within,
            }));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the queue has no ready message and the effects stopped growing for
/// `options.settle` (or cover every confirmed message); false at the drain timeout.
async fn wait_drained(
    broker: &Client,
    database: &Database,
    confirmed: usize,
    options: &QueueOptions,
) -> Result<bool, Error> {
    let deadline = Instant::now() + options.drain_timeout;
    let mut connection = database.watch().await?;
    let mut last = -1;
    let mut since = Instant::now();
    loop {
        let ready = broker.inspect().await?.map_or(0, |depth| depth.waiting);
        let effects = database.count(&mut connection).await?;
        if effects != last {
            last = effects;
            since = Instant::now();
        }
        let complete = usize::try_from(effects).is_ok_and(|effects| effects >= confirmed);
        tracing::debug!(waiting = ready, effects, complete, "draining");
        if ready == 0 && (complete || since.elapsed() >= options.settle) {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            tracing::warn!(ready, effects, "the queue was not drained in time");
            return Ok(false);
        }
        tokio::time::sleep(POLL * 2).await;
    }
}

/// Joins what was published with the effects table.
fn verify(published: &Published, effects: &[Effect]) -> QueueReport {
    let sent = published.settled.len() as u64;
    let mut handled: HashMap<u64, i32> = HashMap::with_capacity(effects.len());
    let mut unknown_effects = 0;
    for effect in effects {
        match message_number(&effect.message_id) {
            Some(n) if n < sent => {
                handled.insert(n, effect.handled);
            }
            _ => unknown_effects += 1,
        }
    }
    let (mut confirmed, mut unconfirmed, mut unconfirmed_with_effect) = (0, 0, 0);
    let mut lost = Vec::new();
    for (n, settled) in (0_u64..).zip(&published.settled) {
        let has_effect = handled.contains_key(&n);
        if *settled == Settled::Confirmed {
            confirmed += 1;
            if !has_effect {
                lost.push(n);
            }
        } else {
            unconfirmed += 1;
            unconfirmed_with_effect += u64::from(has_effect);
        }
    }
    let mut duplicates: Vec<u64> = handled
        .iter()
        .filter(|(_, handled)| **handled > 1)
        .map(|(n, _)| *n)
        .collect();
    duplicates.sort_unstable();
    let extra_handlings = handled
        .values()
        .map(|handled| u64::try_from(handled.saturating_sub(1)).unwrap_or_default())
        .sum();
    let seconds = published.duration.as_secs_f64();
    QueueReport {
        broker: String::new(),
        broker_url: String::new(),
        queue: String::new(),
        database: String::new(),
        scenario: Scenario::RollingRestarts(0),
        replicas: 0,
        prefetch: 0,
        rate: 0,
        seed: 0,
        sent,
        confirmed,
        unconfirmed,
        unconfirmed_with_effect,
        publishing: published.duration,
        #[allow(clippy::cast_precision_loss)]
        confirmed_per_second: if seconds > 0.0 {
            confirmed as f64 / seconds
        } else {
            0.0
        },
        publish_error: published.error.clone(),
        effects: effects.len() as u64,
        lost: lost.len() as u64,
        lost_ids: lost.iter().take(LISTED).map(|n| message_id(*n)).collect(),
        handled_twice: duplicates.len() as u64,
        extra_handlings,
        duplicate_ids: duplicates
            .iter()
            .take(LISTED)
            .map(|n| message_id(*n))
            .collect(),
        redelivery_bound: 0,
        unknown_effects,
        dead_lettered: 0,
        drained: false,
        drain: Duration::ZERO,
        events: Vec::new(),
        consumers: Vec::new(),
        expectation: crate::queue::options::QueueExpectation::ExactlyOnce,
        problems: Vec::new(),
        duration: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn the_queue_and_the_consumer_are_put_in_the_command_line() {
        assert_eq!(
            expand(
                "env FDC_STREAM={queue} FDC_CONSUMER={consumer}  fab fdc",
                "qdrill-1",
                "effects"
            ),
            [
                "env",
                "FDC_STREAM=qdrill-1",
                "FDC_CONSUMER=effects",
                "fab",
                "fdc"
            ]
        );
        assert_eq!(expand("consumer --x", "q", "c"), ["consumer", "--x"]);
    }
}
