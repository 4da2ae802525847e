//! A database URL that never shows its password.

use std::fmt;
use std::str::FromStr;

use serde::de::{Deserialize, Deserializer, Error as _};

/// The schemes a [`DatabaseUrl`] accepts.
const SCHEMES: &[&str] = &["postgres", "postgresql", "sqlite"];

/// Query parameters whose values are secrets (libpq's `password` and `sslpassword`).
const SECRET_PARAMETERS: &[&str] = &["password", "sslpassword"];

const MASK: &str = "***";

/// A database URL such as `postgres://app:secret@db:5432/orders` or `sqlite://data/fab.db`.
///
/// Checked when it is read (a URL, with a scheme this crate serves), so a bad `DATABASE_URL` is
/// reported by the configuration, naming the variable, before anything starts. Its `Debug` and
/// `Display` show it with the password masked (`postgres://app:***@db:5432/orders`), as do
/// every log line and error of this crate; [`expose`](DatabaseUrl::expose) gives the real one.
///
/// ```
/// use orderly_sql::DatabaseUrl;
///
/// let url: DatabaseUrl = "postgres://app:hunter2@db:5432/orders".parse().unwrap();
/// assert_eq!(url.to_string(), "postgres://app:***@db:5432/orders");
/// assert_eq!(url.expose(), "postgres://app:hunter2@db:5432/orders");
/// assert!("mysql://db/orders".parse::<DatabaseUrl>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    text: String,
    /// `text` with the password and secret parameters masked.
    redacted: String,
}

/// Why a text is not a [`DatabaseUrl`]; never quotes the text (it may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a database URL (postgres://… or sqlite:…): {reason}")]
pub struct InvalidUrl {
    reason: String,
}

impl DatabaseUrl {
    /// The URL with its password, for the driver; never log it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The URL's scheme, e.g. `postgres` or `sqlite`.
    pub fn scheme(&self) -> &str {
        self.text.split(':').next().unwrap_or_default()
    }

    /// Whether this is an in-memory SQLite database (`sqlite::memory:`, `mode=memory`).
    #[cfg(any(feature = "sqlite", test))]
    pub(crate) fn is_memory(&self) -> bool {
        self.scheme() == "sqlite"
            && (self.text.contains(":memory:") || self.text.contains("mode=memory"))
    }
}

impl FromStr for DatabaseUrl {
    type Err = InvalidUrl;

    fn from_str(text: &str) -> Result<Self, InvalidUrl> {
        let mut url = url::Url::parse(text).map_err(|e| InvalidUrl {
            reason: e.to_string(),
        })?;
        if !SCHEMES.contains(&url.scheme()) {
            return Err(InvalidUrl {
                reason: format!(
                    "the scheme '{}' is not one of {}",
                    url.scheme(),
                    SCHEMES.join(", ")
                ),
            });
        }
        Ok(Self {
            text: text.to_owned(),
            redacted: redact(&mut url),
        })
    }
}

/// The URL with the password and the secret query parameters masked.
fn redact(url: &mut url::Url) -> String {
    if url.password().is_some() {
        // Only URLs that cannot have a password refuse one; this one has one.
        let _ = url.set_password(Some(MASK));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let secret = SECRET_PARAMETERS
                    .iter()
                    .any(|s| key.eq_ignore_ascii_case(s));
                let value = if secret {
                    MASK.into()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // The mask itself is percent-encoded by `url`; show it as written.
    url.as_str().replace("%2A%2A%2A", MASK)
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted)
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    /// Reads a string and checks it; the error never quotes the value.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_masked() {
        let url: DatabaseUrl = "postgres://app:hunter2@db:5432/orders".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://app:***@db:5432/orders");
        assert_eq!(
            format!("{url:?}"),
            "DatabaseUrl(postgres://app:***@db:5432/orders)"
        );
    }

    #[test]
    fn password_parameters_are_masked_and_others_kept() {
        let url: DatabaseUrl = "postgres://db/orders?sslmode=require&password=hunter2"
            .parse()
            .unwrap();
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");
        assert!(shown.contains("password=***"), "{shown}");
    }

    #[test]
    fn sqlite_urls_are_accepted() {
        for text in [
            "sqlite::memory:",
            "sqlite://data/fab.db",
            "sqlite:fab.db?mode=rwc",
        ] {
            let url: DatabaseUrl = text.parse().unwrap();
            assert_eq!(url.scheme(), "sqlite");
            assert_eq!(url.to_string(), text);
        }
        assert!(
            "sqlite::memory:"
                .parse::<DatabaseUrl>()
                .unwrap()
                .is_memory()
        );
        assert!(
            !"sqlite://fab.db"
                .parse::<DatabaseUrl>()
                .unwrap()
                .is_memory()
        );
    }

    #[test]
    fn an_invalid_url_is_not_quoted() {
        let error = "mysql://root:hunter2@db/x"
            .parse::<DatabaseUrl>()
            .unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(error.to_string().contains("'mysql'"), "{error}");
        let error = "hunter2".parse::<DatabaseUrl>().unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
