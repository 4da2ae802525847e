//! A strict reader of the Prometheus text format (0.0.4), written from the format's
//! description independently of the crate's writer: it rejects what Prometheus would, and turns
//! a scrape into samples the tests can look up.

use std::collections::{BTreeMap, HashSet};

/// One sample: its metric name, labels (unescaped) and value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// A parsed scrape.
#[derive(Debug)]
pub(crate) struct Scrape {
    pub(crate) samples: Vec<Sample>,
    /// Metric family name → its `HELP` text (unescaped).
    pub(crate) help: BTreeMap<String, String>,
    /// Metric family name → its type.
    pub(crate) types: BTreeMap<String, String>,
}

impl Scrape {
    /// Parses `text`, panicking with the line at fault on anything malformed.
    pub(crate) fn parse(text: &str) -> Self {
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "the text must end with a newline"
        );
        let mut scrape = Scrape {
            samples: Vec::new(),
            help: BTreeMap::new(),
            types: BTreeMap::new(),
        };
        // Families seen, and the one whose lines are being read: a family's lines must be
        // contiguous.
        let mut done: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        let mut enter = |family: &str, line: &str| {
            if current.as_deref() != Some(family) {
                assert!(
                    done.insert(family.to_owned()),
                    "family {family} appears twice, at {line:?}"
                );
                current = Some(family.to_owned());
            }
        };
        for line in text.lines() {
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                check_name(name, line);
                enter(name, line);
                let help = unescape(help, false, line);
                assert!(
                    scrape.help.insert(name.to_owned(), help).is_none(),
                    "two HELP lines for {name}"
                );
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE needs a type");
                check_name(name, line);
                enter(name, line);
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "unknown type in {line:?}"
                );
                assert!(
                    !scrape
                        .samples
                        .iter()
                        .any(|s| family(&s.name, &scrape.types) == name),
                    "TYPE after samples of {name}"
                );
                assert!(
                    scrape
                        .types
                        .insert(name.to_owned(), kind.to_owned())
                        .is_none(),
                    "two TYPE lines for {name}"
                );
            } else if line.starts_with('#') {
                // A comment.
            } else {
                let sample = sample(line);
                let name = family(&sample.name, &scrape.types).to_owned();
                enter(&name, line);
                scrape.samples.push(sample);
            }
        }
        scrape
    }

    /// The value of the one sample named `name` with exactly `labels`.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut found = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == labels);
        let value = found.next().map(|s| s.value);
        assert!(found.next().is_none(), "two samples {name} {labels:?}");
        value
    }

    /// The samples named `name`.
    pub(crate) fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

/// The family a sample belongs to: a histogram's or summary's `_bucket`, `_sum` and `_count`
/// samples belong to the family without the suffix.
fn family<'a>(name: &'a str, types: &BTreeMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && matches!(
                types.get(base).map(String::as_str),
                Some("histogram" | "summary")
            )
        {
            return base;
        }
    }
    name
}

fn check_name(name: &str, line: &str) {
    let mut chars = name.chars();
    let first = chars.next().unwrap_or(' ');
    assert!(
        (first.is_ascii_alphabetic() || first == '_' || first == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "invalid metric name {name:?} in {line:?}"
    );
}

fn check_label_name(name: &str, line: &str) {
    let mut chars = name.chars();
    let first = chars.next().unwrap_or(' ');
    assert!(
        (first.is_ascii_alphabetic() || first == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "invalid label name {name:?} in {line:?}"
    );
}

/// Unescapes `\\`, `\n` and (in a label value) `\"`; any other escape is an error.
fn unescape(text: &str, quoted: bool, line: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quoted => out.push('"'),
            other => panic!("invalid escape \\{other:?} in {line:?}"),
        }
    }
    out
}

fn sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value in {line:?}"));
    let name = &line[..name_end];
    check_name(name, line);
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest
                .find("=\"")
                .unwrap_or_else(|| panic!("bad label in {line:?}"));
            let label = &rest[..eq];
            check_label_name(label, line);
            rest = &rest[eq + 2..];
            // The value ends at the first quote not escaped.
            let mut end = None;
            let mut escaped = false;
            for (i, c) in rest.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        end = Some(i);
                        break;
                    }
                    '\n' => panic!("raw newline in a label value in {line:?}"),
                    _ => escaped = false,
                }
            }
            let end = end.unwrap_or_else(|| panic!("unterminated label value in {line:?}"));
            let value = unescape(&rest[..end], true, line);
            assert!(
                labels.insert(label.to_owned(), value).is_none(),
                "label {label} twice in {line:?}"
            );
            rest = &rest[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value in {line:?}"));
    let value = value.split(' ').next().unwrap_or_default();
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value {v:?} in {line:?}")),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

#[test]
fn reads_escapes_and_rejects_what_prometheus_rejects() {
    let scrape = Scrape::parse(
        "# HELP a_total Help with \\\\ and \\n.\n# TYPE a_total counter\n\
         a_total{path=\"C:\\\\x\",msg=\"say \\\"hi\\\"\\n\"} 3\n",
    );
    assert_eq!(
        scrape.value("a_total", &[("path", "C:\\x"), ("msg", "say \"hi\"\n")]),
        Some(3.0)
    );
    assert_eq!(scrape.help["a_total"], "Help with \\ and \n.");
    for bad in [
        "a{x=\"unterminated} 1\n",
        "a{x=\"bad \\q escape\"} 1\n",
        "a{0x=\"bad label name\"} 1\n",
        "a 1\nb 2\na 3\n",
        "a one\n",
        "a 1",
    ] {
        assert!(
            std::panic::catch_unwind(|| Scrape::parse(bad)).is_err(),
            "accepted {bad:?}"
        );
    }
}
