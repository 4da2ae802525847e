//! A value that is never shown: not in Debug, Display, logs, events or error messages.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _};

/// A setting whose value is never shown: its `Debug` and `Display` print `[redacted]`, and a
/// value that does not deserialize is reported without being quoted. Read it with
/// [`expose`](Secret::expose) where it is used, and nowhere else.
///
/// It has no `Serialize`, so settings that hold one cannot be dumped with it by accident.
///
/// ```
/// use orderly_config::Secret;
///
/// let password = Secret::new(String::from("hunter2"));
/// assert_eq!(format!("{password:?} {password}"), "[redacted] [redacted]");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value; use it where it is needed (a connection string, a header), never to log it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The value, by value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

const REDACTED: &str = "[redacted]";

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    /// Deserializes `T`; on failure the error names the expected type only, since serde's own
    /// message would quote the value.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret).map_err(|_| {
            D::Error::custom(format_args!(
                "expected {} (a secret: the value found is not shown)",
                type_name::<T>()
            ))
        })
    }
}

/// `String` for `alloc::string::String`, `Vec<u8>` for `alloc::vec::Vec<u8>`.
fn type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut short = String::with_capacity(full.len());
    for part in full.split_inclusive(['<', '>', ',', ' ', '(', ')', '[', ']', ';']) {
        let (path, delimiter) = match part.char_indices().last() {
            Some((i, c)) if "<>, ()[];".contains(c) => (&part[..i], &part[i..]),
            _ => (part, ""),
        };
        short.push_str(path.rsplit("::").next().unwrap_or(path));
        short.push_str(delimiter);
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_short() {
        assert_eq!(type_name::<String>(), "String");
        assert_eq!(type_name::<Vec<String>>(), "Vec<String>");
        assert_eq!(type_name::<u32>(), "u32");
        assert_eq!(
            type_name::<std::collections::HashMap<String, u8>>(),
            "HashMap<String, u8>"
        );
    }

    #[test]
    fn a_value_that_does_not_fit_is_not_quoted() {
        let error = serde_json::from_str::<Secret<u32>>("\"hunter2\"").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(error.to_string().contains("expected u32"), "{error}");
    }
}

/// `url` with the password of its user info replaced by `***`, for errors and logs:
/// `amqp://guest:s3cret@host/vhost` → `amqp://guest:***@host/vhost`. A URL without a
/// password, or a string that is not a URL, is returned as it is.
///
/// ```
/// assert_eq!(
///     orderly_config::redact_url("postgres://app:hunter2@db:5432/app"),
///     "postgres://app:***@db:5432/app"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url as redact;

    #[test]
    fn redacts_the_password_and_keeps_the_rest() {
        assert_eq!(
            redact("amqp://guest:s3cr%40t@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1:5672"), "amqp://127.0.0.1:5672");
        assert_eq!(redact("amqp://user@host/v"), "amqp://user@host/v");
        assert_eq!(redact("not a url"), "not a url");
        assert_eq!(redact("amqps://a:b@h/x@y"), "amqps://a:***@h/x@y");
    }
}
