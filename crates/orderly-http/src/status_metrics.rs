//! The lifecycle metrics: a system's [`Status`] as Prometheus gauges, rendered at each scrape.
//!
//! States, phases and health are "one-hot" (one series per possible value, 1 for the current
//! one), as kube-state-metrics does for pod phases: a query selects by name
//! (`orderly_component_state{state="failed"} == 1`) instead of decoding numbers, and every
//! series exists from the first scrape, so `changes()` and alerts see each transition.

use std::time::Duration;

use orderly::{ComponentStatus, Health, Phase, State, Status};

use crate::exposition::Exposition;

/// The values of `orderly_component_health`'s `health` label.
const HEALTH: [&str; 3] = ["healthy", "degraded", "unhealthy"];

/// `status` in the text format.
pub(crate) fn render(status: &Status) -> String {
    let mut text = Exposition::default();
    let system = &*status.system;

    let mut phase = text.gauge(
        "orderly_system_phase",
        "The system's lifecycle phase: 1 for the current one, 0 for the others.",
    );
    for p in Phase::ALL {
        phase.sample(
            &[("system", system), ("phase", p.as_str())],
            one_if(*p == status.phase),
        );
    }
    text.gauge(
        "orderly_started",
        "1 once every mandatory component has started (the startup probe), else 0.",
    )
    .sample(&[("system", system)], one_if(status.started));
    text.gauge(
        "orderly_ready",
        "1 while the system is ready for traffic (the readiness probe), else 0.",
    )
    .sample(&[("system", system)], one_if(status.readiness().ok));

    let mut state = text.gauge(
        "orderly_component_state",
        "A component's lifecycle state: 1 for the current one, 0 for the others.",
    );
    for c in &status.components {
        for s in State::ALL {
            state.sample(
                &[
                    ("system", system),
                    ("component", &c.name),
                    ("state", s.as_str()),
                ],
                one_if(*s == c.state),
            );
        }
    }

    let mut health = text.gauge(
        "orderly_component_health",
        "A component's reported health: 1 for the current one (healthy, degraded or \
         unhealthy), 0 for the others.",
    );
    for c in &status.components {
        let current = match c.health {
            Health::Healthy => HEALTH[0],
            Health::Degraded(_) => HEALTH[1],
            Health::Unhealthy(_) => HEALTH[2],
        };
        for h in HEALTH {
            health.sample(
                &[("system", system), ("component", &c.name), ("health", h)],
                one_if(h == current),
            );
        }
    }

    let durations: [(&'static str, &str, Took); 2] = [
        (
            "orderly_component_start_seconds",
            "How long the component's last start took, in seconds; absent until it has started.",
            |c| c.started_in,
        ),
        (
            "orderly_component_stop_seconds",
            "How long the component's last stop took, in seconds; absent until it has stopped.",
            |c| c.stopped_in,
        ),
    ];
    for (name, help, took) in durations {
        let mut family = text.gauge(name, help);
        for c in &status.components {
            if let Some(took) = took(c) {
                family.sample(
                    &[("system", system), ("component", &c.name)],
                    took.as_secs_f64(),
                );
            }
        }
    }
    text.finish()
}

/// How long a component's start or stop took.
type Took = fn(&ComponentStatus) -> Option<Duration>;

fn one_if(yes: bool) -> f64 {
    if yes { 1.0 } else { 0.0 }
}
