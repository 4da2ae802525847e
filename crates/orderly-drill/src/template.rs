//! The request the load generator sends, as a template: `{id}` in its path, header values and
//! body becomes the request's drill id, so a service that wants a unique key per request (an
//! `Idempotency-Key`, a lot name) gets one.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde::{Serialize, Serializer};

/// What a template writes in place of the request's id.
pub(crate) const ID: &str = "{id}";

/// Which statuses count as a successful request; any other is a failure of kind `status`
/// (`status-409` in the report).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpectedStatus {
    /// Any 2xx (`--expect-status 2xx`, the default).
    #[default]
    Success,
    /// One of these (`--expect-status 200,201`).
    AnyOf(Vec<StatusCode>),
}

impl ExpectedStatus {
    /// Whether `status` is a success.
    pub fn matches(&self, status: StatusCode) -> bool {
        match self {
            Self::Success => status.is_success(),
            Self::AnyOf(codes) => codes.contains(&status),
        }
    }
}

impl FromStr for ExpectedStatus {
    type Err = String;

    /// `2xx`, or statuses separated by commas (`200,201`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("2xx") {
            return Ok(Self::Success);
        }
        let codes = text
            .split(',')
            .map(|code| {
                code.trim()
                    .parse::<u16>()
                    .ok()
                    .and_then(|code| StatusCode::from_u16(code).ok())
                    .ok_or_else(|| format!("'{code}' is not an HTTP status (100-999)"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::AnyOf(codes))
    }
}

impl fmt::Display for ExpectedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => f.write_str("2xx"),
            Self::AnyOf(codes) => {
                let codes: Vec<&str> = codes.iter().map(StatusCode::as_str).collect();
                f.write_str(&codes.join(","))
            }
        }
    }
}

impl Serialize for ExpectedStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A request header given as `Name: value` (the value may hold `{id}`).
///
/// Parsing checks only the shape; the name and value are checked with the other options, when
/// the drill is built. The value of a credential header (`Authorization`, `Cookie`…) is
/// redacted in the report and in `Debug`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderTemplate {
    /// The header's name.
    pub name: String,
    /// Its value, `{id}` standing for the request's id.
    pub value: String,
}

impl HeaderTemplate {
    /// A header `name: value`.
    #[must_use]
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    /// Whether the value is a credential, never written out.
    fn is_sensitive(&self) -> bool {
        [
            "authorization",
            "proxy-authorization",
            "cookie",
            "x-api-key",
        ]
        .iter()
        .any(|name| self.name.eq_ignore_ascii_case(name))
    }

    /// The value as it may be shown.
    fn shown_value(&self) -> &str {
        if self.is_sensitive() {
            "<redacted>"
        } else {
            &self.value
        }
    }
}

impl fmt::Debug for HeaderTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", format!("{}: {}", self.name, self.shown_value()))
    }
}

impl Serialize for HeaderTemplate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}: {}", self.name, self.shown_value()))
    }
}

impl FromStr for HeaderTemplate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok(Self::new(name.trim(), value.trim()))
            }
            _ => Err(format!("'{text}' is not 'Name: value'")),
        }
    }
}

/// Text with `{id}` holes, split once so that each request only concatenates.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Text {
    /// The text between the holes: one more piece than there are holes.
    pieces: Vec<String>,
}

impl Text {
    fn new(text: &str) -> Self {
        Self {
            pieces: text.split(ID).map(str::to_owned).collect(),
        }
    }

    fn render(&self, id: u64) -> String {
        let id = id.to_string();
        let mut out = String::with_capacity(
            self.pieces.iter().map(String::len).sum::<usize>() + id.len() * self.pieces.len(),
        );
        for (n, piece) in self.pieces.iter().enumerate() {
            if n > 0 {
                out.push_str(&id);
            }
            out.push_str(piece);
        }
        out
    }
}

/// A validated request template (its `Debug` shows no header values: they may be credentials).
#[derive(Clone)]
pub(crate) struct Template {
    pub(crate) method: Method,
    path: Text,
    headers: Vec<(HeaderName, Text)>,
    body: Option<Text>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&HeaderName> = self.headers.iter().map(|(name, _)| name).collect();
        f.debug_struct("Template")
            .field("method", &self.method)
            .field("path", &self.path.pieces.join(ID))
            .field("headers", &names)
            .field(
                "body",
                &self.body.as_ref().map(|body| body.pieces.join(ID).len()),
            )
            .finish()
    }
}

/// One request made from a [`Template`].
#[derive(Debug)]
pub(crate) struct Rendered {
    pub(crate) path: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Bytes,
}

impl Template {
    /// Checks every part (with a sample id in each hole), reporting every problem at once, each
    /// naming its option.
    pub(crate) fn new(
        method: &str,
        path: &str,
        headers: &[HeaderTemplate],
        body: Option<&str>,
    ) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let method = Method::from_str(method).map_err(|_| {
            problems.push(format!("--method '{method}' is not an HTTP method"));
        });
        let path = Text::new(path);
        let sample = path.render(1);
        if !sample.starts_with('/') {
            problems.push(format!("--path '{sample}' must start with '/'"));
        } else if http::uri::PathAndQuery::from_str(&sample).is_err() {
            problems.push(format!("--path '{sample}' is not a valid path and query"));
        }
        let mut parsed = Vec::with_capacity(headers.len());
        for header in headers {
            let value = Text::new(&header.value);
            match HeaderName::from_str(&header.name) {
                Ok(name) if HeaderValue::from_str(&value.render(1)).is_ok() => {
                    parsed.push((name, value));
                }
                Ok(_) => problems.push(format!(
                    "--header '{}': the value is not a valid header value",
                    header.name
                )),
                Err(_) => problems.push(format!(
                    "--header '{}': not a valid header name",
                    header.name
                )),
            }
        }
        match method {
            Ok(method) if problems.is_empty() => Ok(Self {
                method,
                path,
                headers: parsed,
                body: body.map(Text::new),
            }),
            _ => Err(problems),
        }
    }

    /// The request with id `id`.
    pub(crate) fn render(&self, id: u64) -> Result<Rendered, http::Error> {
        let mut headers = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            headers.push((name.clone(), HeaderValue::from_str(&value.render(id))?));
        }
        Ok(Rendered {
            path: self.path.render(id),
            headers,
            body: self
                .body
                .as_ref()
                .map_or_else(Bytes::new, |body| Bytes::from(body.render(id))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_hole_is_filled_and_the_rest_is_kept() {
        assert_eq!(Text::new("/work?ms=5").render(7), "/work?ms=5");
        assert_eq!(Text::new("{id}").render(42), "42");
        assert_eq!(Text::new("LOT-{id}/RT-{id}").render(9), "LOT-9/RT-9");
        assert_eq!(Text::new("{id}{id}").render(12), "1212");
        assert_eq!(Text::new("{ id } {i} {id").render(3), "{ id } {i} {id");
        assert_eq!(Text::new("").render(3), "");
    }

    #[test]
    fn a_template_renders_path_headers_and_body_with_the_request_id() {
        let template = Template::new(
            "POST",
            "/v1/runs/{id}?x=1",
            &[
                "Idempotency-Key: drill-{id}".parse().unwrap(),
                "Content-Type: application/json".parse().unwrap(),
            ],
            Some(r#"{"lot": "LOT-{id}", "n": {"id": 1}}"#),
        )
        .unwrap();
        assert_eq!(template.method, Method::POST);
        let request = template.render(1234).unwrap();
        assert_eq!(request.path, "/v1/runs/1234?x=1");
        assert_eq!(
            request.headers,
            vec![
                (
                    HeaderName::from_static("idempotency-key"),
                    HeaderValue::from_static("drill-1234")
                ),
                (
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json")
                ),
            ]
        );
        assert_eq!(
            request.body,
            Bytes::from(r#"{"lot": "LOT-1234", "n": {"id": 1}}"#)
        );
        // Two ids, two different requests.
        assert_ne!(
            template.render(1).unwrap().headers,
            template.render(2).unwrap().headers
        );
    }

    #[test]
    fn the_default_request_is_an_empty_get() {
        let template = Template::new("GET", "/work?ms=5", &[], None).unwrap();
        assert_eq!(template.method, Method::GET);
        let request = template.render(1).unwrap();
        assert_eq!(request.path, "/work?ms=5");
        assert!(request.headers.is_empty());
        assert!(request.body.is_empty());
    }

    #[test]
    fn every_bad_part_is_reported_at_once_naming_its_option() {
        let problems = Template::new(
            "GE T",
            "work/{id}",
            &[
                HeaderTemplate::new("Bad Name", "x"),
                HeaderTemplate::new("X-Ok", "line\nbreak-{id}"),
            ],
            None,
        )
        .unwrap_err();
        let text = problems.join("\n");
        assert_eq!(problems.len(), 4, "{text}");
        for option in [
            "--method",
            "--path 'work/1'",
            "--header 'Bad Name'",
            "--header 'X-Ok'",
        ] {
            assert!(text.contains(option), "{option} missing from {text}");
        }
    }

    #[test]
    fn credentials_are_never_shown() {
        let token: HeaderTemplate = "Authorization: Bearer s3cret-token".parse().unwrap();
        let key: HeaderTemplate = "Idempotency-Key: {id}".parse().unwrap();
        let shown = serde_json::to_string(&[&token, &key]).unwrap();
        assert_eq!(
            shown,
            r#"["Authorization: <redacted>","Idempotency-Key: {id}"]"#
        );
        assert!(!format!("{token:?}").contains("s3cret"));
        let template = Template::new("POST", "/", &[token], None).unwrap();
        assert!(!format!("{template:?}").contains("s3cret"));
    }

    #[test]
    fn headers_parse_from_name_colon_value() {
        let header: HeaderTemplate = "Authorization: Bearer abc:def".parse().unwrap();
        assert_eq!(
            header,
            HeaderTemplate::new("Authorization", "Bearer abc:def")
        );
        assert!("no colon".parse::<HeaderTemplate>().is_err());
        assert!(": value".parse::<HeaderTemplate>().is_err());
    }

    #[test]
    fn expected_statuses_parse_and_match() {
        let success: ExpectedStatus = "2xx".parse().unwrap();
        assert_eq!(success, ExpectedStatus::Success);
        assert!(success.matches(StatusCode::OK) && success.matches(StatusCode::NO_CONTENT));
        assert!(!success.matches(StatusCode::CONFLICT));
        let some: ExpectedStatus = "200, 201".parse().unwrap();
        assert!(some.matches(StatusCode::CREATED));
        assert!(!some.matches(StatusCode::ACCEPTED));
        assert_eq!(some.to_string(), "200,201");
        assert!("2xx,abc".parse::<ExpectedStatus>().is_err());
        assert!("42".parse::<ExpectedStatus>().is_err());
    }
}
