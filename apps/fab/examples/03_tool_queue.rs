//! A scanner's job queue: reticle check-ins, lots in arrival order, and a hot lot that jumps
//! the queue — taking its reticle's check-in with it, never pre-empting the running job.
//!
//! ```text
//! cargo run -p fab --example 03_tool_queue
//! ```
//!
//! The same queue is served over HTTP by `fab apc` / `fab all` and stored per tool:
//! `POST /v1/tools/{tool}/jobs` to submit, `POST /v1/tools/{tool}/jobs/next` when the tool is
//! ready, `POST /v1/tools/{tool}/jobs/{id}/complete` when done (see `apps/fab/README.md`).

#![allow(clippy::print_stdout, reason = "printing the order is the point")]

use std::error::Error;

use fab::{JobQueue, LotPriority, Name, ToolJob};

fn expose(lot: &str, reticle: &str, priority: LotPriority) -> Result<ToolJob, Box<dyn Error>> {
    Ok(ToolJob::Expose {
        run: Name::parse("run", format!("R-{lot}"))?,
        lot: Name::parse("lot", lot)?,
        reticle: Name::parse("reticle", reticle)?,
        sr: 40.0,
        priority,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut q = JobQueue::new();
    q.submit(ToolJob::CheckIn {
        reticle: Name::parse("reticle", "RT-A")?,
    })?;
    q.submit(expose("LOT-1", "RT-A", LotPriority::Normal)?)?;
    q.submit(expose("LOT-2", "RT-A", LotPriority::Normal)?)?;
    q.submit(ToolJob::CheckIn {
        reticle: Name::parse("reticle", "RT-B")?,
    })?;
    q.submit(expose("LOT-3", "RT-B", LotPriority::Normal)?)?;
    // The first job starts; then a hot lot for RT-B arrives.
    let running = q.start_next().map(|j| j.id);
    q.submit(expose("HOT-1", "RT-B", LotPriority::Hot)?)?;
    // A lot for a reticle that will never be in is refused up front.
    if let Err(e) = q.submit(expose("LOT-9", "RT-Z", LotPriority::Normal)?) {
        println!("refused: {e}");
    }
    println!("running: {running:?}");
    while let Some(id) = q.running().map(|j| j.id) {
        if let Ok(done) = q.complete(id) {
            println!("done:    {} {:?}", done.id, done.job);
        }
        q.start_next();
    }
    Ok(())
}
