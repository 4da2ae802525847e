//! Strategy: the feedback term F(n) per product type and the offset F2(n) per technology.
//!
//! `SR = a + b·F(n) + c·F2(n)` (see [`generator`](super::generator)): the product strategy turns
//! the thread's controller state into F(n), the technology strategy gives F2(n). Adding a product
//! type or a node adds a strategy and changes nothing else.
//!
//! F(n) is the controller's correction from the nominal recipe, `u* − a` with
//! `u* = (T − a_n − d_n)/b` (mJ/cm²). F2(n) is the node's deliberate dose offset: with feedback
//! on, the process settles at `T + b_model·c·F2` — the node's print bias — rather than at `T`.

use std::fmt;

use crate::domain::apc::context::{ProductKind, Technology};
use crate::domain::apc::controller::DriftTerm;
use crate::domain::apc::thread::{ModeRecord, Thread};

/// Computes F(n) for one product type.
pub trait ProductStrategy: fmt::Debug + Send + Sync {
    /// The product type it serves.
    fn kind(&self) -> ProductKind;
    /// F(n) for the next run of `thread` (mJ/cm²).
    fn feedback(&self, thread: &Thread) -> f64;
}

/// Gives F2(n) for one technology node.
pub trait TechnologyStrategy: fmt::Debug + Send + Sync {
    /// The node it serves.
    fn technology(&self) -> Technology;
    /// F2(n) for the next run of `thread` (mJ/cm²).
    fn offset(&self, thread: &Thread) -> f64;
}

fn correction(thread: &Thread, drift: DriftTerm) -> f64 {
    let cfg = thread.config();
    thread.controller().recommended_input(cfg, drift) - cfg.params().nominal
}

/// Mobile SoCs: high volume and the tightest CD, so the full forecast (offset and drift).
#[derive(Clone, Copy, Debug, Default)]
pub struct MobileFeedback;

impl ProductStrategy for MobileFeedback {
    fn kind(&self) -> ProductKind {
        ProductKind::Mobile
    }

    fn feedback(&self, thread: &Thread) -> f64 {
        correction(thread, DriftTerm::Include)
    }
}

/// PC processors: the full forecast, but a change smaller than the configuration's deadband
/// keeps the previous F(n), so the recipe does not churn on noise.
#[derive(Clone, Copy, Debug, Default)]
pub struct PcFeedback;

impl ProductStrategy for PcFeedback {
    fn kind(&self) -> ProductKind {
        ProductKind::Pc
    }

    fn feedback(&self, thread: &Thread) -> f64 {
        let f = correction(thread, DriftTerm::Include);
        match thread.last_run().map(|r| &r.mode) {
            Some(ModeRecord::Formula { feedback, .. })
                if (f - feedback).abs() < thread.config().params().deadband =>
            {
                *feedback
            }
            _ => f,
        }
    }
}

/// Notebook chips: low volume and sparse metrology make the drift estimate unreliable, so the
/// offset only.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotebookFeedback;

impl ProductStrategy for NotebookFeedback {
    fn kind(&self) -> ProductKind {
        ProductKind::Notebook
    }

    fn feedback(&self, thread: &Thread) -> f64 {
        correction(thread, DriftTerm::Ignore)
    }
}

/// A node with a fixed dose offset F2 (mJ/cm²).
#[derive(Clone, Copy, Debug)]
pub struct NodeOffset {
    technology: Technology,
    offset: f64,
}

impl TechnologyStrategy for NodeOffset {
    fn technology(&self) -> Technology {
        self.technology
    }

    fn offset(&self, _thread: &Thread) -> f64 {
        self.offset
    }
}

/// N7: the reference node, no offset.
pub const N7_OFFSET: NodeOffset = NodeOffset {
    technology: Technology::N7,
    offset: 0.0,
};
/// N5: +0.3 mJ/cm² (smaller features print under-sized at N7's dose).
pub const N5_OFFSET: NodeOffset = NodeOffset {
    technology: Technology::N5,
    offset: 0.3,
};
/// N3: +0.6 mJ/cm².
pub const N3_OFFSET: NodeOffset = NodeOffset {
    technology: Technology::N3,
    offset: 0.6,
};

/// The strategy for a product type.
#[must_use]
pub fn product_strategy(kind: ProductKind) -> &'static dyn ProductStrategy {
    match kind {
        ProductKind::Mobile => &MobileFeedback,
        ProductKind::Pc => &PcFeedback,
        ProductKind::Notebook => &NotebookFeedback,
    }
}

/// The strategy for a technology node.
#[must_use]
pub fn technology_strategy(technology: Technology) -> &'static dyn TechnologyStrategy {
    match technology {
        Technology::N7 => &N7_OFFSET,
        Technology::N5 => &N5_OFFSET,
        Technology::N3 => &N3_OFFSET,
    }
}
