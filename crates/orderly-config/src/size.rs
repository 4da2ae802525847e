//! Sizes in bytes as settings take them: `512KiB`, `10MiB`, `1.5GB`, `4096`.
//!
//! Use with `#[serde(with = "orderly_config::size")]` on an integer field (`u64`, `usize`,
//! `u32`…) that holds a number of bytes. Binary units (`KiB`, `MiB`, `GiB`, `TiB`) count in
//! 1024s, decimal ones (`KB`, `MB`, `GB`, `TB`, or `K`, `M`, `G`, `T`) in 1000s, case aside; a
//! bare number is bytes. Parsing is the `bytesize` crate's.
//!
//! ```
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Limits {
//!     #[serde(with = "orderly_config::size")]
//!     body: usize,
//! }
//!
//! let limits: Limits = serde_json::from_str(r#"{ "body": "10MiB" }"#).unwrap();
//! assert_eq!(limits.body, 10 * 1024 * 1024);
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::ser::{Error as _, Serializer};

const EXPECTED: &str = "a size like 512KiB or 10MiB";

/// Deserializes a size from text such as `10MiB`, or from a number of bytes.
pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    deserializer.deserialize_any(SizeVisitor(PhantomData))
}

/// Serializes a size as its number of bytes.
pub fn serialize<S, T>(size: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    T: Copy + TryInto<u64>,
{
    let bytes = (*size)
        .try_into()
        .map_err(|_| S::Error::custom("a size beyond u64"))?;
    serializer.serialize_u64(bytes)
}

struct SizeVisitor<T>(PhantomData<fn() -> T>);

impl<T: TryFrom<u64>> SizeVisitor<T> {
    fn fit<E: de::Error>(bytes: u64, found: Unexpected<'_>) -> Result<T, E> {
        T::try_from(bytes)
            .map_err(|_| E::invalid_value(found, &"a size that fits the setting's integer type"))
    }
}

impl<T: TryFrom<u64>> Visitor<'_> for SizeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        match text.trim().parse::<bytesize::ByteSize>() {
            Ok(size) => Self::fit(size.as_u64(), Unexpected::Str(text)),
            Err(_) => Err(E::custom(format_args!(
                "expected {EXPECTED}, found {text:?}"
            ))),
        }
    }

    fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<T, E> {
        Self::fit(bytes, Unexpected::Unsigned(bytes))
    }

    fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<T, E> {
        match u64::try_from(bytes) {
            Ok(bytes) => self.visit_u64(bytes),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(bytes), &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Deserialize, Serialize)]
    struct Limits {
        #[serde(with = "super")]
        body: u64,
        #[serde(with = "super")]
        header: u16,
    }

    fn limits(json: &str) -> Result<Limits, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_units_and_numbers() {
        let l = limits(r#"{"body": "10MiB", "header": "8 KiB"}"#).unwrap();
        assert_eq!(
            l,
            Limits {
                body: 10 << 20,
                header: 8 << 10
            }
        );
        let l = limits(r#"{"body": "1.5GB", "header": 512}"#).unwrap();
        assert_eq!(l.body, 1_500_000_000);
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            r#"{"body":1500000000,"header":512}"#
        );
    }

    #[test]
    fn says_what_is_wrong() {
        let error = limits(r#"{"body": "lots", "header": 1}"#).unwrap_err();
        assert!(
            error.contains(r#"expected a size like 512KiB or 10MiB, found "lots""#),
            "{error}"
        );
        let error = limits(r#"{"body": 1, "header": "1MiB"}"#).unwrap_err();
        assert!(error.contains("fits the setting's integer type"), "{error}");
    }
}
