//! The JSON lines format: one flat JSON object per event, written straight into a reused
//! buffer and handed to the writer in one piece.
//!
//! Why not `tracing-subscriber`'s `fmt().json()`: it builds each line through `serde_json`
//! (a map serializer, `Display` through `collect_str`, a timestamp formatted into a fresh
//! `String` from the calendar every time) and re-parses every span's fields from JSON; an HTTP
//! access-log line cost about 23,000 instructions that way, several times the request it logs.
//! Here a line is the same object, written with a few copies: the timestamp's date and time
//! are formatted once a second per thread, numbers with `itoa` and `ryu`, strings escaped as
//! they are copied, a span's fields formatted once when they are recorded.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// A buffer that grew past this is not kept for the next line.
const KEEP: usize = 64 * 1024;

/// The layer: writes each event it sees as one line to `W`'s writer, with one `write_all`.
///
/// A line is `{"timestamp":…,"level":…,<the event's fields>,"target":…}`, plus `"span"` (the
/// event's span: its fields and `"name"`) and `"spans"` (every span from the root to that one)
/// when the event is in a span — the object `tracing-subscriber`'s JSON formatter writes with
/// `flatten_event(true)`. Strings, `Debug` and `Display` values are JSON strings; integers,
/// floats and booleans are JSON numbers and booleans (NaN and infinities are `null`).
#[derive(Debug)]
pub(crate) struct JsonLines<W> {
    writer: W,
}

impl<W> JsonLines<W> {
    pub(crate) fn new(writer: W) -> Self {
        Self { writer }
    }
}

/// A span's fields, formatted when they are recorded: `,"key":value` for each.
struct SpanFields(String);

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        let fields = string(fields);
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(existing) => existing.0.push_str(&fields),
            None => extensions.insert(SpanFields(fields)),
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Vec::new();
        values.record(&mut Fields(&mut fields));
        let fields = string(fields);
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(existing) => existing.0.push_str(&fields),
            None => extensions.insert(SpanFields(fields)),
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        thread_local! {
            static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        let write = |line: &mut Vec<u8>| {
            line.clear();
            format_event(line, event, &ctx);
            // One call, so that the writer gets the line in one piece. A failed write has
            // nowhere left to be reported.
            let _ = self.writer.make_writer().write_all(line);
        };
        // A `Debug` implementation that logs, while its value is being formatted, gets a
        // buffer of its own.
        let reused = BUFFER.try_with(|buffer| {
            let Ok(mut line) = buffer.try_borrow_mut() else {
                return false;
            };
            write(&mut line);
            if line.capacity() > KEEP {
                *line = Vec::new();
            }
            true
        });
        if reused != Ok(true) {
            write(&mut Vec::new());
        }
    }
}

/// `bytes` came from `&str`s and escaping, which keeps UTF-8 valid.
fn string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn format_event<S>(line: &mut Vec<u8>, event: &Event<'_>, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let meta = event.metadata();
    line.extend_from_slice(b"{\"timestamp\":\"");
    timestamp(line, SystemTime::now());
    line.extend_from_slice(b"\",\"level\":\"");
    line.extend_from_slice(level(*meta.level()));
    line.push(b'"');
    event.record(&mut Fields(line));
    line.extend_from_slice(b",\"target\":");
    quoted(line, meta.target());
    if let Some(leaf) = ctx.event_span(event) {
        line.extend_from_slice(b",\"span\":");
        span(line, &leaf);
        line.extend_from_slice(b",\"spans\":[");
        for (i, parent) in leaf.scope().from_root().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            span(line, &parent);
        }
        line.push(b']');
    }
    line.extend_from_slice(b"}\n");
}

/// `{<fields>,"name":…}`.
fn span<S>(line: &mut Vec<u8>, span: &SpanRef<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    line.push(b'{');
    if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>()
        && let Some(fields) = fields.strip_prefix(',')
    {
        line.extend_from_slice(fields.as_bytes());
        line.push(b',');
    }
    line.extend_from_slice(b"\"name\":");
    quoted(line, span.metadata().name());
    line.push(b'}');
}

fn level(level: Level) -> &'static [u8] {
    match level {
        Level::TRACE => b"TRACE",
        Level::DEBUG => b"DEBUG",
        Level::INFO => b"INFO",
        Level::WARN => b"WARN",
        Level::ERROR => b"ERROR",
    }
}

/// Writes each field as `,"key":value`.
struct Fields<'a>(&'a mut Vec<u8>);

impl Fields<'_> {
    fn key(&mut self, field: &Field) -> &mut Vec<u8> {
        self.0.push(b',');
        quoted(self.0, field.name());
        self.0.push(b':');
        self.0
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let line = self.key(field);
        quoted(line, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let line = self.key(field);
        line.push(b'"');
        let _ = write!(Escaped(line), "{value:?}");
        line.push(b'"');
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let line = self.key(field);
        line.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let line = self.key(field);
        line.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let line = self.key(field);
        if value.is_finite() {
            line.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
        } else {
            line.extend_from_slice(b"null");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let line = self.key(field);
        line.extend_from_slice(if value { b"true" } else { b"false" });
    }
}

/// `text` as a JSON string, quotes included.
fn quoted(line: &mut Vec<u8>, text: &str) {
    line.push(b'"');
    escape(line, text);
    line.push(b'"');
}

/// Appends `text` escaped for the inside of a JSON string: `"`, `\` and the control
/// characters U+0000 to U+001F (the ones JSON requires escaped); everything else as it is, as
/// UTF-8. Runs of eight bytes that need no escape are skipped in one step.
fn escape(line: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes[i..].first_chunk::<8>()
            && !any_to_escape(u64::from_le_bytes(*word))
        {
            i += 8;
            continue;
        }
        let byte = bytes[i];
        i += 1;
        if byte >= 0x20 && byte != b'"' && byte != b'\\' {
            continue;
        }
        line.extend_from_slice(&bytes[start..i - 1]);
        start = i;
        match byte {
            b'"' => line.extend_from_slice(b"\\\""),
            b'\\' => line.extend_from_slice(b"\\\\"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            b'\t' => line.extend_from_slice(b"\\t"),
            0x08 => line.extend_from_slice(b"\\b"),
            0x0c => line.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                line.extend_from_slice(b"\\u00");
                line.push(HEX[usize::from(byte >> 4)]);
                line.push(HEX[usize::from(byte & 0xf)]);
            }
        }
    }
    line.extend_from_slice(&bytes[start..]);
}

/// Whether any of the eight bytes in `word` is below 0x20, a `"` or a `\` (the classic
/// "has a zero byte" test: exact for whether there is any).
fn any_to_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    (below(word, 0x20) | below(quote, 1) | below(backslash, 1)) != 0
}

/// A `fmt::Write` that escapes what is written into it.
struct Escaped<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        escape(self.0, text);
        Ok(())
    }
}

/// Appends `now` as RFC 3339 in UTC with microseconds, as `tracing-subscriber` writes it:
/// `2026-11-21T06:09:41.327817Z`. The part up to the second is formatted once a second (per
/// thread). A clock before 1970 writes 1970-01-01.
fn timestamp(line: &mut Vec<u8>, now: SystemTime) {
    thread_local! {
        static SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
    }
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let cached = SECOND.try_with(Cell::get).ok().filter(|(s, _)| *s == secs);
    let prefix = match cached {
        Some((_, prefix)) => prefix,
        None => {
            let prefix = second(secs);
            let _ = SECOND.try_with(|cell| cell.set((secs, prefix)));
            prefix
        }
    };
    line.extend_from_slice(&prefix);
    let mut micros = since.subsec_micros();
    let mut digits = *b"000000";
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    line.extend_from_slice(&digits);
    line.push(b'Z');
}

/// `YYYY-MM-DDTHH:MM:SS.` for `secs` after the Unix epoch (a year past 9999 would lose its
/// leading digits: eight thousand years away).
fn second(secs: u64) -> [u8; 20] {
    let (year, month, day) = civil(secs / 86_400);
    let time = secs % 86_400;
    let mut out = *b"0000-00-00T00:00:00.";
    let mut put = |at: usize, value: u64, width: usize| {
        let mut value = value;
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, time / 3600, 2);
    put(14, time / 60 % 60, 2);
    put(17, time % 60, 2);
    out
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
