//! Bearer tokens and roles. Tokens come from configuration (`FAB_TOKENS`, a secret:
//! `role:token,role:token,…`); a write needs a token whose role allows it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};

use super::AppState;
use super::body::fingerprint;
use super::error::ApiError;

/// What a caller may do; each role may do what the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A tool (scanner, metrology, sensor gateway): sub recipes, metrology, samples.
    Tool,
    /// A process engineer: also recommend mode, configurations, reset and freeze.
    Engineer,
    /// An administrator: everything.
    Admin,
}

impl Role {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "tool" => Some(Self::Tool),
            "engineer" => Some(Self::Engineer),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// Its name in configuration and messages.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Engineer => "engineer",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The accepted tokens and their roles. `Debug` never shows a token.
#[derive(Clone, Default)]
pub struct Tokens {
    by_token: Arc<HashMap<String, Role>>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.by_token.len())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Parses `role:token,role:token,…` (whitespace around entries ignored).
    ///
    /// # Errors
    /// A message naming the entry at fault by position (never its token).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut by_token = HashMap::new();
        for (i, entry) in text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let n = i + 1;
            let (role, token) = entry
                .split_once(':')
                .ok_or_else(|| format!("entry {n} is not role:token"))?;
            let role = Role::parse(role.trim())
                .ok_or_else(|| format!("entry {n}: role must be tool, engineer or admin"))?;
            let token = token.trim();
            if token.len() < 8 {
                return Err(format!(
                    "entry {n}: a token must have at least 8 characters"
                ));
            }
            if by_token.insert(token.to_owned(), role).is_some() {
                return Err(format!("entry {n}: token used twice"));
            }
        }
        Ok(Self {
            by_token: Arc::new(by_token),
        })
    }

    /// Whether no token is configured (every write is then refused).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    fn role(&self, token: &str) -> Option<Role> {
        self.by_token.get(token).copied()
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Its role.
    pub role: Role,
    /// A stable id of its token for records (a fingerprint, never the token).
    pub principal: String,
}

impl Caller {
    /// Refuses the request (403) unless the caller's role is at least `needed`.
    ///
    /// # Errors
    /// 403 naming the role needed.
    pub fn require(&self, needed: Role, what: &str) -> Result<(), ApiError> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{what} needs the {needed} role; this token has {}",
                    self.role
                ),
            )
            .field("Authorization"))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// 401 without a valid `Authorization: Bearer <token>`.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized =
            |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, message).field("Authorization");
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing Authorization: Bearer <token>"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthorized("Authorization must be Bearer <token>"))?;
        let role = state
            .tokens
            .role(token)
            .ok_or_else(|| unauthorized("unknown token"))?;
        Ok(Self {
            role,
            principal: format!("{role}-{}", fingerprint("token", "", token.as_bytes())),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tokens_parse_roles_and_reject_bad_entries_without_showing_them() {
        let tokens = Tokens::parse(" tool:t0k3n-tool , engineer:eng-secret-1").unwrap();
        assert_eq!(tokens.role("t0k3n-tool"), Some(Role::Tool));
        assert_eq!(tokens.role("eng-secret-1"), Some(Role::Engineer));
        assert_eq!(tokens.role("nope"), None);
        let e = Tokens::parse("tool:abcdefgh,boss:supersecret")
            .err()
            .unwrap();
        assert!(e.contains("entry 2") && !e.contains("supersecret"), "{e}");
        assert!(Tokens::parse("tool:short").is_err());
        assert!(Tokens::parse("tool-no-colon").is_err());
        assert!(Tokens::parse("").unwrap().is_empty());
        assert!(!format!("{tokens:?}").contains("t0k3n"));
    }
}
