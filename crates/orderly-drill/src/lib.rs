//! `orderly-drill`: a rolling update of a service, simulated on one machine, counting every
//! request; and a message-queue drill ([`QueueDrill`], below) counting every message's effect.
//!
//! The drill plays the parts of a Kubernetes cluster around N replica processes of a service:
//!
//! - a **load balancer** (in process, on loopback) with an endpoint table: ready endpoints are
//!   routed to round-robin; a deleted replica's endpoint stays routable for the *propagation
//!   delay* (kube-proxy, DNS and ingresses catch up late); upstream connections are pooled and
//!   kept alive like a real proxy's (HTTP/1.1 or HTTP/2); it **never retries**, and an upstream
//!   failure comes back as a 502 whose [`DRILL_ERROR`] header names its [`FailureKind`];
//! - an **orchestrator** (Deployment controller and kubelet): it starts a new replica, waits for
//!   its readiness with Kubernetes probe semantics ([`Probe`]), adds it to the endpoints, then
//!   deletes an old replica — its endpoint starts leaving *and* it gets SIGTERM at the same
//!   moment — and sends SIGKILL at the end of the grace period; `maxSurge` / `maxUnavailable`
//!   as in a Deployment;
//! - a **load generator** with a ledger: every request carries a unique id in [`DRILL_ID`];
//!   pooled keep-alive or fresh connections, HTTP/1.1 or HTTP/2; each outcome is recorded
//!   ([`Outcome`]: ok, status, refused, reset, EOF mid-body, timeout), and joined at the end
//!   with the ids the replicas say they handled, so a request the server handled but the client
//!   never heard about is seen.
//!
//! The [`Report`] (JSON and a human summary) gives requests sent, ok and failed by kind,
//! failures per 100 ms after each SIGTERM, latency p50/p99/max in steady state and during the
//! rollouts, each rollout's duration, every replica's exit and whether any was SIGKILLed.
//!
//! ```no_run
//! use orderly_drill::{Drill, Options};
//!
//! # async fn drill() -> Result<(), orderly_drill::Error> {
//! let mut options = Options::new("target/debug/examples/01_replica");
//! options.rollouts = 2;
//! let report = Drill::new(options)?.run().await?;
//! println!("{report}");
//! assert!(report.passed(), "lost {} requests", report.failed);
//! # Ok(())
//! # }
//! ```
//!
//! The binary does the same from the command line and exits 0 when the expectation was met,
//! 1 when it was not, 2 on invalid options, 3 when the drill could not run:
//!
//! ```text
//! cargo build -p orderly-drill --examples
//! target/debug/orderly-drill --replica-cmd target/debug/examples/01_replica \
//!     --replicas 3 --rollouts 1 --propagation-delay 500ms --shutdown-delay 1s \
//!     --clients 8 --report drill.json
//! # negative control: the drill must see failures
//! target/debug/orderly-drill --replica-cmd target/debug/examples/02_no_drain_replica \
//!     --expect-failures
//! ```
//!
//! `--records FILE` writes every request (id, when it was sent, latency, outcome, replica) as
//! JSON lines, for a closer look than the report's.
//!
//! # The replica contract
//!
//! Any service binary can be drilled if it follows the orderly service contract. The drill runs
//! `--replica-cmd` (split on spaces, no shell) once per replica, with the drill's own
//! environment (so `DATABASE_URL` and the like reach it) plus:
//!
//! | Variable | Meaning |
//! |---|---|
//! | `PORT` | the public port to listen on, on 127.0.0.1 |
//! | `ADMIN_PORT` | the admin port; `GET /readyz` answers 200–399 when ready |
//! | `SHUTDOWN_DELAY` | keep serving this long after SIGTERM (`1000ms`) |
//! | `SHUTDOWN_TIMEOUT` | the deadline for stopping after the delay (`5000ms`) |
//! | `DRILL_LEDGER` | a file to append the id of every request it handled to, one a line |
//! | `DRILL_REPLICA` | its name in the drill (`r1-0`), for its logs |
//!
//! The id is the [`DRILL_ID`] request header (`x-drill-id`, a decimal number). The ledger
//! must be complete when the process has exited (append and flush before answering, or buffer
//! and flush at stop); a line cut by SIGKILL is ignored. Its stdout and stderr go to
//! `<work dir>/<name>.log`.
//!
//! # The request
//!
//! Each request is made from a template ([`Options::method`], [`Options::path`],
//! [`Options::headers`], [`Options::body`]; `--method`, `--path`, `--header`, `--body` or
//! `--body-file`, default `GET /work?ms=5`): `{id}` in the path, a header value or the body
//! becomes the request's id, so `Idempotency-Key: drill-{id}` is unique per request.
//! [`Options::expect_status`] (`--expect-status`, default `2xx`) says which statuses are a
//! success; any other is a failure of kind `status` ([`Outcome::Status`]).
//!
//! # Measured
//!
//! `drill.sh long` (release, on a shared 2-core machine): 3 replicas of `01_replica`, 10
//! rolling restarts under 1000 requests/s, with pooled HTTP/1.1, fresh HTTP/1.1 and pooled
//! HTTP/2 clients, twice: 0 failed of 142,523 requests, no id handled twice, no SIGKILL; the
//! median latency (7 ms for 5 ms of work) the same during rollouts as in steady state. The
//! queue drills: 0 lost of 60,000 RabbitMQ and 30,000 NATS messages through 10 rolling restarts
//! (0 handled twice) and through 10 SIGKILLs (10 and 2 handled twice, bounds 320 and 640);
//! their negative controls lost 366 and 168. Details in the crate's `README.md`.
//!
//! # Negative controls
//!
//! A zero proves nothing unless the drill can see a loss. Two controls must fail (run them with
//! `--expect-failures`): a replica that exits at once on SIGTERM
//! (`examples/02_no_drain_replica.rs`), and a propagation delay longer than the shutdown delay
//! (the replica stops listening while traffic still arrives).
//!
//! # The message-queue drill
//!
//! [`QueueDrill`] (`orderly-drill queue`) runs N consumer replicas of a service against
//! RabbitMQ or NATS JetStream while it publishes numbered messages at a steady rate with
//! publisher confirms (a message counts as published once the broker confirmed it; the others
//! are reported apart), and meanwhile either restarts the replicas one by one (start a
//! replacement, wait until the broker counts it, SIGTERM the oldest, which must exit 0) or
//! SIGKILLs random replicas at random (seeded) moments and replaces them. Then it stops
//! publishing, waits until the replicas drained the queue, stops them with SIGTERM and reads the
//! effects table of its own PostgreSQL database: every confirmed message must have exactly one
//! row (missing: *lost*, listed by id); a row handled more than once is a redelivery handled
//! twice, never allowed after graceful restarts and at most kills × prefetch after SIGKILLs.
//!
//! ```no_run
//! use orderly_drill::{QueueDrill, QueueOptions, Scenario};
//!
//! # async fn drill() -> Result<(), orderly_drill::Error> {
//! let mut options = QueueOptions::new("target/debug/examples/amqp_zero_loss_consumer");
//! options.scenario = Scenario::Sigkills(3);
//! let report = QueueDrill::new(options)?.run().await?;
//! println!("{report}");
//! assert_eq!(report.lost, 0, "lost: {:?}", report.lost_ids);
//! assert!(report.extra_handlings <= report.redelivery_bound);
//! # Ok(())
//! # }
//! ```
//!
//! ## The consumer replica contract
//!
//! `--replica-cmd` (split on spaces, no shell; `env VAR=value program` to add variables) runs
//! once per replica with the drill's environment plus:
//!
//! | Variable | Meaning |
//! |---|---|
//! | `DATABASE_URL` | the drill's own PostgreSQL database, with the table `effects(message_id text primary key, value bigint not null, handled int not null, attempt int not null default 1)` |
//! | `DATABASE_MAX_CONNECTIONS` | the replica's pool size (`--database-connections`, 4) |
//! | `PREFETCH` | unacknowledged messages at most (`--prefetch`) |
//! | `AMQP_URL`, `QUEUE` | RabbitMQ: the broker with its vhost, and the quorum queue to declare and consume |
//! | `NATS_URL`, `STREAM`, `CONSUMER` | NATS: the server, the stream (the drill creates it, subjects `<stream>.>`, messages on `<stream>.numbers`) and the durable pull consumer the replicas share |
//! | `ZERO_LOSS_…` | the same for NATS under the names orderly-nats' `nats_zero_loss_consumer` example reads |
//! | `DRILL_REPLICA` | its name in the drill (`c3`), for its logs |
//!
//! Each message has the id `m-<n>` (the AMQP `message-id`, the `Nats-Msg-Id` header) and the
//! body `{"n": <n>}`. The replica's effect is one transaction of `INSERT INTO effects
//! (message_id, value, handled) VALUES ($id, …, 1) ON CONFLICT (message_id) DO UPDATE SET
//! handled = effects.handled + 1`, acknowledged after the commit, so a second handling is
//! visible. SIGTERM must drain and exit 0. The replicas are the zero-loss consumer examples of
//! orderly-amqp (`amqp_zero_loss_consumer`) and orderly-nats (`nats_zero_loss_consumer`), and
//! `fab fdc`, an application with its own message format and tables: [`Target`] (`--body`,
//! `--effects-query`, `--setup-cmd`) says what it consumes, where its effects are, and how its
//! database is prepared; `{queue}` and `{consumer}` in the command line become the queue or
//! stream and the durable consumer. The examples' negative control, acknowledging before the
//! effect is durable (`ACK_BEFORE_EFFECT=1`, `ZERO_LOSS_ACKNOWLEDGE=before-effect`), must make
//! a SIGKILL drill report lost messages (`--expect-loss`).

mod balancer;
mod cluster;
mod drill;
mod endpoints;
mod error;
mod executor;
mod load;
mod outcome;
mod probe;
mod queue;
mod replica;
mod report;
mod template;

pub use drill::{Drill, Options};
pub use error::{Error, ErrorKind};
pub use load::{Connections, HttpVersion, Load};
pub use outcome::{DRILL_ERROR, DRILL_ID, DRILL_REPLICA, FailureKind, Outcome};
pub use probe::Probe;
pub use queue::{
    Broker, Cleanup, ConsumerRecord, DEFAULT_BODY, DEFAULT_EFFECTS_QUERY, QueueDrill, QueueEvent,
    QueueExpectation, QueueOptions, QueueReport, Scenario, Stop, Target,
};
pub use replica::{
    ADMIN_PORT, DRILL_LEDGER, DRILL_REPLICA_NAME, Exit, PORT, ReplicaRecord, SHUTDOWN_DELAY,
    SHUTDOWN_TIMEOUT,
};
pub use report::{BUCKET, Expectation, FailuresAfterSigterm, Latency, Report, Rollout};
pub use template::{ExpectedStatus, HeaderTemplate};
