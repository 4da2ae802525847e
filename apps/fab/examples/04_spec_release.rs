//! Central specs: a limit set drafted, approved by a second engineer, released; a fab applies it
//! atomically and acknowledges; a corrupted copy is refused whole; the next release reaches the
//! fab as a delta.
//!
//! ```text
//! cargo run -p fab --example 04_spec_release
//! ```

#![allow(clippy::print_stdout, reason = "printing the steps is the point")]

use std::error::Error;

use fab::domain::spec::{Revision, SpecContent, SrLimitItem};
use fab::{FabSpecs, Name, SpecRegistry, Timestamp};

fn content(max: f64) -> Result<SpecContent, Box<dyn Error>> {
    Ok(SpecContent {
        sr_limits: vec![SrLimitItem {
            product: Name::parse("product", "soc-a")?,
            layer: Name::parse("layer", "M1")?,
            min: 30.0,
            max,
        }],
        fdc_limits: Vec::new(),
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let (ada, bob) = (Name::parse("by", "eng-ada")?, Name::parse("by", "eng-bob")?);
    let t = Timestamp::from_secs;
    let mut central = SpecRegistry::new();
    let v1 = central.create_draft(content(50.0)?, ada.clone(), t(1))?;
    if let Err(e) = central.approve(v1, ada.clone(), t(2)) {
        println!("refused: {e}");
    }
    central.approve(v1, bob.clone(), t(3))?;
    central.release(v1, bob.clone(), t(4))?;

    let mut fab = FabSpecs::new(Name::parse("fab", "fab-1")?);
    let delta = central.changes_since(Revision(0));
    if let Some(set) = &delta.released
        && let Some(ack) = fab.apply(set, t(5))?
    {
        println!("fab-1 applied {} and acknowledges", ack.version);
        central.acknowledge(ack)?;
    }

    let v2 = central.create_draft(content(52.0)?, ada, t(10))?;
    central.approve(v2, bob.clone(), t(11))?;
    central.release(v2, bob, t(12))?;
    let delta = central.changes_since(delta.head);
    println!("delta since the last sync: {:?}", delta.changes);
    if let Some(set) = &delta.released {
        let mut corrupted = set.clone();
        corrupted.content.sr_limits[0].min = f64::NAN;
        if let Err(e) = fab.apply(&corrupted, t(13)) {
            println!("refused whole, still on {:?}: {e}", fab.version());
        }
        if let Some(ack) = fab.apply(set, t(14))? {
            println!("fab-1 applied {} and acknowledges", ack.version);
            central.acknowledge(ack)?;
        }
    }
    Ok(())
}
