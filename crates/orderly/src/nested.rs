//! A system nested in another as one component (corpjs `group()`).
//!
//! The child's supervisor runs as a task of the nested component: the parent's stop of that
//! component stops the child (without a second shutdown delay), a child that stops by itself
//! stops the parent (cleanly or with its failure), and the child's readiness becomes the
//! component's health. Only the outermost system owns the process's signals.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

use crate::component::Component;
use crate::context::Context;
use crate::deps::Resources;
use crate::error::BoxError;
use crate::health::{Health, Phase};
use crate::report::Report;
use crate::supervisor::{Origin, Request};
use crate::system::{StartError, System, report_of};

/// The nested component's hold on its running child.
#[derive(Debug)]
pub(crate) struct Child {
    report: oneshot::Receiver<Report>,
}

/// The child stopped with a failure.
#[derive(Debug, thiserror::Error)]
#[error("nested {}", report_line(.0))]
pub struct NestedError(Box<Report>);

fn report_line(report: &Report) -> String {
    format!("system '{}' stopped: {}", report.system, report.reason)
}

impl NestedError {
    /// The child's report.
    pub fn report(&self) -> &Report {
        &self.0
    }
}

impl Component for System {
    type Deps = ();
    type Resource = Resources;

    async fn start(&mut self, (): (), ctx: Context) -> Result<Resources, BoxError> {
        // Only this component starts the child, one start or stop at a time: a child still
        // active is the previous run, abandoned by a stop timeout and being torn down.
        let launched = loop {
            let ended = self.inner.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            // Only the outermost system speaks to the service manager.
            if let Some(launched) = self.launch(None) {
                break launched;
            }
            ended.await;
        };
        let requests = launched.requests.clone();
        // Abort the child's supervisor (and so its components' tasks) if this start is cancelled.
        let supervisor = AbortOnDropHandle::new(launched.supervisor);
        let mut resources = launched.resources;
        let inner = self.inner.clone();
        let wait = resources.wait_for(Option::is_some).await.is_ok();
        if !wait {
            let report = report_of(&inner, supervisor.await);
            return Err(Box::new(StartError::from_report(report)));
        }
        let current = resources.borrow().clone().unwrap_or_else(|| Resources {
            system: inner.id,
            table: Arc::from(Vec::new()),
        });

        let (tx, rx) = oneshot::channel();
        self.child = Some(Child { report: rx });
        let watcher = ctx.clone();
        let mut status = inner.status.subscribe();
        ctx.spawn("nested system", async move {
            let mut supervisor = supervisor;
            let report = loop {
                tokio::select! {
                    joined = &mut supervisor => break report_of(&inner, joined),
                    () = watcher.stopping() => {
                        let _ = requests.send(Request::Shutdown { from: Origin::Parent });
                        let report = report_of(&inner, (&mut supervisor).await);
                        let _ = tx.send(report);
                        return Ok(());
                    }
                    Ok(()) = status.changed() => {
                        let snapshot = status.borrow_and_update().clone();
                        if snapshot.phase == Phase::Running {
                            let probe = snapshot.readiness();
                            watcher.set_health(if probe.ok { Health::Healthy } else { Health::unhealthy(probe.reason) });
                        }
                    }
                }
            };
            // The child stopped by itself: the parent follows.
            if report.is_clean() {
                watcher.shutdown();
                Ok(())
            } else {
                Err(NestedError(Box::new(report)))
            }
        });
        Ok(current)
    }

    async fn stop(&mut self) -> Result<(), BoxError> {
        let Some(child) = self.child.take() else {
            return Ok(());
        };
        // The nested task sends the report once the child stopped; it ends when the child ended
        // on its own (already reported as the component's failure).
        match child.report.await {
            Ok(report) if !report.is_clean() => Err(Box::new(NestedError(Box::new(report)))),
            _ => Ok(()),
        }
    }
}
