//! Run rules (Western Electric / Nelson) on standardised values `z = (x − μ)/σ`.
//!
//! Rules are chosen per parameter: all of them together raise too many false alarms. Each rule
//! is evaluated on the window ending at the newest sample, and fires only when the newest
//! sample takes part in the pattern.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

/// One run rule. In-control false-alarm probability per sample in brackets.
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
pub enum Rule {
    /// One point beyond 3σ (WE1, Nelson 1) [0.0027].
    Beyond3Sigma,
    /// Two of three consecutive points beyond 2σ on the same side (WE2, Nelson 5).
    TwoOfThreeBeyond2Sigma,
    /// Four of five consecutive points beyond 1σ on the same side (WE3, Nelson 6).
    FourOfFiveBeyond1Sigma,
    /// Eight consecutive points on the same side of the mean (WE4).
    EightOnOneSide,
    /// Six consecutive points steadily increasing or decreasing (Nelson 3).
    SixTrending,
    /// Fourteen consecutive points alternating up and down (Nelson 4).
    FourteenAlternating,
    /// Fifteen consecutive points within 1σ (Nelson 7: stratification).
    FifteenWithin1Sigma,
    /// Eight consecutive points beyond 1σ, on both sides (Nelson 8: mixture).
    EightBeyond1SigmaBothSides,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 8] = [
        Rule::Beyond3Sigma,
        Rule::TwoOfThreeBeyond2Sigma,
        Rule::FourOfFiveBeyond1Sigma,
        Rule::EightOnOneSide,
        Rule::SixTrending,
        Rule::FourteenAlternating,
        Rule::FifteenWithin1Sigma,
        Rule::EightBeyond1SigmaBothSides,
    ];

    /// Whether the rule fires on `z` (oldest first, newest last).
    #[must_use]
    pub fn fires(self, z: &[f64]) -> bool {
        let last = |n: usize| (z.len() >= n).then(|| &z[z.len() - n..]);
        let side = |w: &[f64], k: usize, t: f64| {
            let newest = w[w.len() - 1];
            (newest > t && w.iter().filter(|&&v| v > t).count() >= k)
                || (newest < -t && w.iter().filter(|&&v| v < -t).count() >= k)
        };
        match self {
            Rule::Beyond3Sigma => last(1).is_some_and(|w| w[0].abs() > 3.0),
            Rule::TwoOfThreeBeyond2Sigma => last(3).is_some_and(|w| side(w, 2, 2.0)),
            Rule::FourOfFiveBeyond1Sigma => last(5).is_some_and(|w| side(w, 4, 1.0)),
            Rule::EightOnOneSide => {
                last(8).is_some_and(|w| w.iter().all(|&v| v > 0.0) || w.iter().all(|&v| v < 0.0))
            }
            Rule::SixTrending => last(6).is_some_and(|w| {
                w.windows(2).all(|p| p[1] > p[0]) || w.windows(2).all(|p| p[1] < p[0])
            }),
            Rule::FourteenAlternating => last(14).is_some_and(|w| {
                let d: Vec<f64> = w.windows(2).map(|p| p[1] - p[0]).collect();
                d.iter().all(|&x| x != 0.0) && d.windows(2).all(|p| (p[0] > 0.0) != (p[1] > 0.0))
            }),
            Rule::FifteenWithin1Sigma => last(15).is_some_and(|w| w.iter().all(|&v| v.abs() < 1.0)),
            Rule::EightBeyond1SigmaBothSides => last(8).is_some_and(|w| {
                w.iter().all(|&v| v.abs() > 1.0)
                    && w.iter().any(|&v| v > 0.0)
                    && w.iter().any(|&v| v < 0.0)
            }),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Beyond3Sigma => "1 point beyond 3σ",
            Rule::TwoOfThreeBeyond2Sigma => "2 of 3 beyond 2σ",
            Rule::FourOfFiveBeyond1Sigma => "4 of 5 beyond 1σ",
            Rule::EightOnOneSide => "8 on one side",
            Rule::SixTrending => "6 trending",
            Rule::FourteenAlternating => "14 alternating",
            Rule::FifteenWithin1Sigma => "15 within 1σ",
            Rule::EightBeyond1SigmaBothSides => "8 beyond 1σ on both sides",
        })
    }
}

/// The rules selected for one parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct RuleSet(BTreeSet<Rule>);

impl RuleSet {
    /// The four Western Electric rules.
    #[must_use]
    pub fn western_electric() -> Self {
        Self::of(&[
            Rule::Beyond3Sigma,
            Rule::TwoOfThreeBeyond2Sigma,
            Rule::FourOfFiveBeyond1Sigma,
            Rule::EightOnOneSide,
        ])
    }

    /// Exactly `rules`.
    #[must_use]
    pub fn of(rules: &[Rule]) -> Self {
        Self(rules.iter().copied().collect())
    }

    /// Whether `rule` is selected.
    #[must_use]
    pub fn contains(&self, rule: Rule) -> bool {
        self.0.contains(&rule)
    }

    /// The selected rules, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = Rule> + '_ {
        self.0.iter().copied()
    }
}

/// The longest window any rule looks at.
pub const WINDOW: usize = 15;

/// The last [`WINDOW`] standardised values of a parameter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleWindow {
    z: VecDeque<f64>,
}

impl RuleWindow {
    /// Adds `z` (finite values only; others are ignored) and returns the selected rules that
    /// fire on the window ending with it.
    pub fn push(&mut self, z: f64, rules: &RuleSet) -> Vec<Rule> {
        if !z.is_finite() {
            return Vec::new();
        }
        if self.z.len() == WINDOW {
            self.z.pop_front();
        }
        self.z.push_back(z);
        let w = self.z.make_contiguous();
        rules.iter().filter(|r| r.fires(w)).collect()
    }

    /// The window, oldest first.
    #[must_use]
    pub fn values(&self) -> Vec<f64> {
        self.z.iter().copied().collect()
    }

    /// Forgets everything (new limits, new σ).
    pub fn clear(&mut self) {
        self.z.clear();
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    use super::*;

    /// Feeds `zs` and returns the index of the first sample on which `rule` fires.
    fn first_fire(rule: Rule, zs: &[f64]) -> Option<usize> {
        let set = RuleSet::of(&[rule]);
        let mut w = RuleWindow::default();
        zs.iter().position(|&z| !w.push(z, &set).is_empty())
    }

    #[test]
    fn each_rule_fires_on_its_pattern_at_the_completing_sample() {
        let calm = [0.2, -0.3, 0.1, -0.2, 0.3, -0.1];
        let case = |pattern: &[f64]| [&calm[..], pattern].concat();
        let cases: [(Rule, Vec<f64>, usize); 8] = [
            (Rule::Beyond3Sigma, case(&[0.5, 3.2]), 7),
            (
                Rule::TwoOfThreeBeyond2Sigma,
                case(&[0.4, 2.3, -0.5, 2.1]),
                9,
            ),
            (
                Rule::FourOfFiveBeyond1Sigma,
                case(&[-1.2, -1.5, 0.2, -1.1, -1.3]),
                10,
            ),
            (
                Rule::EightOnOneSide,
                case(&[0.3, 0.5, 0.1, 0.9, 0.2, 0.4, 0.6, 0.05]),
                13,
            ),
            (
                Rule::SixTrending,
                case(&[-0.9, -0.5, -0.4, 0.1, 0.3, 0.8]),
                11,
            ),
            (
                Rule::FourteenAlternating,
                // A rising prefix (the calm one already alternates), a flat step, then 14.
                [
                    0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.5, -0.5, 0.6, -0.4, 0.5, -0.6, 0.4, -0.5, 0.6,
                    -0.4, 0.5, -0.5, 0.4, -0.6,
                ]
                .to_vec(),
                19,
            ),
            (
                Rule::FifteenWithin1Sigma,
                [&calm[..], &calm[..], &[0.1, 0.2, -0.1][..]].concat(),
                14,
            ),
            (
                Rule::EightBeyond1SigmaBothSides,
                case(&[1.5, -1.4, 1.2, -1.8, 1.1, 1.3, -1.2, -1.6]),
                13,
            ),
        ];
        for (rule, zs, at) in cases {
            assert_eq!(first_fire(rule, &zs), Some(at), "{rule}");
            // One sample short of the pattern: no fire.
            assert_eq!(first_fire(rule, &zs[..at]), None, "{rule} fired early");
        }
    }

    #[test]
    fn same_side_rules_need_the_points_on_one_side() {
        // 2 of 3 beyond 2σ but on opposite sides, 4 of 5 beyond 1σ mixed: no fire.
        assert_eq!(
            first_fire(Rule::TwoOfThreeBeyond2Sigma, &[2.5, -2.5, 0.0, 2.2, -2.1]),
            None
        );
        assert_eq!(
            first_fire(Rule::FourOfFiveBeyond1Sigma, &[1.5, -1.5, 1.2, -1.1, 1.3]),
            None
        );
        assert_eq!(first_fire(Rule::EightOnOneSide, &[0.1; 7]), None);
        assert_eq!(
            first_fire(Rule::Beyond3Sigma, &[f64::NAN, f64::INFINITY, 2.99]),
            None
        );
    }

    #[test]
    fn no_rule_fires_more_than_its_false_alarm_rate_on_in_control_data() {
        // Bounds are about twice each rule's per-sample in-control probability.
        let bounds = [
            (Rule::Beyond3Sigma, 0.0055),
            (Rule::TwoOfThreeBeyond2Sigma, 0.0055),
            (Rule::FourOfFiveBeyond1Sigma, 0.0070),
            (Rule::EightOnOneSide, 0.0160),
            (Rule::SixTrending, 0.0060),
            (Rule::FourteenAlternating, 0.0050),
            (Rule::FifteenWithin1Sigma, 0.0070),
            (Rule::EightBeyond1SigmaBothSides, 0.0010),
        ];
        let n = 100_000;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
        let zs: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        for (rule, bound) in bounds {
            let set = RuleSet::of(&[rule]);
            let mut w = RuleWindow::default();
            let fires = zs.iter().filter(|&&z| !w.push(z, &set).is_empty()).count();
            let rate = fires as f64 / f64::from(n);
            assert!(rate < bound, "{rule}: {rate} ≥ {bound}");
        }
    }

    #[test]
    fn a_rule_not_selected_never_fires() {
        let mut w = RuleWindow::default();
        let set = RuleSet::of(&[Rule::SixTrending]);
        assert!(w.push(9.0, &set).is_empty());
        assert!(RuleSet::western_electric().contains(Rule::EightOnOneSide));
        assert!(!RuleSet::western_electric().contains(Rule::SixTrending));
    }
}
