//! A pool of background workers for [orderly] services.
//!
//! [`WorkerPool`] is a component: add it to a system and its dependents receive a
//! [`Workers`] handle to submit named jobs. At most `concurrency` jobs run at once, each in a
//! tracked task; at most `queue_capacity` wait. On stop the pool refuses new jobs at once, lets
//! the running ones finish (and, by default, the queued ones, see [`Pending`]) within its drain
//! timeout, and names the jobs that overran it in the stop's error, so the system's
//! [`Report`](orderly::Report) names them. A job that fails or panics is logged with its name
//! and counted; it never stops the pool.
//!
//! ```
//! use std::time::Duration;
//! use orderly::{BoxError, System};
//! use orderly_workers::{Pending, WorkerPool};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut system = System::builder("thumbnails");
//! let pool = WorkerPool::builder()
//!     .concurrency(2)
//!     .queue_capacity(16)
//!     .pending(Pending::Finish)
//!     .drain_timeout(Duration::from_secs(10))
//!     .build()?;
//! let workers = system.add("workers", (), pool);
//!
//! let running = system.build()?.start().await?;
//! let workers = running.resource(workers).ok_or("the pool did not start")?;
//! let (done, finished) = tokio::sync::oneshot::channel();
//! workers
//!     .submit("resize cat.png", async move {
//!         // A long job would select on `stopping` and end early.
//!         let _ = done.send(());
//!         Ok::<(), BoxError>(())
//!     })
//!     .await?;
//! finished.await?;
//!
//! let report = running.stop().await;
//! assert!(report.is_clean());
//! assert!(workers.drained().await.is_complete());
//! # Ok(())
//! # }
//! ```
//!
//! # Policies
//! - [`WhenFull`]: a full queue makes [`Workers::submit`] wait (default) or fail at once;
//!   [`Workers::try_submit`] never waits.
//! - [`Pending`]: at stop, accepted jobs that have not started run (default) or are dropped and
//!   named in the [`DrainReport`].
//!
//! # Metrics
//! Through the `metrics` facade, labelled with the pool's name: jobs running and queued,
//! completed, failed, abandoned and rejected, and their durations (see [`WorkerPool`]).

mod dispatch;
mod error;
mod metrics;
mod policy;
mod pool;
mod report;
mod workers;

pub use error::{BuildError, PoolError, PoolErrorKind, SubmitError, SubmitErrorKind};
pub use policy::{Pending, WhenFull};
pub use pool::{WorkerPool, WorkerPoolBuilder};
pub use report::DrainReport;
pub use workers::Workers;
