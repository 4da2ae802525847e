use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

/// Every `write` call the layer made, each a separate entry.
#[derive(Clone, Default)]
struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

impl Writes {
    fn all(&self) -> Vec<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl io::Write for Writes {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut writes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        writes.push(bytes.to_vec());
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Writes {
    type Writer = Writes;

    fn make_writer(&'a self) -> Writes {
        self.clone()
    }
}

/// The lines `log` writes, each checked to be one `write` call of one line.
fn raw_lines(log: impl FnOnce()) -> Vec<String> {
    let writes = Writes::default();
    let subscriber = Registry::default().with(JsonLines::new(writes.clone()));
    tracing::subscriber::with_default(subscriber, log);
    writes
        .all()
        .into_iter()
        .map(|write| {
            let text = String::from_utf8(write).unwrap();
            let line = text
                .strip_suffix('\n')
                .unwrap_or_else(|| panic!("not a whole line: {text:?}"));
            assert!(
                !line.contains('\n'),
                "more than one line in one write: {text:?}"
            );
            line.to_owned()
        })
        .collect()
}

/// The lines `log` writes, parsed.
fn lines(log: impl FnOnce()) -> Vec<Value> {
    raw_lines(log)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

const HOSTILE: &str = "quote \" backslash \\ slash / nl \n cr \r tab \t nul \0 bell \u{7} \
                       esc \u{1b} unit-sep \u{1f} del \u{7f} caf\u{e9} \u{2028} \u{1f980} \\u0041 }{";

#[test]
fn hostile_strings_come_back_exactly_and_each_event_is_one_line() {
    #[derive(Debug)]
    #[allow(dead_code)] // Read by `Debug`.
    struct Wrapped(&'static str);

    let log = lines(|| {
        tracing::info!(
            text = HOSTILE,
            shown = %HOSTILE,
            debugged = ?Wrapped(HOSTILE),
            { "odd \"key\"\n" } = 1,
            "message {HOSTILE}"
        );
    });
    assert_eq!(log.len(), 1);
    let line = &log[0];
    assert_eq!(line["text"], HOSTILE);
    assert_eq!(line["shown"], HOSTILE);
    assert_eq!(line["debugged"], format!("{:?}", Wrapped(HOSTILE)));
    assert_eq!(line["odd \"key\"\n"], 1);
    assert_eq!(line["message"], format!("message {HOSTILE}"));
}

#[test]
fn control_characters_are_escaped_as_json_requires() {
    let mut out = Vec::new();
    let all: String = (0u8..0x20).map(char::from).collect();
    escape(&mut out, &all);
    let text = String::from_utf8(out).unwrap();
    assert!(text.bytes().all(|b| b >= 0x20), "{text}");
    assert!(text.starts_with(r"\u0000\u0001"), "{text}");
    assert!(text.contains(r"\b\t\n\u000b\f\r"), "{text}");
    let back: String = serde_json::from_str(&format!("\"{text}\"")).unwrap();
    assert_eq!(back, all);
}

#[test]
fn a_line_has_timestamp_level_fields_and_target_with_their_json_types() {
    let log = lines(|| {
        tracing::warn!(
            count = 3u64,
            delta = -7i64,
            min = i64::MIN,
            max = u64::MAX,
            ratio = 0.25,
            whole = 3.0,
            nan = f64::NAN,
            infinite = f64::INFINITY,
            yes = true,
            "counted"
        );
        tracing::debug!(target: "custom::target", "elsewhere");
    });
    assert_eq!(log.len(), 2);
    let line = &log[0];
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["message"], "counted");
    assert_eq!(line["count"], 3);
    assert_eq!(line["delta"], -7);
    assert_eq!(line["min"], json!(i64::MIN));
    assert_eq!(line["max"], json!(u64::MAX));
    assert_eq!(line["ratio"], 0.25);
    assert_eq!(line["whole"], 3.0);
    assert_eq!(line["nan"], Value::Null);
    assert_eq!(line["infinite"], Value::Null);
    assert_eq!(line["yes"], true);
    assert_eq!(
        line["target"],
        module_path!(),
        "the event's module by default"
    );
    assert!(line.get("span").is_none() && line.get("spans").is_none());
    assert_eq!(log[1]["level"], "DEBUG");
    assert_eq!(log[1]["target"], "custom::target");
    let timestamp = line["timestamp"].as_str().unwrap();
    assert_eq!(
        timestamp.len(),
        "2026-11-21T06:09:41.327817Z".len(),
        "{timestamp}"
    );
    assert!(timestamp.ends_with('Z'));
}

#[test]
fn the_keys_come_in_tracing_subscribers_order() {
    let log = raw_lines(|| {
        let span = tracing::info_span!("work", id = 7u64);
        span.in_scope(|| tracing::info!(a = 1u64, z = "last", "hello"));
    });
    let line = &log[0];
    let rest = line
        .strip_prefix(r#"{"timestamp":""#)
        .unwrap_or_else(|| panic!("{line}"));
    let (timestamp, rest) = rest.split_once('"').unwrap();
    assert_eq!(timestamp.len(), 27, "{line}");
    assert_eq!(
        rest,
        format!(
            r#","level":"INFO","message":"hello","a":1,"z":"last","target":"{}","span":{{"id":7,"name":"work"}},"spans":[{{"id":7,"name":"work"}}]}}"#,
            module_path!()
        )
    );
}

#[test]
fn an_event_in_spans_carries_its_span_and_the_list_from_the_root() {
    let log = lines(|| {
        let outer = tracing::info_span!("outer", tenant = "a\"b", n = 1u64);
        let _outer = outer.enter();
        let inner = tracing::info_span!("inner", later = tracing::field::Empty);
        inner.record("later", 42u64);
        let _inner = inner.enter();
        let bare = tracing::info_span!("bare");
        bare.in_scope(|| tracing::info!("deep"));
        tracing::info!("inside");
    });
    assert_eq!(log.len(), 2);
    let deep = &log[0];
    assert_eq!(deep["span"], json!({"name": "bare"}));
    assert_eq!(
        deep["spans"],
        json!([
            {"tenant": "a\"b", "n": 1, "name": "outer"},
            {"later": 42, "name": "inner"},
            {"name": "bare"},
        ])
    );
    let inside = &log[1];
    assert_eq!(inside["span"], json!({"later": 42, "name": "inner"}));
    assert_eq!(inside["spans"].as_array().unwrap().len(), 2);
}

/// `tracing` drops an event logged while the subscriber handles another on the same thread;
/// the line being written must still come out whole.
#[test]
fn a_debug_value_that_logs_while_formatted_leaves_the_line_whole() {
    struct Noisy;
    impl fmt::Debug for Noisy {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            tracing::info!("from inside");
            f.write_str("noisy")
        }
    }
    let log = lines(|| tracing::info!(value = ?Noisy, "outer"));
    let messages: Vec<&str> = log.iter().filter_map(|l| l["message"].as_str()).collect();
    assert_eq!(messages, ["outer"]);
    assert_eq!(log[0]["value"], "noisy");
}

#[test]
fn timestamps_are_rfc3339_utc_with_microseconds() {
    let at = |secs: u64, micros: u32| {
        let mut out = Vec::new();
        timestamp(&mut out, UNIX_EPOCH + Duration::new(secs, micros * 1000));
        String::from_utf8(out).unwrap()
    };
    assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
    assert_eq!(at(951_782_399, 999_999), "2000-02-28T23:59:59.999999Z");
    assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
    assert_eq!(at(1_000_000_000, 120), "2001-09-09T01:46:40.000120Z");
    assert_eq!(at(1_795_242_581, 327_817), "2026-11-21T06:29:41.327817Z");
    assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z");
    // The cached second is per second: the next one is formatted anew.
    assert_eq!(at(1_795_242_582, 1), "2026-11-21T06:29:42.000001Z");
    let mut before = Vec::new();
    timestamp(&mut before, UNIX_EPOCH - Duration::from_secs(5));
    assert_eq!(before, b"1970-01-01T00:00:00.000000Z");
}

#[test]
fn every_day_of_four_centuries_is_the_next_calendar_day() {
    let (mut year, mut month, mut day) = (1970, 1, 1);
    for days in 0..146_097 {
        assert_eq!(civil(days), (year, month, day), "day {days}");
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let length = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        day += 1;
        if day > length {
            day = 1;
            month += 1;
            if month > 12 {
                month = 1;
                year += 1;
            }
        }
    }
}

/// The same events through `tracing-subscriber`'s JSON formatter (as `Logs` configured it
/// before) and through this one give the same objects, but for the timestamp.
#[test]
fn the_objects_are_those_of_tracing_subscribers_json_formatter() {
    let ours = Writes::default();
    let theirs = Writes::default();
    let subscriber = Registry::default().with(JsonLines::new(ours.clone())).with(
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(theirs.clone()),
    );
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(text = HOSTILE, n = 3u64, x = -1.5, ok = false, "plain");
        let span = tracing::info_span!("outer", tenant = "t\n1", size = 10u64);
        span.in_scope(|| {
            tracing::error!(error = %std::fmt::Error, ratio = 2.0, "inside {}", "formatted");
            tracing::info_span!("inner").in_scope(|| tracing::debug!(d = ?Some(1), "deep"));
        });
    });
    let parse = |writes: &Writes| -> Vec<Value> {
        String::from_utf8(writes.all().concat())
            .unwrap()
            .lines()
            .map(|line| {
                let mut value: Value = serde_json::from_str(line).unwrap();
                value.as_object_mut().unwrap().remove("timestamp");
                value
            })
            .collect()
    };
    let (ours, theirs) = (parse(&ours), parse(&theirs));
    assert_eq!(ours.len(), 3);
    assert_eq!(ours, theirs);
}

#[test]
fn the_eight_byte_test_finds_every_byte_to_escape_at_every_position() {
    let naive = |word: [u8; 8]| word.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
    for filler in [
        b'a', b' ', b'~', 0x7f, 0x80, 0xc3, 0xff, b'!', b'#', b'[', b']',
    ] {
        for at in 0..8 {
            for byte in 0..=255u8 {
                let mut word = [filler; 8];
                word[at] = byte;
                assert_eq!(
                    any_to_escape(u64::from_le_bytes(word)),
                    naive(word),
                    "{word:?}"
                );
            }
        }
    }
}

#[test]
fn escaping_matches_serde_json_across_chunk_boundaries() {
    let specials = [
        "\0",
        "\u{1f}",
        "\"",
        "\\",
        "\n",
        "\u{7f}",
        "\u{e9}",
        "\u{1f980}",
        " ",
    ];
    for len in 0..20 {
        for at in 0..=len {
            for special in specials {
                let mut text = "ab".repeat(len / 2 + 1)[..len].to_owned();
                text.insert_str(at, special);
                text.push_str(special);
                let mut out = Vec::new();
                escape(&mut out, &text);
                let expected = serde_json::to_string(&text).unwrap();
                assert_eq!(format!("\"{}\"", String::from_utf8(out).unwrap()), expected);
            }
        }
    }
}
