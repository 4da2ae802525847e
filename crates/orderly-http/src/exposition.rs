//! The Prometheus text exposition format (version 0.0.4), written by hand: the lifecycle
//! metrics are a few gauges, too few for a client library.
//!
//! <https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>

use std::fmt::Write;

/// The `Content-Type` of the format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Text in the exposition format, one family after another.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    out: String,
}

/// The samples of one family; the format wants them together, right after its `TYPE` line.
#[derive(Debug)]
pub(crate) struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Exposition {
    /// Begins a family of gauges: its `HELP` and `TYPE` lines. `name` must be a valid metric
    /// name.
    pub(crate) fn gauge(&mut self, name: &'static str, help: &str) -> Family<'_> {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape(&mut self.out, help, Quoted::No);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push_str(" gauge\n");
        Family {
            out: &mut self.out,
            name,
        }
    }

    /// The text; every line ends with a newline.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

impl Family<'_> {
    /// One sample. Label names must be valid; label values are escaped.
    pub(crate) fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(name);
                self.out.push_str("=\"");
                escape(self.out, value, Quoted::Yes);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_value(self.out, value);
        self.out.push('\n');
        self
    }
}

/// Whether the text is a quoted label value (which escapes `"` too) or `HELP` text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoted {
    Yes,
    No,
}

/// Escapes `\` and newline (and `"` in a label value) as the format requires.
fn escape(out: &mut String, text: &str, quoted: Quoted) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quoted == Quoted::Yes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// A float as Go's `ParseFloat` reads it: Rust writes infinities `inf`, the format `+Inf`
/// (`NaN` and finite numbers are written alike).
fn push_value(out: &mut String, value: f64) {
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_help_type_and_samples_with_escaped_label_values() {
        let mut text = Exposition::default();
        text.gauge(
            "orderly_component_state",
            "A help text with a \\ and a\nnewline, \"quotes\" kept.",
        )
        .sample(&[("component", "db")], 1.0)
        .sample(&[("component", "a\"b\\c\nd"), ("state", "running")], 0.0);
        text.gauge("orderly_ready", "Ready.").sample(&[], 0.25);
        assert_eq!(
            text.finish(),
            "# HELP orderly_component_state A help text with a \\\\ and a\\nnewline, \"quotes\" kept.\n\
             # TYPE orderly_component_state gauge\n\
             orderly_component_state{component=\"db\"} 1\n\
             orderly_component_state{component=\"a\\\"b\\\\c\\nd\",state=\"running\"} 0\n\
             # HELP orderly_ready Ready.\n\
             # TYPE orderly_ready gauge\n\
             orderly_ready 0.25\n"
        );
    }

    #[test]
    fn spells_special_floats_the_go_way() {
        let mut out = String::new();
        for value in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-7, 12.5, -3.0] {
            push_value(&mut out, value);
            out.push(' ');
        }
        assert_eq!(out, "+Inf -Inf NaN 0.0000001 12.5 -3 ");
    }
}
