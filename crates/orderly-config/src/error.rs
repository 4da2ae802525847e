//! What can be wrong with the settings, each problem naming where it is.

use std::fmt;
use std::path::{Path, PathBuf};

/// The settings could not be loaded: every [`Problem`] found, each naming its variable or its
/// file and key.
///
/// A component that fails to start with it (wrapped in [`orderly::InvalidConfig`], as
/// [`Config`](crate::Config) does) ends the process with exit code 78.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

impl ConfigError {
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        Self { problems }
    }

    /// Every problem, in a stable order: files that cannot be read, then the settings in the
    /// order they were checked, then unknown keys.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// What kind of problem a [`Problem`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A required setting has no value anywhere.
    Missing,
    /// A value is there but is not what the setting takes (wrong type, unparsable duration…).
    Invalid,
    /// A key that is no setting (reported in strict mode; warned about otherwise).
    Unknown,
    /// A file could not be read: missing (when required), unreadable, or of an unknown format.
    Unreadable,
    /// A file is not valid TOML, YAML or JSON.
    Malformed,
}

/// One thing wrong with the settings: where (a variable, or a file and a key), what was
/// expected and what was found. A secret's value is never part of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    kind: ProblemKind,
    variable: Option<String>,
    file: Option<PathBuf>,
    key: Option<String>,
    detail: String,
    /// For a missing setting: the files that could have set it.
    files: Vec<PathBuf>,
}

impl Problem {
    pub(crate) fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            variable: None,
            file: None,
            key: None,
            detail: detail.into(),
            files: Vec::new(),
        }
    }

    pub(crate) fn in_variable(mut self, variable: impl Into<String>) -> Self {
        self.variable = Some(variable.into());
        self
    }

    pub(crate) fn in_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub(crate) fn at_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.key = (!key.is_empty()).then_some(key);
        self
    }

    pub(crate) fn set_detail(&mut self, detail: String) {
        self.detail = detail;
    }

    pub(crate) fn settable_in(mut self, files: Vec<PathBuf>) -> Self {
        self.files = files;
        self
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// The environment variable at fault, or for a missing setting the one that would set it.
    pub fn variable(&self) -> Option<&str> {
        self.variable.as_deref()
    }

    /// The file at fault.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The setting's key, dotted (`db.pool_size`); `None` for a problem with a whole file.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What was expected and what was found, in words.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.as_deref().unwrap_or("settings");
        if self.kind == ProblemKind::Missing {
            write!(f, "{key}: missing")?;
            if !self.detail.is_empty() {
                write!(f, " ({})", self.detail)?;
            }
            if let Some(variable) = &self.variable {
                write!(f, "; set {variable}")?;
                let last = self.files.len().saturating_sub(1);
                for (i, file) in self.files.iter().enumerate() {
                    match i {
                        0 => write!(f, " or `{key}` in ")?,
                        i if i == last => f.write_str(" or ")?,
                        _ => f.write_str(", ")?,
                    }
                    write!(f, "{}", file.display())?;
                }
            }
            return Ok(());
        }
        match (&self.variable, &self.file) {
            (Some(variable), _) => {
                write!(f, "{variable}: ")?;
                // A key inside a variable's list or table, or an unknown one: say which.
                if let Some(key) = &self.key
                    && (self.kind == ProblemKind::Unknown || !variable_names(variable, key))
                {
                    write!(f, "{key}: ")?;
                }
            }
            (None, Some(file)) => {
                write!(f, "{}: ", file.display())?;
                if let Some(key) = &self.key {
                    write!(f, "{key}: ")?;
                }
            }
            (None, None) => write!(f, "{key}: ")?,
        }
        f.write_str(&self.detail)
    }
}

/// Whether `variable` (`FAB_DB__POOL_SIZE`) names exactly `key` (`db.pool_size`).
fn variable_names(variable: &str, key: &str) -> bool {
    let nested = key.replace('.', "__");
    variable.len() > nested.len()
        && variable
            .get(variable.len() - nested.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(&nested))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_names_its_culprit() {
        let invalid = Problem::new(ProblemKind::Invalid, "expected u16, found string \"ten\"")
            .in_variable("FAB_DB__POOL_SIZE")
            .at_key("db.pool_size");
        assert_eq!(
            invalid.to_string(),
            "FAB_DB__POOL_SIZE: expected u16, found string \"ten\""
        );

        let inside = Problem::new(ProblemKind::Invalid, "expected u16, found string \"x\"")
            .in_variable("FAB_PORTS")
            .at_key("ports.1");
        assert_eq!(
            inside.to_string(),
            "FAB_PORTS: ports.1: expected u16, found string \"x\""
        );

        let in_file = Problem::new(ProblemKind::Invalid, "expected u16, found string \"ten\"")
            .in_file("config.toml")
            .at_key("db.pool_size");
        assert_eq!(
            in_file.to_string(),
            "config.toml: db.pool_size: expected u16, found string \"ten\""
        );

        let missing = Problem::new(ProblemKind::Missing, "expected a string")
            .in_variable("FAB_DB__URL")
            .at_key("db.url")
            .settable_in(vec!["config.toml".into(), "local.toml".into()]);
        assert_eq!(
            missing.to_string(),
            "db.url: missing (expected a string); set FAB_DB__URL or `db.url` in config.toml or \
             local.toml"
        );

        let unknown = Problem::new(ProblemKind::Unknown, "unknown setting")
            .in_variable("FAB_DB__POOLSIZE")
            .at_key("db.poolsize");
        assert_eq!(
            unknown.to_string(),
            "FAB_DB__POOLSIZE: db.poolsize: unknown setting"
        );

        let error = ConfigError::new(vec![invalid, missing]);
        let text = error.to_string();
        assert!(text.starts_with("invalid configuration (2 problems):\n  - FAB_DB__POOL_SIZE"));
    }
}
