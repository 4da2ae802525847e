//! Adapter: one APC, many tool models, each wanting the sub recipe in its own job syntax.
//!
//! A [`ToolAdapter`] renders an [`ExposureJob`] for one model; the [`AdapterRegistry`] finds the
//! adapter by model name. Adding a model adds an adapter and changes nothing else; an unknown
//! model is an error, never a guess. Identifiers are [`Name`]s (`[A-Za-z0-9._-]`), so nothing
//! needs escaping in any syntax.

use std::collections::BTreeMap;
use std::fmt;

use crate::domain::name::Name;

/// What a tool must do for one run: expose `lot` through `reticle` with `dose`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExposureJob {
    /// The run id (so the tool's report can be matched to the run record).
    pub run: Name,
    /// The lot.
    pub lot: Name,
    /// The layer.
    pub layer: Name,
    /// The reticle.
    pub reticle: Name,
    /// The applied sub recipe: the exposure dose (mJ/cm²).
    pub dose: f64,
}

/// A job cannot be rendered.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// No adapter for this model.
    #[error("unknown tool model {model:?}; known models: {known}")]
    UnknownModel {
        /// The model asked for.
        model: String,
        /// The models there are adapters for, comma-separated.
        known: String,
    },
    /// The dose is outside what the model accepts.
    #[error("dose {dose} is outside the {model} range [{min}, {max}] mJ/cm²")]
    DoseOutOfRange {
        /// The model.
        model: &'static str,
        /// The dose.
        dose: f64,
        /// Lowest accepted.
        min: f64,
        /// Highest accepted.
        max: f64,
    },
}

/// Renders jobs in one tool model's syntax.
pub trait ToolAdapter: fmt::Debug + Send + Sync {
    /// The model's name (the registry key).
    fn model(&self) -> &'static str;
    /// The dose range the model accepts (mJ/cm²).
    fn dose_range(&self) -> (f64, f64);
    /// Writes the job; the dose is already checked against [`ToolAdapter::dose_range`].
    fn write(&self, job: &ExposureJob) -> String;

    /// Checks the dose and renders the job.
    ///
    /// # Errors
    /// [`AdapterError::DoseOutOfRange`] for a dose outside the model's range (or not finite).
    fn render(&self, job: &ExposureJob) -> Result<String, AdapterError> {
        let (min, max) = self.dose_range();
        if !(min..=max).contains(&job.dose) {
            return Err(AdapterError::DoseOutOfRange {
                model: self.model(),
                dose: job.dose,
                min,
                max,
            });
        }
        Ok(self.write(job))
    }
}

/// An XML job ticket (`nxt-1980`-style immersion scanners): dose in mJ/cm² to 3 decimals.
#[derive(Clone, Copy, Debug, Default)]
pub struct XmlTicketAdapter;

impl ToolAdapter for XmlTicketAdapter {
    fn model(&self) -> &'static str {
        "nxt-1980"
    }

    fn dose_range(&self) -> (f64, f64) {
        (5.0, 80.0)
    }

    fn write(&self, j: &ExposureJob) -> String {
        format!(
            "<ExposureJob run=\"{}\" lot=\"{}\" layer=\"{}\"><Reticle id=\"{}\"/><Dose unit=\"mJ/cm2\">{:.3}</Dose></ExposureJob>",
            j.run, j.lot, j.layer, j.reticle, j.dose
        )
    }
}

/// A semicolon-separated key=value recipe line (`nsr-s635`-style scanners): dose in J/m² to 2
/// decimals (1 mJ/cm² = 10 J/m²).
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyValueAdapter;

impl ToolAdapter for KeyValueAdapter {
    fn model(&self) -> &'static str {
        "nsr-s635"
    }

    fn dose_range(&self) -> (f64, f64) {
        (10.0, 60.0)
    }

    fn write(&self, j: &ExposureJob) -> String {
        format!(
            "JOB={};LOT={};LAYER={};RETICLE={};DOSE_JM2={:.2};",
            j.run,
            j.lot,
            j.layer,
            j.reticle,
            j.dose * 10.0
        )
    }
}

/// A JSON job (`fpa-6300`-style scanners): dose as an integer in µJ/cm².
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonJobAdapter;

impl ToolAdapter for JsonJobAdapter {
    fn model(&self) -> &'static str {
        "fpa-6300"
    }

    fn dose_range(&self) -> (f64, f64) {
        (10.0, 100.0)
    }

    fn write(&self, j: &ExposureJob) -> String {
        format!(
            "{{\"job\":\"{}\",\"lot\":\"{}\",\"layer\":\"{}\",\"reticle\":\"{}\",\"dose_uj_cm2\":{:.0}}}",
            j.run,
            j.lot,
            j.layer,
            j.reticle,
            j.dose * 1000.0
        )
    }
}

/// The adapters by model name.
#[derive(Debug, Default)]
pub struct AdapterRegistry {
    adapters: BTreeMap<&'static str, Box<dyn ToolAdapter>>,
}

impl AdapterRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry with every adapter of this crate.
    #[must_use]
    pub fn standard() -> Self {
        Self::new()
            .with(XmlTicketAdapter)
            .with(KeyValueAdapter)
            .with(JsonJobAdapter)
    }

    /// Adds (or replaces) the adapter for its model.
    #[must_use]
    pub fn with(mut self, adapter: impl ToolAdapter + 'static) -> Self {
        self.adapters.insert(adapter.model(), Box::new(adapter));
        self
    }

    /// The adapter for `model`.
    ///
    /// # Errors
    /// [`AdapterError::UnknownModel`] listing the known models.
    pub fn adapter(&self, model: &str) -> Result<&dyn ToolAdapter, AdapterError> {
        self.adapters
            .get(model)
            .map(|a| &**a)
            .ok_or_else(|| AdapterError::UnknownModel {
                model: model.chars().take(64).collect(),
                known: self.adapters.keys().copied().collect::<Vec<_>>().join(", "),
            })
    }

    /// Renders `job` for `model`.
    ///
    /// # Errors
    /// As [`AdapterRegistry::adapter`] and [`ToolAdapter::render`].
    pub fn render(&self, model: &str, job: &ExposureJob) -> Result<String, AdapterError> {
        self.adapter(model)?.render(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dose: f64) -> ExposureJob {
        let n = |f, v: &str| Name::parse(f, v).unwrap();
        ExposureJob {
            run: n("run", "R-1"),
            lot: n("lot", "LOT-7"),
            layer: n("layer", "M1"),
            reticle: n("reticle", "RT-42"),
            dose,
        }
    }

    #[test]
    fn each_model_gets_its_own_syntax_and_units() {
        let r = AdapterRegistry::standard();
        assert_eq!(
            r.render("nxt-1980", &job(40.1234)).unwrap(),
            "<ExposureJob run=\"R-1\" lot=\"LOT-7\" layer=\"M1\"><Reticle id=\"RT-42\"/><Dose unit=\"mJ/cm2\">40.123</Dose></ExposureJob>"
        );
        assert_eq!(
            r.render("nsr-s635", &job(40.1234)).unwrap(),
            "JOB=R-1;LOT=LOT-7;LAYER=M1;RETICLE=RT-42;DOSE_JM2=401.23;"
        );
        let json = r.render("fpa-6300", &job(40.1234)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["dose_uj_cm2"], 40123);
        assert_eq!(v["reticle"], "RT-42");
    }

    #[test]
    fn an_unknown_model_is_an_error_naming_the_known_ones() {
        let e = AdapterRegistry::standard()
            .render("euv-9000", &job(40.0))
            .unwrap_err();
        let AdapterError::UnknownModel { model, known } = &e else {
            panic!("{e}")
        };
        assert_eq!(model, "euv-9000");
        assert_eq!(known, "fpa-6300, nsr-s635, nxt-1980");
    }

    #[test]
    fn doses_outside_the_model_range_or_not_finite_are_refused() {
        let r = AdapterRegistry::standard();
        for dose in [f64::NAN, f64::INFINITY, -1.0, 61.0] {
            assert!(matches!(
                r.render("nsr-s635", &job(dose)),
                Err(AdapterError::DoseOutOfRange { .. })
            ));
        }
    }

    #[test]
    fn adding_a_model_is_adding_an_adapter() {
        #[derive(Debug)]
        struct Csv;
        impl ToolAdapter for Csv {
            fn model(&self) -> &'static str {
                "csv-1"
            }
            fn dose_range(&self) -> (f64, f64) {
                (0.0, 100.0)
            }
            fn write(&self, j: &ExposureJob) -> String {
                format!("{},{},{}", j.lot, j.reticle, j.dose)
            }
        }
        let r = AdapterRegistry::standard().with(Csv);
        assert_eq!(r.render("csv-1", &job(40.0)).unwrap(), "LOT-7,RT-42,40");
        assert!(r.render("nxt-1980", &job(40.0)).is_ok());
    }
}
