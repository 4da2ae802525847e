//! Deserializing the layered settings into the user's type, reporting every problem at once.
//!
//! figment merges the layers (a key in a later layer overrides the same key in an earlier one,
//! tables merge key by key) and deserializes the result, but serde stops at the first error. To
//! report them all, extraction runs again after each error with its cause out of the way:
//!
//! - a value that does not fit is reported and removed from every layer; the setting's default,
//!   if it has one, then applies (a value inside a list removes the whole list, so within a
//!   list only the first problem is reported);
//! - a variable read as a list or table (`[…]`, `{…}`) that does not fit is first tried again as
//!   the text it is, and reported only if that does not fit either;
//! - a missing setting gets a placeholder: first an empty table (if the setting is a table, its
//!   own missing keys are reported instead of it), else, once the error says what the setting
//!   expects, the text `0` (which fits numbers, booleans, text and durations), the first
//!   variant of an enum, an empty list, empty text;
//! - an error at or below a key already reported is its consequence and is not reported again.
//!
//! Extraction is deterministic (tables are ordered maps, and serde visits keys in that order),
//! so an error that comes after a placeholder tells whether the placeholder fit. The loop ends
//! when extraction succeeds or nothing more can be taken out of the way (a placeholder that
//! nothing fits; an error at the root), and after at most [`ROUNDS`] extractions. Unknown keys
//! are found on the successful extraction with `serde_ignored`.

use std::path::PathBuf;

use figment::error::Kind;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::{Deserialize, DeserializeOwned, Deserializer};

use crate::error::{Problem, ProblemKind};
use crate::source::{self, Key, Origin, Sources};

/// At most this many extractions per load: more than any real set of settings needs.
const ROUNDS: usize = 1000;

/// Settings that deserialized, and the unknown keys that strict mode would reject.
#[derive(Debug)]
pub(crate) struct Extracted<T> {
    pub(crate) value: T,
    pub(crate) unknown: Vec<Problem>,
}

/// Whether unknown keys are problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnknownKeys {
    Warn,
    Reject,
}

/// What a missing setting's problem suggests: the variable that would set it, and the files.
#[derive(Debug)]
pub(crate) struct Hint<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) files: Vec<PathBuf>,
}

impl Hint<'_> {
    /// `FAB_DB__POOL_SIZE` for `db.pool_size`.
    fn variable(&self, key: &[String]) -> String {
        let nested = key.join("__").to_ascii_uppercase();
        if self.prefix.is_empty() {
            nested
        } else {
            format!("{}_{nested}", self.prefix)
        }
    }
}

/// Deserializes `T` from the sources; every problem, or the settings.
pub(crate) fn extract<T: DeserializeOwned>(
    sources: Sources,
    hint: &Hint<'_>,
    unknown_keys: UnknownKeys,
) -> Result<Extracted<T>, Vec<Problem>> {
    let mut run = Run {
        problems: sources.problems.clone(),
        sources,
        placeholders: Dict::new(),
        settled: Vec::new(),
        retried: Vec::new(),
        pending: Pending::None,
        hint,
    };
    for _ in 0..ROUNDS {
        match run.figment().extract_lossy::<Checked<T>>() {
            Ok(checked) => return run.finish(checked, unknown_keys),
            Err(errors) => {
                for error in errors {
                    if run.on_error(error) == Step::Stop {
                        return Err(run.problems);
                    }
                }
            }
        }
    }
    Err(run.problems)
}

/// `T`, and the keys deserializing it ignored.
struct Checked<T> {
    value: T,
    ignored: Vec<Key>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut ignored = Vec::new();
        let value = serde_ignored::deserialize(deserializer, |path| ignored.push(key_of(&path)))?;
        Ok(Self { value, ignored })
    }
}

fn key_of(path: &serde_ignored::Path<'_>) -> Key {
    use serde_ignored::Path;
    match path {
        Path::Root => Key::new(),
        Path::Seq { parent, index } => {
            let mut key = key_of(parent);
            key.push(index.to_string());
            key
        }
        Path::Map { parent, key: name } => {
            let mut key = key_of(parent);
            key.push(name.clone());
            key
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_of(parent),
    }
}

/// One layer, handed to figment.
struct Layer<'a> {
    name: String,
    origin: Option<&'a Origin>,
    dict: &'a Dict,
}

impl Provider for Layer<'_> {
    fn metadata(&self) -> Metadata {
        let metadata = Metadata::named(self.name.clone());
        match self.origin {
            Some(Origin::File(path)) => metadata.source(figment::Source::File(path.clone())),
            _ => metadata,
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Continue,
    Stop,
}

/// What the last change to the layers was, so the next extraction tells whether it worked.
#[derive(Debug)]
enum Pending {
    None,
    /// A placeholder stands in for a missing setting.
    Probe(Probe),
    /// A variable read as a list or table is being tried as text; `problem` is reported if that
    /// does not fit either.
    AsText {
        key: Key,
        problem: Problem,
    },
}

#[derive(Debug)]
struct Probe {
    key: Key,
    /// The index of the setting's problem in `problems`, once reported here.
    problem: Option<usize>,
    /// How many leaf placeholders were tried; 0 while the empty table stands.
    tried: usize,
    /// Whether the first variant of an enum was tried.
    variant: bool,
    /// Whether the setting's problem is reported (or it is a consequence of one that is).
    reported: bool,
}

/// Leaf placeholders, in the order they are tried.
fn leaf(index: usize) -> Option<Value> {
    match index {
        0 => Some(Value::from("0".to_owned())),
        1 => Some(Value::from(Vec::<Value>::new())),
        2 => Some(Value::from(String::new())),
        _ => None,
    }
}

struct Run<'a> {
    sources: Sources,
    placeholders: Dict,
    problems: Vec<Problem>,
    /// Keys whose problem is reported: errors at or below them are its consequences.
    settled: Vec<Key>,
    /// Variables already tried as text.
    retried: Vec<Key>,
    pending: Pending,
    hint: &'a Hint<'a>,
}

impl Run<'_> {
    fn figment(&self) -> Figment {
        let layers = self.sources.layers.iter().map(|layer| Layer {
            name: match &layer.origin {
                Origin::File(path) => path.display().to_string(),
                Origin::Env => "environment".to_owned(),
            },
            origin: Some(&layer.origin),
            dict: &layer.dict,
        });
        let placeholders = Layer {
            name: "placeholders".to_owned(),
            origin: None,
            dict: &self.placeholders,
        };
        layers
            .chain([placeholders])
            .fold(Figment::new(), Figment::merge)
    }

    fn on_error(&mut self, error: figment::Error) -> Step {
        let mut at = error.path.clone();
        if let Kind::MissingField(field) = &error.kind {
            at.push(field.to_string());
        }

        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::Probe(probe) if at == probe.key => {
                return self.next_placeholder(probe, &error);
            }
            Pending::Probe(probe) => {
                if probe.tried == 0 && !probe.reported && !at.starts_with(&probe.key) {
                    // The empty table fit: the setting is a table that nothing gave.
                    self.missing(&probe.key, Some("a table"));
                }
            }
            Pending::AsText { key, problem } if at.starts_with(&key) => {
                self.report(&key, problem);
                return self.remove(&key);
            }
            Pending::AsText { .. } | Pending::None => {}
        }

        let consequence = self.settled.iter().any(|key| at.starts_with(key));
        if matches!(error.kind, Kind::MissingField(_)) {
            insert_placeholder(&mut self.placeholders, &at, Value::from(Dict::new()));
            self.pending = Pending::Probe(Probe {
                key: at,
                problem: None,
                tried: 0,
                variant: false,
                reported: consequence,
            });
            return Step::Continue;
        }
        if consequence {
            return self.remove(&at);
        }
        let problem = self.problem(&at, &error.kind);
        if let Some(variable) = self.sources.variable(&at).filter(|v| {
            v.structured && !self.retried.contains(&v.key) && self.owner(&at) == Some(Origin::Env)
        }) {
            let (key, text) = (variable.key.clone(), Value::from(variable.raw.clone()));
            if let Some(env) = self.sources.layers.last_mut() {
                source::insert(&mut env.dict, &key, text);
            }
            self.retried.push(key.clone());
            self.pending = Pending::AsText { key, problem };
            return Step::Continue;
        }
        self.report(&at, problem);
        self.remove(&at)
    }

    /// The placeholder at `probe.key` did not fit: try the next one.
    fn next_placeholder(&mut self, mut probe: Probe, error: &figment::Error) -> Step {
        if !probe.reported {
            // A leaf: the error says what it expects.
            let expected = match &error.kind {
                Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
                    Some(expected.as_str())
                }
                _ => None,
            };
            self.missing(&probe.key, expected);
            probe.problem = Some(self.problems.len() - 1);
            probe.reported = true;
        }
        let value = match &error.kind {
            Kind::UnknownVariant(_, variants @ [first, ..]) if !probe.variant => {
                // An enum: its variants say better what it expects.
                if let Some(problem) = probe.problem.and_then(|i| self.problems.get_mut(i)) {
                    problem.set_detail(format!("expected {}", one_of(variants)));
                }
                probe.variant = true;
                Value::from((*first).to_owned())
            }
            _ => {
                probe.tried += 1;
                match leaf(probe.tried - 1) {
                    Some(value) => value,
                    None => return Step::Stop,
                }
            }
        };
        insert_placeholder(&mut self.placeholders, &probe.key, value);
        self.pending = Pending::Probe(probe);
        Step::Continue
    }

    fn finish<T>(
        mut self,
        checked: Checked<T>,
        unknown_keys: UnknownKeys,
    ) -> Result<Extracted<T>, Vec<Problem>> {
        if let Pending::Probe(probe) = std::mem::replace(&mut self.pending, Pending::None)
            && probe.tried == 0
            && !probe.reported
        {
            self.missing(&probe.key, Some("a table"));
        }
        let mut unknown = std::mem::take(&mut self.sources.unknown);
        for key in &checked.ignored {
            let problem = Problem::new(ProblemKind::Unknown, "unknown setting");
            unknown.push(self.locate(problem, key));
        }
        match unknown_keys {
            UnknownKeys::Reject => self.problems.append(&mut unknown),
            UnknownKeys::Warn => {}
        }
        if self.problems.is_empty() {
            Ok(Extracted {
                value: checked.value,
                unknown,
            })
        } else {
            Err(self.problems)
        }
    }

    fn report(&mut self, key: &[String], problem: Problem) {
        self.problems.push(problem);
        self.settled.push(key.to_vec());
    }

    fn missing(&mut self, key: &[String], expected: Option<&str>) {
        let detail = expected
            .map(|e| format!("expected {e}"))
            .unwrap_or_default();
        let problem = Problem::new(ProblemKind::Missing, detail)
            .in_variable(self.hint.variable(key))
            .at_key(key.join("."))
            .settable_in(self.hint.files.clone());
        self.report(key, problem);
    }

    /// Removes `key` from every layer; `Stop` when it was in none (nothing to take away).
    fn remove(&mut self, key: &[String]) -> Step {
        let mut removed = false;
        for layer in &mut self.sources.layers {
            removed |= source::remove(&mut layer.dict, key);
        }
        if removed { Step::Continue } else { Step::Stop }
    }

    /// The layer whose value is at `key`: the last one that has it, unless it is a table that
    /// several layers make up.
    fn owner(&self, key: &[String]) -> Option<Origin> {
        if key.is_empty() {
            return None;
        }
        let mut holders = self
            .sources
            .layers
            .iter()
            .rev()
            .filter_map(|layer| Some((layer, source::get(&layer.dict, key)?)));
        let (top, value) = holders.next()?;
        let shared = matches!(value, Value::Dict(..)) && holders.next().is_some();
        (!shared).then(|| top.origin.clone())
    }

    fn problem(&self, key: &[String], kind: &Kind) -> Problem {
        let (kind, detail) = describe(kind);
        self.locate(Problem::new(kind, detail), key)
    }

    /// Names where `key`'s value comes from: its variable, or its file.
    fn locate(&self, problem: Problem, key: &[String]) -> Problem {
        let problem = problem.at_key(key.join("."));
        match self.owner(key) {
            Some(Origin::Env) => match self.sources.variable(key) {
                Some(variable) => problem.in_variable(variable.name.clone()),
                None => problem.in_variable(self.hint.variable(key)),
            },
            Some(Origin::File(path)) => problem.in_file(path),
            None => problem,
        }
    }
}

/// Places a placeholder, replacing the one at the same key.
fn insert_placeholder(placeholders: &mut Dict, key: &[String], value: Value) {
    source::insert(placeholders, key, value);
}

/// What kind of problem an error is, and what was expected and found.
fn describe(kind: &Kind) -> (ProblemKind, String) {
    let detail = match kind {
        Kind::InvalidType(found, expected) | Kind::InvalidValue(found, expected) => {
            format!("expected {expected}, found {found}")
        }
        Kind::InvalidLength(found, expected) => {
            format!("expected {expected}, found {found} item(s)")
        }
        Kind::UnknownVariant(found, expected) => {
            format!("expected {}, found {found:?}", one_of(expected))
        }
        Kind::UnknownField(_, expected) => {
            return (
                ProblemKind::Unknown,
                format!("unknown setting; expected {}", one_of(expected)),
            );
        }
        Kind::MissingField(_) => return (ProblemKind::Missing, String::new()),
        Kind::DuplicateField(field) => format!("`{field}` is given twice"),
        Kind::Message(message) => message.clone(),
        other => other.to_string(),
    };
    (ProblemKind::Invalid, detail)
}

fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing".to_owned(),
        [one] => format!("`{one}`"),
        many => {
            let quoted: Vec<String> = many.iter().map(|n| format!("`{n}`")).collect();
            format!("one of {}", quoted.join(", "))
        }
    }
}
