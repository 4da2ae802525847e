//! Identifiers (fab, tool, lot, reticle, run ids…): validated once, safe everywhere after.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest identifier accepted.
pub const MAX_NAME_LEN: usize = 64;

/// A validated identifier: 1 to [`MAX_NAME_LEN`] ASCII letters, digits, `.`, `_` or `-`.
///
/// Every identifier that crosses the domain's boundary (fab, tool, product, layer, reticle, lot,
/// run, measurement, engineer…) is a `Name`, so it can be put into a tool's job syntax, a log
/// line or a key without escaping. Deserialising validates too.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

/// In the OpenAPI document: a string with the rule [`Name::parse`] checks.
impl utoipa::PartialSchema for Name {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_NAME_LEN))
            .pattern(Some("^[A-Za-z0-9._-]+$"))
            .description(Some(
                "An identifier: 1 to 64 ASCII letters, digits, '.', '_' or '-'",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Name {}

impl Name {
    /// Validates `value` as the identifier called `field` (the field is named in the error).
    ///
    /// # Errors
    /// [`NameError`] when `value` is empty, too long, or has a character outside
    /// `[A-Za-z0-9._-]`.
    pub fn parse(field: &'static str, value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
        let reason = if value.is_empty() {
            Some(NameProblem::Empty)
        } else if value.len() > MAX_NAME_LEN {
            Some(NameProblem::TooLong)
        } else if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            Some(NameProblem::BadCharacter)
        } else {
            None
        };
        match reason {
            None => Ok(Self(value)),
            Some(problem) => Err(NameError {
                field,
                value: value.chars().take(MAX_NAME_LEN).collect(),
                problem,
            }),
        }
    }

    /// The identifier as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse("name", value)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> Self {
        name.0
    }
}

/// What is wrong with an identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameProblem {
    /// It is empty.
    Empty,
    /// It is longer than [`MAX_NAME_LEN`].
    TooLong,
    /// It has a character outside `[A-Za-z0-9._-]`.
    BadCharacter,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "must not be empty",
            Self::TooLong => "is longer than 64 characters",
            Self::BadCharacter => "may only hold letters, digits, '.', '_' and '-'",
        })
    }
}

/// An identifier was rejected; names the field and shows (at most 64 characters of) the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem} (got {value:?})")]
pub struct NameError {
    field: &'static str,
    value: String,
    problem: NameProblem,
}

impl NameError {
    /// The field that holds the bad identifier.
    #[must_use]
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong with it.
    #[must_use]
    pub fn problem(&self) -> NameProblem {
        self.problem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids_and_rejects_the_rest_naming_the_field() {
        assert_eq!(
            Name::parse("lot", "LOT-0042.A_1").unwrap().as_str(),
            "LOT-0042.A_1"
        );
        let e = Name::parse("reticle", "").unwrap_err();
        assert_eq!((e.field(), e.problem()), ("reticle", NameProblem::Empty));
        let e = Name::parse("tool", "a\"b<").unwrap_err();
        assert_eq!(e.problem(), NameProblem::BadCharacter);
        assert!(e.to_string().starts_with("tool "));
        let e = Name::parse("lot", "x".repeat(65)).unwrap_err();
        assert_eq!(e.problem(), NameProblem::TooLong);
        assert!(serde_json::from_str::<Name>("\"a b\"").is_err());
        assert!(serde_json::from_str::<Name>("\"ab\"").is_ok());
    }
}
