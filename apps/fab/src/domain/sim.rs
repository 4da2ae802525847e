//! Seeded synthetic data: a lithography process for APC and 1 Hz sensor traces for FDC.
//!
//! Deterministic for a seed (ChaCha8), so tests are reproducible and `fab simulate` can replay a
//! scenario. Ranges follow DOMAIN.md §5.

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::domain::fdc::Sample;
use crate::domain::time::Timestamp;

/// A synthetic data generator was given parameters it cannot use.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A parameter is NaN, infinite or out of range.
    #[error("{field} must be a finite number{range}, got {value}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// Its value.
        value: f64,
        /// The range, as text (may be empty).
        range: &'static str,
    },
}

fn finite(field: &'static str, value: f64) -> Result<f64, SimError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(SimError::Invalid {
            field,
            value,
            range: "",
        })
    }
}

fn noise(field: &'static str, sigma: f64) -> Result<Normal<f64>, SimError> {
    Normal::new(0.0, sigma)
        .ok()
        .filter(|_| sigma >= 0.0 && sigma.is_finite())
        .ok_or(SimError::Invalid {
            field,
            value: sigma,
            range: " ≥ 0",
        })
}

/// Parameters of the process `y = α + β·u + drift·n + noise` (plus steps after maintenance).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessModel {
    /// Offset α (nm).
    pub alpha: f64,
    /// True gain β (nm per mJ/cm²); CD falls as dose rises, so usually negative.
    pub beta: f64,
    /// Drift per run (nm/run): tool wear.
    pub drift: f64,
    /// σ of the measurement noise (nm).
    pub noise_sigma: f64,
}

impl ProcessModel {
    /// A 45 nm CD at 40 mJ/cm² with β = −5 nm per mJ/cm² (≈ 2 nm per 1 % dose), no drift,
    /// 0.5 nm noise.
    #[must_use]
    pub fn litho() -> Self {
        Self {
            alpha: 45.0 + 5.0 * 40.0,
            beta: -5.0,
            drift: 0.0,
            noise_sigma: 0.5,
        }
    }
}

/// A simulated exposure process, one call of [`ProcessSim::run`] per run.
#[derive(Debug)]
pub struct ProcessSim {
    model: ProcessModel,
    steps: Vec<(u64, f64)>,
    run: u64,
    rng: ChaCha8Rng,
    noise: Normal<f64>,
}

impl ProcessSim {
    /// A process with `model`, deterministic for `seed`.
    ///
    /// # Errors
    /// [`SimError`] when a parameter is not finite or σ is negative.
    pub fn new(seed: u64, model: ProcessModel) -> Result<Self, SimError> {
        finite("alpha", model.alpha)?;
        finite("beta", model.beta)?;
        finite("drift", model.drift)?;
        let noise = noise("noise_sigma", model.noise_sigma)?;
        Ok(Self {
            model,
            steps: Vec::new(),
            run: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            noise,
        })
    }

    /// Adds a maintenance at run `at_run` after which α jumps by `delta` nm.
    #[must_use]
    pub fn with_maintenance(mut self, at_run: u64, delta: f64) -> Self {
        if delta.is_finite() {
            self.steps.push((at_run, delta));
        }
        self
    }

    /// Whether maintenance happens before run number `run` (0-based).
    #[must_use]
    pub fn maintenance_before(&self, run: u64) -> bool {
        self.steps.iter().any(|&(at, _)| at == run)
    }

    /// The index of the next run (0-based).
    #[must_use]
    pub fn next_run(&self) -> u64 {
        self.run
    }

    /// The noise-free output of the next run for input `u`.
    #[must_use]
    pub fn expected(&self, u: f64) -> f64 {
        let n = self.run;
        let step: f64 = self
            .steps
            .iter()
            .filter(|&&(at, _)| at <= n)
            .map(|&(_, d)| d)
            .sum();
        #[allow(clippy::cast_precision_loss)] // run counts stay far below 2^52
        let drift = self.model.drift * n as f64;
        self.model.alpha + step + self.model.beta * u + drift
    }

    /// Runs the process with input `u` and returns the measured output.
    pub fn run(&mut self, u: f64) -> f64 {
        let y = self.expected(u) + self.noise.sample(&mut self.rng);
        self.run += 1;
        y
    }
}

/// A fault injected into a sensor trace; times are seconds from the trace's start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// One sample off by `magnitude`.
    Spike {
        /// Second of the spike.
        at: u64,
        /// Added to that sample.
        magnitude: f64,
    },
    /// Every sample from `from` on off by `delta`.
    Shift {
        /// First shifted second.
        from: u64,
        /// The shift.
        delta: f64,
    },
    /// A ramp of `per_sec` from `from` on.
    Drift {
        /// First drifting second.
        from: u64,
        /// Slope per second.
        per_sec: f64,
    },
    /// The sensor repeats its reading at `from` until `until` (exclusive).
    Stuck {
        /// First stuck second.
        from: u64,
        /// First second after.
        until: u64,
    },
    /// No samples in `[from, until)`.
    Gap {
        /// First missing second.
        from: u64,
        /// First second after.
        until: u64,
    },
    /// The sensor reports NaN at `at`.
    Failure {
        /// The second.
        at: u64,
    },
}

/// A 1 Hz temperature sensor around `mean` with Gaussian noise and injected faults.
#[derive(Debug)]
pub struct SensorSim {
    mean: f64,
    rng: ChaCha8Rng,
    noise: Normal<f64>,
    faults: Vec<Fault>,
}

impl SensorSim {
    /// A sensor reading `mean ± N(0, sigma)`, deterministic for `seed`.
    ///
    /// # Errors
    /// [`SimError`] when `mean` is not finite or `sigma` is negative or not finite.
    pub fn new(seed: u64, mean: f64, sigma: f64) -> Result<Self, SimError> {
        Ok(Self {
            mean: finite("mean", mean)?,
            rng: ChaCha8Rng::seed_from_u64(seed),
            noise: noise("sigma", sigma)?,
            faults: Vec::new(),
        })
    }

    /// Injects `fault`.
    #[must_use]
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// `seconds` seconds of trace starting at `start`, one sample a second (gaps left out).
    pub fn trace(&mut self, start: Timestamp, seconds: u64) -> Vec<Sample> {
        let mut out = Vec::new();
        let mut last = self.mean;
        for s in 0..seconds {
            let mut v = self.mean + self.noise.sample(&mut self.rng);
            let mut stuck = false;
            let mut gap = false;
            for f in &self.faults {
                match *f {
                    Fault::Spike { at, magnitude } if at == s => v += magnitude,
                    Fault::Shift { from, delta } if s >= from => v += delta,
                    #[allow(clippy::cast_precision_loss)]
                    Fault::Drift { from, per_sec } if s >= from => v += per_sec * (s - from) as f64,
                    Fault::Stuck { from, until } if s > from && s < until => stuck = true,
                    Fault::Gap { from, until } if s >= from && s < until => gap = true,
                    Fault::Failure { at } if at == s => v = f64::NAN,
                    _ => {}
                }
            }
            if stuck {
                v = last;
            }
            last = v;
            if !gap {
                out.push(Sample {
                    at: start.saturating_add(Duration::from_secs(s)),
                    value: v,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let m = ProcessModel::litho();
        let a: Vec<f64> = {
            let mut p = ProcessSim::new(7, m).unwrap();
            (0..10).map(|_| p.run(40.0)).collect()
        };
        let b: Vec<f64> = {
            let mut p = ProcessSim::new(7, m).unwrap();
            (0..10).map(|_| p.run(40.0)).collect()
        };
        let c: Vec<f64> = {
            let mut p = ProcessSim::new(8, m).unwrap();
            (0..10).map(|_| p.run(40.0)).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Around the 45 nm target at the nominal dose.
        assert!(a.iter().all(|y| (y - 45.0).abs() < 3.0), "{a:?}");
    }

    #[test]
    fn drift_and_maintenance_step_move_the_expected_output() {
        let m = ProcessModel {
            drift: 0.1,
            ..ProcessModel::litho()
        };
        let mut p = ProcessSim::new(1, m).unwrap().with_maintenance(5, 3.0);
        assert!((p.expected(40.0) - 45.0).abs() < 1e-9);
        for _ in 0..5 {
            p.run(40.0);
        }
        assert!(p.maintenance_before(5));
        assert!((p.expected(40.0) - (45.0 + 0.5 + 3.0)).abs() < 1e-9);
    }

    #[test]
    fn rejects_bad_parameters() {
        let m = ProcessModel {
            noise_sigma: -1.0,
            ..ProcessModel::litho()
        };
        assert!(ProcessSim::new(1, m).is_err());
        assert!(SensorSim::new(1, f64::NAN, 1.0).is_err());
        assert!(SensorSim::new(1, 20.0, f64::INFINITY).is_err());
    }

    #[test]
    fn sensor_faults_show_in_the_trace() {
        let mut s = SensorSim::new(3, 22.0, 0.1)
            .unwrap()
            .with_fault(Fault::Spike {
                at: 3,
                magnitude: 5.0,
            })
            .with_fault(Fault::Gap {
                from: 10,
                until: 15,
            })
            .with_fault(Fault::Failure { at: 20 });
        let t = s.trace(Timestamp::from_secs(1000), 30);
        assert_eq!(t.len(), 25);
        assert!(t[3].value > 26.0);
        assert!(t.iter().all(|x| x.at != Timestamp::from_secs(1012)));
        assert!(t.iter().any(|x| x.value.is_nan()));
    }
}
