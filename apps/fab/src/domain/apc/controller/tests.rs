use super::*;
use crate::domain::sim::{ProcessModel, ProcessSim};

const T: f64 = 45.0;
const NOMINAL: f64 = 40.0;

fn config(kind: ControllerKind, model_gain: f64) -> ControllerConfig {
    let mut p = ControllerParams::typical(T, model_gain, NOMINAL);
    p.kind = kind;
    p.initial_sigma = 0.5;
    ControllerConfig::new(ConfigVersion(1), p).unwrap()
}

/// Runs a closed loop for `runs` runs; a maintenance is followed by a pilot run (the state is
/// re-initialised from that run), as the thread does. Returns the outputs.
fn closed_loop(cfg: &ControllerConfig, sim: &mut ProcessSim, runs: u64) -> Vec<f64> {
    let mut state = ControllerState::initial(cfg);
    let mut ys = Vec::new();
    for n in 0..runs {
        let pilot = sim.maintenance_before(n);
        let u = state.recommended_input(cfg, DriftTerm::Include);
        let y = sim.run(u);
        state = if pilot {
            state.from_pilot(cfg, u, y).unwrap()
        } else {
            state.update(cfg, u, y).unwrap().state
        };
        ys.push(y);
    }
    ys
}

fn mae_last(ys: &[f64], n: usize) -> f64 {
    let tail = &ys[ys.len() - n..];
    tail.iter().map(|y| (y - T).abs()).sum::<f64>() / n as f64
}

fn mean_last(ys: &[f64], n: usize) -> f64 {
    let tail = &ys[ys.len() - n..];
    tail.iter().map(|y| y - T).sum::<f64>() / n as f64
}

#[test]
fn ewma_converges_with_drift_and_a_step_after_maintenance_over_many_seeds() {
    // The model gain is 10 % off the true one, as in real life.
    let cfg = config(ControllerKind::Ewma { lambda: 0.3 }, -4.5);
    let model = ProcessModel {
        drift: 0.05,
        ..ProcessModel::litho()
    };
    for seed in 0..50 {
        let mut sim = ProcessSim::new(seed, model)
            .unwrap()
            .with_maintenance(100, 3.0);
        let ys = closed_loop(&cfg, &mut sim, 200);
        // Noise alone gives E|N(0, 0.5)| ≈ 0.40; the EWMA lag on the drift adds ≈ drift/λ ≈ 0.17.
        let controlled = mae_last(&ys, 20);
        assert!(controlled < 0.8, "seed {seed}: controlled MAE {controlled}");
        // Right after the step the pilot run re-centres the thread within a few runs.
        let after_step = mae_last(&ys[..120], 15);
        assert!(
            after_step < 0.9,
            "seed {seed}: MAE after maintenance {after_step}"
        );

        let mut open = ProcessSim::new(seed, model)
            .unwrap()
            .with_maintenance(100, 3.0);
        let ys: Vec<f64> = (0..200).map(|_| open.run(NOMINAL)).collect();
        let uncontrolled = mae_last(&ys, 20);
        assert!(
            uncontrolled > 10.0,
            "seed {seed}: uncontrolled MAE {uncontrolled}"
        );
    }
}

#[test]
fn double_ewma_tracks_a_drift_that_single_ewma_lags() {
    let model = ProcessModel {
        drift: 0.2,
        noise_sigma: 0.3,
        ..ProcessModel::litho()
    };
    let single = config(ControllerKind::Ewma { lambda: 0.3 }, -5.0);
    let double = config(
        ControllerKind::DoubleEwma {
            lambda: 0.3,
            lambda2: 0.1,
        },
        -5.0,
    );
    for seed in 0..20 {
        let ys = closed_loop(&single, &mut ProcessSim::new(seed, model).unwrap(), 300);
        // EWMA's offset lags a ramp by drift·(1 − λ)/λ, and the next run adds one more drift
        // step: the output settles drift/λ = 0.2/0.3 ≈ 0.67 nm above target.
        let lag = mean_last(&ys, 100);
        assert!((0.5..0.85).contains(&lag), "seed {seed}: EWMA bias {lag}");
        let ys = closed_loop(&double, &mut ProcessSim::new(seed, model).unwrap(), 300);
        let bias = mean_last(&ys, 100);
        assert!(bias.abs() < 0.15, "seed {seed}: double-EWMA bias {bias}");
    }
}

#[test]
fn an_unstable_gain_ratio_is_rejected_when_the_config_is_created() {
    // λ·β/b = 0.5 · (−5)/(−1) = 2.5 ≥ 2.
    let mut p = ControllerParams::typical(T, -1.0, NOMINAL);
    p.kind = ControllerKind::Ewma { lambda: 0.5 };
    p.process_gain = -5.0;
    let e = ControllerConfig::new(ConfigVersion(3), p.clone()).unwrap_err();
    assert!(e.is_unstable(), "{e}");
    assert!(e.names("kind.lambda"));
    assert!(e.to_string().contains("v3"), "{e}");
    // Just inside: 0.39 · 5 = 1.95.
    p.kind = ControllerKind::Ewma { lambda: 0.39 };
    assert!(ControllerConfig::new(ConfigVersion(3), p.clone()).is_ok());
    // Opposite signs can never be stable.
    p.process_gain = 5.0;
    let e = ControllerConfig::new(ConfigVersion(3), p).unwrap_err();
    assert!(e.names("process_gain"), "{e}");
}

#[test]
fn every_bad_field_is_reported_at_once_and_nothing_panics() {
    let mut p = ControllerParams::typical(f64::NAN, 0.0, -3.0);
    p.kind = ControllerKind::DoubleEwma {
        lambda: 0.0,
        lambda2: 1.5,
    };
    p.outlier_k = f64::INFINITY;
    p.max_step = 0.0;
    p.idle_limit = Duration::ZERO;
    let e = ControllerConfig::new(ConfigVersion(1), p).unwrap_err();
    for field in [
        "target",
        "model_gain",
        "nominal",
        "kind.lambda",
        "kind.lambda2",
        "outlier_k",
        "max_step",
        "idle_limit",
    ] {
        assert!(e.names(field), "{field} missing from {e}");
    }
}

#[test]
fn configs_are_versioned_values_a_revision_is_a_new_version() {
    let v1 = config(ControllerKind::Ewma { lambda: 0.3 }, -5.0);
    let v2 = v1
        .revise(ConfigVersion(2), |p| {
            p.kind = ControllerKind::Ewma { lambda: 0.2 }
        })
        .unwrap();
    assert_eq!(v1.params().kind.lambda(), 0.3);
    assert_eq!(v2.params().kind.lambda(), 0.2);
    assert!(
        v1.revise(ConfigVersion(1), |_| {})
            .unwrap_err()
            .names("version")
    );
    assert!(
        v1.revise(ConfigVersion(4), |p| p.process_gain = -50.0)
            .unwrap_err()
            .is_unstable()
    );
    // Deserialising validates: a stored unstable config cannot be loaded.
    let json = serde_json::to_value(&v2).unwrap();
    let back: ControllerConfig = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, v2);
    let mut bad = json;
    bad["params"]["process_gain"] = serde_json::json!(-100.0);
    assert!(serde_json::from_value::<ControllerConfig>(bad).is_err());
}

#[test]
fn the_outlier_gate_records_but_does_not_update() {
    let cfg = config(ControllerKind::Ewma { lambda: 0.3 }, -5.0);
    let mut sim = ProcessSim::new(11, ProcessModel::litho()).unwrap();
    let mut state = ControllerState::initial(&cfg);
    for _ in 0..50 {
        let u = state.recommended_input(&cfg, DriftTerm::Include);
        state = state.update(&cfg, u, sim.run(u)).unwrap().state;
    }
    let u = state.recommended_input(&cfg, DriftTerm::Include);
    let k_sigma = cfg.params().outlier_k * state.sigma;
    let wild = state.forecast(&cfg, u) + 1.5 * k_sigma;
    let out = state.update(&cfg, u, wild).unwrap();
    assert_eq!(out.gate, Gate::Outlier);
    assert_eq!(out.state.offset, state.offset);
    assert_eq!(out.state.sigma, state.sigma);
    assert_eq!(out.state.consecutive_outliers, 1);
    let near = state.forecast(&cfg, u) + 0.5 * k_sigma;
    let inl = out.state.update(&cfg, u, near).unwrap();
    assert_eq!(inl.gate, Gate::Accepted);
    assert!(inl.state.offset > state.offset);
    assert_eq!(inl.state.consecutive_outliers, 0);
    // NaN and infinities are refused, never folded in.
    assert!(state.update(&cfg, u, f64::NAN).is_err());
    assert!(state.update(&cfg, f64::INFINITY, 45.0).is_err());
}

/// Spectral radius of the double-EWMA loop matrix, from its trace and determinant.
fn spectral_radius(l1: f64, l2: f64, eta: f64) -> f64 {
    let tr = 2.0 - eta * (l1 + l2);
    let det = 1.0 - eta * (l1 + l2) + l1 * l2 * eta;
    let disc = tr * tr - 4.0 * det;
    if disc < 0.0 {
        det.sqrt()
    } else {
        ((tr.abs() + disc.sqrt()) / 2.0).abs()
    }
}

#[test]
fn the_stability_check_agrees_with_simulating_the_loop() {
    // Runs the noise-free loop (gate wide open) for a grid of λ, λ2 and β/b, and compares
    // convergence with the check made at config creation.
    let mut checked = 0;
    for l1 in [0.1, 0.3, 0.5, 0.8, 1.0] {
        for l2 in [0.05, 0.2, 0.5, 0.9] {
            for eta in [0.3, 0.8, 1.0, 1.5, 2.2, 2.8, 3.5, 4.5, 6.0] {
                let rho = spectral_radius(l1, l2, eta);
                if (rho - 1.0).abs() < 0.02 {
                    continue; // too close to the edge to tell in a few thousand runs
                }
                let kind = ControllerKind::DoubleEwma {
                    lambda: l1,
                    lambda2: l2,
                };
                let predicted = stability(kind, eta).is_ok();
                let mut p = ControllerParams::typical(T, -5.0, NOMINAL);
                p.kind = kind;
                p.process_gain = -5.0 * eta;
                p.initial_sigma = 1e12;
                p.outlier_k = 10.0;
                let cfg = ControllerConfig {
                    version: ConfigVersion(1),
                    params: p,
                };
                let mut state = ControllerState::initial(&cfg);
                state.offset += 1.0; // a disturbance
                let alpha = T + 5.0 * eta * NOMINAL;
                let mut y = 0.0;
                for _ in 0..3000 {
                    let u = state.recommended_input(&cfg, DriftTerm::Include);
                    y = alpha - 5.0 * eta * u;
                    state = state.update(&cfg, u, y).unwrap().state;
                    if !y.is_finite() || y.abs() > 1e9 {
                        break;
                    }
                }
                let converged = (y - T).abs() < 1e-6;
                // For the offset-only loop (single EWMA) the check also needs 0 < λη < 2.
                let dewma_ok = rho < 1.0;
                assert_eq!(
                    predicted,
                    converged && l1 * eta < 2.0,
                    "λ={l1} λ2={l2} η={eta} ρ={rho} y={y}"
                );
                assert_eq!(dewma_ok, converged, "λ={l1} λ2={l2} η={eta} ρ={rho} y={y}");
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} cases checked");
}
