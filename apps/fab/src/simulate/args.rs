//! The command line of `fab simulate` (each option also read from its environment variable),
//! turned into a [`Scenario`] in a second step that reports every problem at once.

use std::path::PathBuf;
use std::time::Duration;

use super::error::{SimulateError, SimulateErrorKind};
use super::scenario::{InjectedFault, Maintenance, Scenario, SimTokens, parse_duration};

/// Options of `fab simulate`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulateArgs {
    /// The fab's base URL.
    #[arg(long, env = "FAB_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Tokens, `role:token,…` (tool, engineer, and a second engineer or admin for the spec's
    /// four eyes); without it, read from --tokens-file.
    #[arg(long, env = "FAB_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,
    /// The tokens file `fab all` writes.
    #[arg(long, env = "FAB_TOKENS_FILE", default_value = "./fab-data/tokens.env")]
    pub tokens_file: PathBuf,
    /// Tools are named PREFIX-01, PREFIX-02, …; a new prefix starts new controller threads
    /// and FDC monitors, reusing one continues them.
    #[arg(long, env = "SIM_TOOL_PREFIX", default_value = "sim-scanner")]
    pub tool_prefix: String,
    /// Scanners (one controller thread each).
    #[arg(long, env = "SIM_TOOLS", default_value_t = 2)]
    pub tools: usize,
    /// Lots per thread.
    #[arg(long, env = "SIM_LOTS", default_value_t = 40)]
    pub lots: u32,
    /// Simulated time between two lots on a scanner.
    #[arg(long, env = "SIM_LOT_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub lot_interval: Duration,
    /// Metrology measures 1 lot in N.
    #[arg(long, env = "SIM_METROLOGY_EVERY", default_value_t = 2)]
    pub metrology_every: u32,
    /// A measurement reaches the APC this many lots after its lot.
    #[arg(long, env = "SIM_METROLOGY_DELAY", default_value_t = 1)]
    pub metrology_delay: u32,
    /// Temperature sensors per tool (1 Hz simulated).
    #[arg(long, env = "SIM_SENSORS", default_value_t = 2)]
    pub sensors: usize,
    /// Simulated time of samples per batch request.
    #[arg(long, env = "SIM_BATCH", default_value = "10s", value_parser = parse_duration)]
    pub batch: Duration,
    /// Time compression: simulated seconds per wall-clock second.
    #[arg(long, env = "SIM_SPEED", default_value_t = 120.0)]
    pub speed: f64,
    /// Simulated time the sensors report (default: lots × lot interval).
    #[arg(long, env = "SIM_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// A sensor fault, `KIND@TOOL/SENSOR:FROM[..UNTIL][=VALUE]` (seconds; repeatable):
    /// `spike@1/1:100=1.5`, `shift@1/1:300=0.3`, `drift@1/2:300=0.002`,
    /// `stuck@2/1:400..430`, `gap@2/2:200..210`.
    #[arg(long = "fault", value_parser = InjectedFault::parse)]
    pub faults: Vec<InjectedFault>,
    /// How far the process sits from the controller's model at the start (nm).
    #[arg(
        long,
        env = "SIM_OFFSET",
        default_value_t = 4.0,
        allow_negative_numbers = true
    )]
    pub offset: f64,
    /// Tool wear: process drift per run (nm).
    #[arg(
        long,
        env = "SIM_DRIFT",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    pub drift: f64,
    /// σ of the process noise (nm).
    #[arg(long, env = "SIM_NOISE", default_value_t = 0.5)]
    pub noise: f64,
    /// A maintenance step change, `LOT=DELTA`: from lot LOT on the CD moves by DELTA nm.
    #[arg(long, env = "SIM_MAINTENANCE", value_parser = parse_maintenance)]
    pub maintenance: Option<Maintenance>,
    /// Seed of every generator.
    #[arg(long, env = "SIM_SEED", default_value_t = 1)]
    pub seed: u64,
    /// The most requests in flight at once.
    #[arg(long, env = "SIM_IN_FLIGHT", default_value_t = 8)]
    pub in_flight: usize,
    /// A request taking longer fails (counted, not retried).
    #[arg(long, env = "SIM_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_maintenance(text: &str) -> Result<Maintenance, String> {
    let (lot, delta) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not LOT=DELTA"))?;
    Ok(Maintenance {
        at_lot: lot
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: LOT is not a number"))?,
        delta: delta
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: DELTA is not a number"))?,
    })
}

impl SimulateArgs {
    /// The scenario: the tokens from `--tokens`/`FAB_TOKENS` or the tokens file.
    ///
    /// # Errors
    /// An invalid scenario, naming the option (every problem of the tokens; the scenario's
    /// own checks run in [`super::run`]).
    pub async fn scenario(&self) -> Result<Scenario, SimulateError> {
        let invalid = |text: String| SimulateError::new(SimulateErrorKind::Invalid(vec![text]));
        let tokens = match &self.tokens {
            Some(text) => {
                SimTokens::parse(text).map_err(|e| invalid(format!("FAB_TOKENS: {e}")))?
            }
            None => {
                let file = &self.tokens_file;
                let text = tokio::fs::read_to_string(file).await.map_err(|e| {
                    invalid(format!(
                        "FAB_TOKENS is not set and the tokens file {} cannot be read ({e}): \
                         start `fab all` once, or set FAB_TOKENS or --tokens-file",
                        file.display()
                    ))
                })?;
                SimTokens::from_env_file(&text)
                    .map_err(|e| invalid(format!("{}: {e}", file.display())))?
            }
        };
        Ok(Scenario {
            url: self.url.clone(),
            tokens,
            tool_prefix: self.tool_prefix.clone(),
            tools: self.tools,
            lots: self.lots,
            lot_interval: self.lot_interval,
            metrology_every: self.metrology_every,
            metrology_delay: self.metrology_delay,
            sensors: self.sensors,
            batch: self.batch,
            speed: self.speed,
            duration: self.duration,
            faults: self.faults.clone(),
            offset: self.offset,
            drift: self.drift,
            noise: self.noise,
            maintenance: self.maintenance,
            seed: self.seed,
            in_flight: self.in_flight,
            request_timeout: self.request_timeout,
        })
    }
}
