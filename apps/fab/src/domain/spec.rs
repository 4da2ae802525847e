//! Central specs: versioned sets of sub-recipe and FDC limits, their lifecycle, their delta sync
//! to the fabs, and each fab's acknowledgement.
//!
//! - A set is created as a **draft** with the next version number (versions never repeat and
//!   never go back), **approved** by someone other than its author, **released** (the previously
//!   released set is retired in the same change, so exactly one set is released at a time, and a
//!   release is always newer than the one before), and eventually **retired**. A set's content
//!   never changes after it is created.
//! - Every change gets a [`Revision`]; a fab asks for the changes since the last one it saw.
//! - A fab applies a released set **atomically** — everything is validated first, then swapped
//!   in whole — and acknowledges the version it runs. A fab that cannot reach the central
//!   service keeps running on what it last applied.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::apc::facade::SrLimits;
use crate::domain::fdc::limits::{LimitsParams, LimitsVersion, ParameterLimits};
use crate::domain::name::Name;
use crate::domain::time::Timestamp;

/// A spec set's version: 1, 2, 3… never reused.
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
#[serde(transparent)]
pub struct SpecVersion(pub u32);

impl fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spec v{}", self.0)
    }
}

/// The position of a change in the central log (for delta sync).
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
#[serde(transparent)]
pub struct Revision(pub u64);

/// Where a set is in its lifecycle.
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
pub enum SpecState {
    /// Editable only by replacing it with a new draft.
    Draft,
    /// Approved, waiting for release.
    Approved,
    /// In force.
    Released,
    /// No longer in force (superseded, withdrawn or abandoned).
    Retired,
}

/// The sub-recipe limits of one product and layer (mJ/cm²).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SrLimitItem {
    /// The product.
    pub product: Name,
    /// The layer.
    pub layer: Name,
    /// Lowest SR.
    pub min: f64,
    /// Highest SR.
    pub max: f64,
}

/// What a set specifies. Not validated when deserialised (it is wire data): the registry
/// validates it when a draft is created and a fab again before applying it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpecContent {
    /// Sub-recipe limits, one per (product, layer).
    pub sr_limits: Vec<SrLimitItem>,
    /// FDC limits, one per parameter; their limits version is the set's version.
    pub fdc_limits: Vec<LimitsParams>,
}

/// A validated content, indexed for lookups.
#[derive(Clone, Debug, PartialEq)]
struct Indexed {
    sr: BTreeMap<(Name, Name), SrLimits>,
    fdc: BTreeMap<Name, ParameterLimits>,
}

impl SpecContent {
    /// Validates everything, reporting every problem at once.
    fn index(&self, version: SpecVersion) -> Result<Indexed, SpecError> {
        let mut problems = Vec::new();
        let mut sr = BTreeMap::new();
        for (i, item) in self.sr_limits.iter().enumerate() {
            match SrLimits::new(item.min, item.max, version.0) {
                Ok(l) => {
                    if sr
                        .insert((item.product.clone(), item.layer.clone()), l)
                        .is_some()
                    {
                        problems.push(format!(
                            "sr_limits[{i}] repeats {}/{}",
                            item.product, item.layer
                        ));
                    }
                }
                Err(e) => problems.push(format!("sr_limits[{i}]: {e}")),
            }
        }
        let mut fdc = BTreeMap::new();
        for (i, p) in self.fdc_limits.iter().enumerate() {
            match ParameterLimits::new(LimitsVersion(version.0), p.clone()) {
                Ok(l) => {
                    if fdc.insert(p.parameter.clone(), l).is_some() {
                        problems.push(format!("fdc_limits[{i}] repeats {}", p.parameter));
                    }
                }
                Err(e) => problems.push(format!("fdc_limits[{i}]: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(Indexed { sr, fdc })
        } else {
            Err(SpecError::InvalidContent { version, problems })
        }
    }
}

/// Who did what to a set, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Signature {
    /// Who.
    pub by: Name,
    /// When.
    pub at: Timestamp,
}

/// One spec set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpecSet {
    /// Its version.
    pub version: SpecVersion,
    /// Its state.
    pub state: SpecState,
    /// Its content (never changed).
    pub content: SpecContent,
    /// Author.
    pub created: Signature,
    /// Approver.
    pub approved: Option<Signature>,
    /// Releaser.
    pub released: Option<Signature>,
    /// Who retired it (or the releaser of the set that superseded it).
    pub retired: Option<Signature>,
}

/// A change in the central log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SpecChange {
    /// A draft was created.
    Drafted {
        /// Its version.
        version: SpecVersion,
    },
    /// A draft was approved.
    Approved {
        /// Its version.
        version: SpecVersion,
    },
    /// A set was released, retiring the previous release in the same change.
    Released {
        /// The released version.
        version: SpecVersion,
        /// The version it superseded.
        superseded: Option<SpecVersion>,
    },
    /// A set was retired.
    Retired {
        /// Its version.
        version: SpecVersion,
    },
}

/// What a fab gets when it syncs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delta {
    /// The changes after the revision the fab had, oldest first.
    pub changes: Vec<(Revision, SpecChange)>,
    /// The newest revision (the fab's next `since`).
    pub head: Revision,
    /// The released set, when a release happened in `changes`.
    pub released: Option<SpecSet>,
}

/// A fab's acknowledgement of the version it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Acknowledgement {
    /// The fab.
    pub fab: Name,
    /// The version it applied.
    pub version: SpecVersion,
    /// When it applied it.
    pub at: Timestamp,
}

/// A spec operation refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// No such version.
    #[error("{0} does not exist")]
    Unknown(SpecVersion),
    /// The operation does not apply in the set's state.
    #[error("{version} is {state:?}; {operation} needs {needs}")]
    WrongState {
        /// The set.
        version: SpecVersion,
        /// Its state.
        state: SpecState,
        /// The operation.
        operation: &'static str,
        /// The state(s) it needs.
        needs: &'static str,
    },
    /// The author approving their own set.
    #[error("{version} must be approved by someone other than its author {author}")]
    SelfApproval {
        /// The set.
        version: SpecVersion,
        /// Its author.
        author: Name,
    },
    /// A release or acknowledgement older than the current one.
    #[error("{got} is older than {current}")]
    NotNewer {
        /// The current version.
        current: SpecVersion,
        /// The one offered.
        got: SpecVersion,
    },
    /// The content does not validate.
    #[error("{version} content is invalid: {}", .problems.join("; "))]
    InvalidContent {
        /// The set.
        version: SpecVersion,
        /// Every problem, naming the item.
        problems: Vec<String>,
    },
}

/// The central spec service's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpecRegistry {
    sets: BTreeMap<SpecVersion, SpecSet>,
    log: Vec<(Revision, SpecChange)>,
    acks: BTreeMap<Name, Acknowledgement>,
}

impl SpecRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&mut self, change: SpecChange) -> Revision {
        let rev = Revision(self.log.last().map_or(1, |(r, _)| r.0 + 1));
        self.log.push((rev, change));
        rev
    }

    fn get_mut(&mut self, version: SpecVersion) -> Result<&mut SpecSet, SpecError> {
        self.sets
            .get_mut(&version)
            .ok_or(SpecError::Unknown(version))
    }

    /// The set `version`.
    #[must_use]
    pub fn get(&self, version: SpecVersion) -> Option<&SpecSet> {
        self.sets.get(&version)
    }

    /// The released set, if any.
    #[must_use]
    pub fn released(&self) -> Option<&SpecSet> {
        self.sets.values().find(|s| s.state == SpecState::Released)
    }

    /// Creates a draft with the next version.
    ///
    /// # Errors
    /// [`SpecError::InvalidContent`] listing every item at fault.
    pub fn create_draft(
        &mut self,
        content: SpecContent,
        by: Name,
        at: Timestamp,
    ) -> Result<SpecVersion, SpecError> {
        let version = SpecVersion(self.sets.keys().next_back().map_or(1, |v| v.0 + 1));
        content.index(version)?;
        self.sets.insert(
            version,
            SpecSet {
                version,
                state: SpecState::Draft,
                content,
                created: Signature { by, at },
                approved: None,
                released: None,
                retired: None,
            },
        );
        self.record(SpecChange::Drafted { version });
        Ok(version)
    }

    /// Approves a draft (four eyes: not by its author).
    ///
    /// # Errors
    /// [`SpecError`]: unknown, not a draft, self-approval.
    pub fn approve(
        &mut self,
        version: SpecVersion,
        by: Name,
        at: Timestamp,
    ) -> Result<(), SpecError> {
        let set = self.get_mut(version)?;
        if set.state != SpecState::Draft {
            return Err(SpecError::WrongState {
                version,
                state: set.state,
                operation: "approve",
                needs: "Draft",
            });
        }
        if set.created.by == by {
            return Err(SpecError::SelfApproval {
                version,
                author: by,
            });
        }
        set.state = SpecState::Approved;
        set.approved = Some(Signature { by, at });
        self.record(SpecChange::Approved { version });
        Ok(())
    }

    /// Releases an approved set, retiring the current release in the same change.
    ///
    /// # Errors
    /// [`SpecError`]: unknown, not approved, older than the current release.
    pub fn release(
        &mut self,
        version: SpecVersion,
        by: Name,
        at: Timestamp,
    ) -> Result<(), SpecError> {
        let current = self.released().map(|s| s.version);
        let set = self.sets.get(&version).ok_or(SpecError::Unknown(version))?;
        if set.state != SpecState::Approved {
            return Err(SpecError::WrongState {
                version,
                state: set.state,
                operation: "release",
                needs: "Approved",
            });
        }
        if let Some(current) = current.filter(|c| *c > version) {
            return Err(SpecError::NotNewer {
                current,
                got: version,
            });
        }
        if let Some(old) = current.and_then(|c| self.sets.get_mut(&c)) {
            old.state = SpecState::Retired;
            old.retired = Some(Signature { by: by.clone(), at });
        }
        let set = self.get_mut(version)?;
        set.state = SpecState::Released;
        set.released = Some(Signature { by, at });
        self.record(SpecChange::Released {
            version,
            superseded: current,
        });
        Ok(())
    }

    /// Retires a set (withdraws a release, or abandons a draft or an approved set).
    ///
    /// # Errors
    /// [`SpecError`]: unknown, already retired.
    pub fn retire(
        &mut self,
        version: SpecVersion,
        by: Name,
        at: Timestamp,
    ) -> Result<(), SpecError> {
        let set = self.get_mut(version)?;
        if set.state == SpecState::Retired {
            return Err(SpecError::WrongState {
                version,
                state: set.state,
                operation: "retire",
                needs: "Draft, Approved or Released",
            });
        }
        set.state = SpecState::Retired;
        set.retired = Some(Signature { by, at });
        self.record(SpecChange::Retired { version });
        Ok(())
    }

    /// The changes after `since`, and the released set if one of them is a release.
    ///
    /// The head is always this registry's newest revision (0 when nothing happened yet), even
    /// when `since` is ahead of it: a fab whose cursor is ahead gets nothing new and the real head.
    #[must_use]
    pub fn changes_since(&self, since: Revision) -> Delta {
        let changes: Vec<_> = self
            .log
            .iter()
            .filter(|(r, _)| *r > since)
            .cloned()
            .collect();
        let released = changes
            .iter()
            .any(|(_, c)| matches!(c, SpecChange::Released { .. }))
            .then(|| self.released().cloned())
            .flatten();
        Delta {
            head: self.log.last().map_or(Revision(0), |(r, _)| *r),
            changes,
            released,
        }
    }

    /// Records that `ack.fab` runs `ack.version`.
    ///
    /// # Errors
    /// [`SpecError`]: unknown version, never released, older than the fab's last acknowledgement.
    pub fn acknowledge(&mut self, ack: Acknowledgement) -> Result<(), SpecError> {
        let set = self
            .sets
            .get(&ack.version)
            .ok_or(SpecError::Unknown(ack.version))?;
        if set.released.is_none() {
            return Err(SpecError::WrongState {
                version: ack.version,
                state: set.state,
                operation: "acknowledge",
                needs: "a released set",
            });
        }
        if let Some(prev) = self.acks.get(&ack.fab).filter(|p| p.version > ack.version) {
            return Err(SpecError::NotNewer {
                current: prev.version,
                got: ack.version,
            });
        }
        self.acks.insert(ack.fab.clone(), ack);
        Ok(())
    }

    /// Every fab's last acknowledgement.
    pub fn acknowledgements(&self) -> impl Iterator<Item = &Acknowledgement> {
        self.acks.values()
    }

    /// The fabs in `fabs` that do not yet run the released version.
    #[must_use]
    pub fn lagging<'a>(&self, fabs: &'a [Name]) -> BTreeSet<&'a Name> {
        let released = self.released().map(|s| s.version);
        fabs.iter()
            .filter(|f| self.acks.get(*f).map(|a| a.version) != released)
            .collect()
    }
}

/// A fab's applied spec: what its APC and FDC use.
#[derive(Clone, Debug, PartialEq)]
pub struct FabSpecs {
    fab: Name,
    applied: Option<(SpecVersion, Indexed)>,
}

impl FabSpecs {
    /// A fab with nothing applied yet.
    #[must_use]
    pub fn new(fab: Name) -> Self {
        Self { fab, applied: None }
    }

    /// Applies a released set atomically: validates all of it, then swaps it in whole. Returns
    /// the acknowledgement to send, or `None` when this version is already applied.
    ///
    /// # Errors
    /// [`SpecError`]: not released, older than the applied one, invalid content. The applied
    /// set is then unchanged.
    pub fn apply(
        &mut self,
        set: &SpecSet,
        at: Timestamp,
    ) -> Result<Option<Acknowledgement>, SpecError> {
        if set.state != SpecState::Released {
            return Err(SpecError::WrongState {
                version: set.version,
                state: set.state,
                operation: "apply",
                needs: "Released",
            });
        }
        if let Some(current) = self.version() {
            if set.version == current {
                return Ok(None);
            }
            if set.version < current {
                return Err(SpecError::NotNewer {
                    current,
                    got: set.version,
                });
            }
        }
        let indexed = set.content.index(set.version)?;
        self.applied = Some((set.version, indexed));
        Ok(Some(Acknowledgement {
            fab: self.fab.clone(),
            version: set.version,
            at,
        }))
    }

    /// The applied version.
    #[must_use]
    pub fn version(&self) -> Option<SpecVersion> {
        self.applied.as_ref().map(|(v, _)| *v)
    }

    /// The SR limits of `product` on `layer`.
    #[must_use]
    pub fn sr_limits(&self, product: &Name, layer: &Name) -> Option<SrLimits> {
        let (_, i) = self.applied.as_ref()?;
        i.sr.get(&(product.clone(), layer.clone())).copied()
    }

    /// The FDC limits of `parameter`.
    #[must_use]
    pub fn fdc_limits(&self, parameter: &Name) -> Option<&ParameterLimits> {
        let (_, i) = self.applied.as_ref()?;
        i.fdc.get(parameter)
    }
}

#[cfg(test)]
mod tests;
