//! FDC on a chuck-temperature sensor at 1 Hz with a spike, a shift, a stuck spell, a failed
//! reading, a communication gap and a slow drift injected; prints every detection, and whether
//! the tool is inhibited.
//!
//! ```text
//! cargo run -p fab --example 02_fdc_monitor
//! ```

#![allow(clippy::print_stdout, reason = "printing the detections is the point")]

use std::error::Error;
use std::time::Duration;

use fab::domain::fdc::limits::Band;
use fab::{
    Alarm, AlarmId, Fault, LimitsParams, LimitsVersion, Name, ParameterLimits, ParameterMonitor,
    RuleSet, SensorSim, Timestamp, ToolInhibit,
};

fn main() -> Result<(), Box<dyn Error>> {
    let limits = ParameterLimits::new(
        LimitsVersion(3),
        LimitsParams {
            parameter: Name::parse("parameter", "chuck-temp")?,
            spec: Band { lo: 21.4, hi: 22.6 },
            mean: 22.0,
            sigma: 0.1,
            deadband: 0.05,
            physical: Band {
                lo: -50.0,
                hi: 400.0,
            },
            rules: RuleSet::western_electric(),
            max_gap: Duration::from_secs(4),
            stuck_samples: 8,
        },
    )?;
    let start = Timestamp::from_secs(1_800_000_000);
    let mut monitor = ParameterMonitor::new(Name::parse("tool", "etch-3")?, limits, start);
    let mut sensor = SensorSim::new(7, 22.0, 0.1)?
        .with_fault(Fault::Spike {
            at: 120,
            magnitude: 1.0,
        })
        .with_fault(Fault::Shift {
            from: 300,
            delta: 0.25,
        })
        .with_fault(Fault::Shift {
            from: 400,
            delta: -0.25,
        })
        .with_fault(Fault::Stuck {
            from: 500,
            until: 560,
        })
        .with_fault(Fault::Failure { at: 620 })
        .with_fault(Fault::Gap {
            from: 700,
            until: 712,
        })
        .with_fault(Fault::Drift {
            from: 800,
            per_sec: 0.005,
        });
    let mut inhibit = ToolInhibit::default();
    let mut alarms = Vec::new();
    for sample in sensor.trace(start, 900) {
        // The periodic gap check runs once a second, before the sample of that second.
        let gap = monitor.check(sample.at);
        for d in gap.into_iter().chain(monitor.observe(sample)) {
            let alarm = Alarm::raise(AlarmId(alarms.len() as u64 + 1), d);
            inhibit.update(&alarm);
            let d = &alarm.detection;
            println!(
                "{:>4}s {:<9?} {:<15?} {:?} (limits {:?}) inhibited: {}",
                d.at.saturating_since(start).as_secs(),
                d.severity,
                d.class,
                d.cause,
                d.limits_version,
                inhibit.is_inhibited()
            );
            alarms.push(alarm);
        }
    }
    let engineer = Name::parse("engineer", "eng-ada")?;
    for alarm in &mut alarms {
        if alarm.inhibits() {
            alarm.acknowledge(engineer.clone(), "checked at the tool", start)?;
            inhibit.update(alarm);
        }
    }
    println!(
        "\nafter acknowledging: inhibited: {}",
        inhibit.is_inhibited()
    );
    Ok(())
}
