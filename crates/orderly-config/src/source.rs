//! Where settings come from: files (TOML, YAML, JSON) and environment variables with a prefix,
//! each read into a table of values, one layer per source.
//!
//! The files are parsed here rather than by figment's format providers so that a malformed
//! file is reported by position and message only: the parsers' own messages quote the line,
//! and a line of a configuration file may hold a secret.

use std::path::{Path, PathBuf};

use figment::value::{Dict, Value};
use orderly::Env;

use crate::error::{Problem, ProblemKind};

/// A key path: `["db", "pool_size"]`; list elements are numbered (`["peers", "0"]`).
pub(crate) type Key = Vec<String>;

/// Whether a file must exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Presence {
    Required,
    Optional,
}

/// A file to read settings from.
#[derive(Clone, Debug)]
pub(crate) struct File {
    pub(crate) path: PathBuf,
    pub(crate) presence: Presence,
}

/// One source's settings.
#[derive(Debug)]
pub(crate) struct Layer {
    pub(crate) origin: Origin,
    pub(crate) dict: Dict,
}

/// Where a layer comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    File(PathBuf),
    Env,
}

/// An environment variable that sets a key.
#[derive(Debug)]
pub(crate) struct Variable {
    pub(crate) name: String,
    pub(crate) key: Key,
    /// The value as set, for a retry as text when reading it as a list or table fails.
    pub(crate) raw: String,
    /// Whether the value was read as a list or table (it looked like `[…]` or `{…}`).
    pub(crate) structured: bool,
}

/// What the files held when they were read: a hash of each one's bytes, `None` for a file that
/// was not there or could not be read. Equal fingerprints, equal files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fingerprint(Vec<Option<u64>>);

impl Fingerprint {
    /// Reads every file now.
    pub(crate) fn of(files: &[File]) -> Self {
        Self(
            files
                .iter()
                .map(|f| std::fs::read(&f.path).ok().map(|b| hash(&b)))
                .collect(),
        )
    }
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// Every source, read: the layers from lowest to highest precedence (files in order, then the
/// environment), and what could not be read.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    pub(crate) layers: Vec<Layer>,
    /// What the files held, as read for these layers.
    pub(crate) fingerprint: Fingerprint,
    pub(crate) variables: Vec<Variable>,
    /// Files that cannot be read or parsed.
    pub(crate) problems: Vec<Problem>,
    /// Variables with the prefix whose names are no key (`FAB_DB____X`).
    pub(crate) unknown: Vec<Problem>,
}

impl Sources {
    /// Reads every file, then the variables named `{prefix}_…` (all variables when the prefix
    /// is empty), nested at `__`: `FAB_DB__POOL_SIZE` sets `db.pool_size`.
    pub(crate) fn read(prefix: &str, files: &[File], env: &Env) -> Self {
        let mut sources = Sources::default();
        for file in files {
            let (read, hash) = read_file(file);
            sources.fingerprint.0.push(hash);
            match read {
                Ok(Some(dict)) => sources.layers.push(Layer {
                    origin: Origin::File(file.path.clone()),
                    dict,
                }),
                Ok(None) => {}
                Err(problem) => sources.problems.push(problem),
            }
        }
        let head = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}_")
        };
        let mut dict = Dict::new();
        for (name, raw) in env.vars() {
            let Some(rest) = name.strip_prefix(&head).filter(|rest| !rest.is_empty()) else {
                continue;
            };
            let key: Key = rest
                .to_ascii_lowercase()
                .split("__")
                .map(str::to_owned)
                .collect();
            if key.iter().any(String::is_empty) {
                sources.unknown.push(
                    Problem::new(
                        ProblemKind::Unknown,
                        "not a setting name (nested keys are separated by one `__`)",
                    )
                    .in_variable(name),
                );
                continue;
            }
            let (value, structured) = env_value(&raw);
            insert(&mut dict, &key, value);
            sources.variables.push(Variable {
                name,
                key,
                raw,
                structured,
            });
        }
        sources.layers.push(Layer {
            origin: Origin::Env,
            dict,
        });
        sources
    }

    /// The variable that sets `key` or a list or table around it.
    pub(crate) fn variable(&self, key: &[String]) -> Option<&Variable> {
        self.variables
            .iter()
            .filter(|v| key.starts_with(&v.key))
            .max_by_key(|v| v.key.len())
    }
}

/// A variable's value: a list or table when it looks like one (`[a, b]`, `{k = v}`, figment's
/// syntax), otherwise text. Numbers and booleans are read from text where a setting takes
/// them, so `FAB_PASSWORD=12345` stays a string for a string setting.
fn env_value(raw: &str) -> (Value, bool) {
    if raw.trim_start().starts_with(['[', '{']) {
        let value: Value = raw.parse().unwrap_or_else(|never| match never {});
        if matches!(value, Value::Array(..) | Value::Dict(..)) {
            return (value, true);
        }
    }
    (Value::from(raw.to_owned()), false)
}

/// The formats a file can have, known by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Toml,
    Yaml,
    Json,
}

impl Format {
    fn of(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Parses a file's text into a table; the error says where and why, never quoting it.
    fn parse(self, text: &str) -> Result<Dict, String> {
        if text.trim().is_empty() {
            return Ok(Dict::new());
        }
        match self {
            Format::Toml => toml::from_str::<Dict>(text).map_err(|e| {
                let at = e
                    .span()
                    .map(|span| position(text, span.start))
                    .unwrap_or_default();
                format!("not valid TOML{at}: {}", e.message().trim_end())
            }),
            Format::Yaml => {
                let value: serde_norway::Value =
                    serde_norway::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
                match value {
                    serde_norway::Value::Mapping(_) => serde_norway::from_value(value)
                        .map_err(|e| format!("not a table of settings: {e}")),
                    serde_norway::Value::Null => Ok(Dict::new()),
                    _ => Err("not a table of settings (its top level is not a mapping)".into()),
                }
            }
            Format::Json => {
                let value: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
                if !value.is_object() {
                    return Err("not a table of settings (its top level is not an object)".into());
                }
                serde_json::from_value(value).map_err(|e| format!("not a table of settings: {e}"))
            }
        }
    }
}

/// ` at line L, column C` for a byte offset into `text`.
fn position(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(" at line {line}, column {column}")
}

/// Reads one file (`None` when an optional file does not exist), and hashes what it read.
fn read_file(file: &File) -> (Result<Option<Dict>, Problem>, Option<u64>) {
    let path = &file.path;
    let problem = |kind, detail: String| Problem::new(kind, detail).in_file(path);
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound && file.presence == Presence::Optional =>
        {
            return (Ok(None), None);
        }
        Err(e) => {
            let detail = format!("cannot be read: {e}");
            return (Err(problem(ProblemKind::Unreadable, detail)), None);
        }
    };
    let hash = Some(hash(&bytes));
    let Some(format) = Format::of(path) else {
        let detail = "unknown format: name it *.toml, *.yaml, *.yml or *.json".into();
        return (Err(problem(ProblemKind::Unreadable, detail)), hash);
    };
    let parsed = match String::from_utf8(bytes) {
        Ok(text) => format.parse(&text).map(Some),
        Err(_) => Err("not valid UTF-8 text".into()),
    };
    (
        parsed.map_err(|detail| problem(ProblemKind::Malformed, detail)),
        hash,
    )
}

/// The value at `key`, through tables and lists.
pub(crate) fn get<'a>(dict: &'a Dict, key: &[String]) -> Option<&'a Value> {
    let (first, rest) = key.split_first()?;
    let mut value = dict.get(first)?;
    for segment in rest {
        value = match value {
            Value::Dict(_, inner) => inner.get(segment)?,
            Value::Array(_, items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Sets `key` to `value`, making the tables on the way (replacing what is not one).
pub(crate) fn insert(dict: &mut Dict, key: &[String], value: Value) {
    let Some((first, rest)) = key.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert(first.clone(), value);
        return;
    }
    let entry = dict
        .entry(first.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    if !matches!(entry, Value::Dict(..)) {
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, inner) = entry {
        insert(inner, rest, value);
    }
}

/// Removes `key`; a key inside a list removes the whole list. Whether anything was removed.
pub(crate) fn remove(dict: &mut Dict, key: &[String]) -> bool {
    let Some((first, rest)) = key.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return dict.remove(first).is_some();
    }
    match dict.get_mut(first) {
        Some(Value::Dict(_, inner)) => remove(inner, rest),
        Some(Value::Array(..)) => dict.remove(first).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dotted: &str) -> Key {
        dotted.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn variables_nest_at_double_underscores_and_keep_their_names() {
        let env = Env::from_pairs([
            ("FAB_DB__POOL_SIZE", "10"),
            ("FAB_NAME", "fab"),
            ("FAB_PEERS", "[a, b]"),
            ("FAB_DB____X", "1"),
            ("OTHER_NAME", "no"),
            ("FAB_", "no"),
        ]);
        let sources = Sources::read("FAB", &[], &env);
        let dict = &sources.layers[0].dict;
        assert_eq!(
            get(dict, &key("db.pool_size")),
            Some(&Value::from("10".to_owned()))
        );
        assert_eq!(
            get(dict, &key("peers.1")),
            Some(&Value::from("b".to_owned()))
        );
        assert!(get(dict, &key("other_name")).is_none());
        assert_eq!(
            sources.variable(&key("db.pool_size")).map(|v| &*v.name),
            Some("FAB_DB__POOL_SIZE")
        );
        assert_eq!(
            sources.variable(&key("peers.0")).map(|v| &*v.name),
            Some("FAB_PEERS")
        );
        assert_eq!(sources.unknown.len(), 1);
        assert_eq!(sources.unknown[0].variable(), Some("FAB_DB____X"));
    }

    #[test]
    fn text_that_looks_structured_but_is_not_stays_text() {
        assert_eq!(env_value("{abc}"), (Value::from("{abc}".to_owned()), false));
        assert_eq!(env_value("12345"), (Value::from("12345".to_owned()), false));
        assert!(env_value("[1, 2]").1);
    }

    #[test]
    fn a_malformed_file_is_located_without_quoting_it() {
        let error = Format::Toml.parse("a = 1\npassword hunter2\n").unwrap_err();
        assert!(
            error.starts_with("not valid TOML at line 2, column 10"),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
        let error = Format::Yaml.parse("hunter2").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        let error = Format::Json.parse("{\"a\": hunter2}").unwrap_err();
        assert!(error.contains("line 1 column 7"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        assert_eq!(Format::Yaml.parse("  \n"), Ok(Dict::new()));
    }

    #[test]
    fn removing_inside_a_list_removes_the_list() {
        let mut dict = Dict::new();
        insert(&mut dict, &key("a.b"), Value::from(1u8));
        insert(
            &mut dict,
            &key("l"),
            Value::from(vec![Value::from(1u8), Value::from(2u8)]),
        );
        assert!(remove(&mut dict, &key("l.1")));
        assert!(get(&dict, &key("l")).is_none());
        assert!(remove(&mut dict, &key("a.b")));
        assert!(!remove(&mut dict, &key("a.b")));
    }
}
