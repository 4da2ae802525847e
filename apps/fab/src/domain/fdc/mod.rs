//! FDC: fault detection and classification on 1 Hz tool sensor data.
//!
//! - [`limits`]: versioned spec and control limits per parameter, with a deadband;
//! - [`rules`]: Western Electric / Nelson run rules, selectable per parameter;
//! - [`gap`]: missing samples as a fault of their own;
//! - [`classify`]: what kind of fault a detection is;
//! - [`alarm`]: alarms, acknowledgement and tool inhibit;
//! - [`monitor`]: one parameter's evaluation of every sample, tying the above together.

use serde::{Deserialize, Serialize};

use crate::domain::time::Timestamp;

pub mod alarm;
pub mod classify;
pub mod gap;
pub mod limits;
pub mod monitor;
pub mod rules;

/// One sensor reading.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sample {
    /// When it was taken.
    pub at: Timestamp,
    /// The reading (NaN from a failed sensor is possible and is a fault, not an error).
    pub value: f64,
}
