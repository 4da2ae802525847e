//! The context of an exposure: which controller thread it belongs to, and the lot's own facts.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::name::Name;

/// The product type; it selects the product strategy for the feedback term F(n).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    /// Mobile-phone SoC: high volume, tightest CD; uses the full forecast (offset and drift).
    Mobile,
    /// PC processor: full forecast behind a deadband to limit recipe churn.
    Pc,
    /// Notebook chip: low volume, sparse metrology; offset only (the drift estimate is unreliable).
    Notebook,
}

/// The technology node; it selects the technology strategy for the offset F2(n).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Technology {
    /// 7 nm class.
    N7,
    /// 5 nm class.
    N5,
    /// 3 nm class.
    N3,
}

impl fmt::Display for Technology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::N7 => "N7",
            Self::N5 => "N5",
            Self::N3 => "N3",
        })
    }
}

/// The key of a controller thread: runs with the same key share one controller state.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct ThreadKey {
    /// The fab the tool is in.
    pub fab: Name,
    /// The exposure tool.
    pub tool: Name,
    /// The product (part number).
    pub product: Name,
    /// The technology node.
    pub technology: Technology,
    /// The mask layer (e.g. `M1`, `POLY`).
    pub layer: Name,
    /// The reticle used for this layer.
    pub reticle: Name,
}

impl fmt::Display for ThreadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}/{}/{}",
            self.fab, self.tool, self.product, self.technology, self.layer, self.reticle
        )
    }
}

/// How urgent a lot is.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LotPriority {
    /// Runs in arrival order.
    #[default]
    Normal,
    /// A hot lot: jumps the tool's queue (never pre-empting the running job).
    Hot,
}

/// What the tool sends with a request for a sub recipe: the lot and its thread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LotContext {
    /// The lot to be exposed.
    pub lot: Name,
    /// The controller thread the exposure belongs to.
    pub thread: ThreadKey,
    /// The product's type (selects F(n)).
    pub product_kind: ProductKind,
    /// The lot's priority.
    #[serde(default)]
    pub priority: LotPriority,
}
