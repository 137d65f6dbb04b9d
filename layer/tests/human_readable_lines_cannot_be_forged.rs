//! What an event carries (its message, field names and values, target, event
//! name, the node's id) cannot drive the terminal or forge a line: every
//! console and raw line is one line, holds no control character, and
//! unescapes to the original text (CWE-117, RUSTSEC-2025-0055).
//!
//! The writers that print to stderr are checked on the bytes they print, in
//! a child process (this test binary run again) whose stderr is read here.

use std::{
    process::Command,
    sync::{Arc, OnceLock},
};

use proptest::{prelude::*, strategy::ValueTree, test_runner::TestRunner};
use selftrace::{
    Destination, DropReason, FlushReason, Node, NodeLogger, NodeLogs, OtlpBytesChannel, OtlpTracingLayer,
    TRANSPORT_TARGETS,
    console::{write_console_line, write_request},
    encoder::StatefulOtlpEncoder,
    otel_info,
    raw::{raw_logger_metrics, set_raw_lines_per_second},
    view::{AnyValue, LogRecordView, RecordVisitor, Severity},
};
use tracing_core::{
    Callsite, Event, Kind, Level, Metadata,
    callsite::{self, Identifier},
    field::{FieldSet, Value},
    subscriber::Interest,
};
use tracing_subscriber::layer::SubscriberExt;

/// The issue's example: a clear screen, a colour, a forged line, a carriage
/// return and a bell.
const EVIL: &str = "user\x1b[2J\x1b[31mFAKE\nERROR forged line\r\x07";

/// Text with the characters that matter well represented.
fn text(max: usize) -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '\x1b', '\n', '\r', '\t', '\x07', '\0', '\x7f', '\u{85}', '\u{9b}', '\u{202e}', '\u{2066}', '\u{200f}',
        '\u{2028}', '\\', '"', '=', ' ', 'é',
    ]);
    prop::collection::vec(prop_oneof![3 => any::<char>(), 2 => special, 2 => prop::char::range('a', 'z')], 0..max)
        .prop_map(|chars| chars.into_iter().collect())
}

#[derive(Clone, Debug)]
struct Case {
    target: String,
    name: String,
    message: String,
    key: String,
    value: String,
    scope: String,
}

fn case() -> impl Strategy<Value = Case> {
    (text(24), text(24), text(40), text(16), text(40), text(24))
        .prop_map(|(target, name, message, key, value, scope)| Case {
            target: format!("t{target}"),
            name: format!("n{name}"),
            message: format!("m{message}"),
            key: format!("k{key}"),
            value,
            scope: format!("s{scope}"),
        })
        // Names with a meaning of their own: the `log` crate's target, the
        // transport crates (kept out by default), the message field and
        // tracing's generated event names.
        .prop_filter("plain names", |c| {
            c.target != "log"
                && !TRANSPORT_TARGETS.iter().any(|t| c.target.starts_with(t))
                && !c.key.starts_with("log.")
                && !c.name.starts_with("event ")
        })
}

/// Undoes the escaping the module docs of `selftrace::console` describe,
/// written here apart from the library's own code.
fn unescape(line: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Checks one printed line: nothing that drives a terminal or splits a line.
fn assert_inert(line: &str) {
    for c in line.chars() {
        let bidi = matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(
            !(c < ' ' || ('\x7f'..='\u{9f}').contains(&c) || bidi || c == '\u{2028}' || c == '\u{2029}'),
            "{c:?} in {line:?}"
        );
    }
}

/// Checks that `line` holds each of `parts` once unescaped.
fn assert_holds(line: &str, parts: &[&str]) {
    assert_inert(line);
    let plain = unescape(line).unwrap_or_else(|| panic!("not a valid escaping: {line:?}"));
    for part in parts {
        assert!(plain.contains(part), "{part:?} not in {plain:?} (printed {line:?})");
    }
}

// === writers into a `fmt::Write` ===

struct View<'c>(&'c Case);

impl LogRecordView for View<'_> {
    fn time_unix_nano(&self) -> Option<u64> {
        Some(1_700_000_000_000_000_000)
    }
    fn observed_time_unix_nano(&self) -> Option<u64> {
        self.time_unix_nano()
    }
    fn severity(&self) -> Option<Severity> {
        Some(Severity::INFO)
    }
    fn event_name(&self) -> Option<&str> {
        Some(&self.0.name)
    }
    fn visit(&self, v: &mut dyn RecordVisitor) {
        v.visit_body(AnyValue::Str(&self.0.message));
        v.visit_attribute(&self.0.key, AnyValue::Str(&self.0.value));
        v.visit_attribute("debug", AnyValue::Fmt(&self.0.value));
    }
}

impl Case {
    fn parts(&self) -> [String; 4] {
        [
            format!(" {}: ", self.name),
            format!(": {} ", self.message),
            format!(" {}=\"{}\"", self.key, self.value),
            format!(" debug={:?}", self.value),
        ]
    }
}

proptest! {
    /// The line for a record view, as the console destination, a node's
    /// console logger and the raw logger format it, and the lines for
    /// encoded bytes, as the startup buffer's printout and the bridge's
    /// console write them.
    #[test]
    fn a_console_line_is_one_inert_line_that_unescapes_to_the_record(case in case()) {
        let mut line = String::new();
        write_console_line(&mut line, &case.scope, &View(&case)).expect("a String does not fail");
        prop_assert!(!line.contains('\n'));
        let parts = case.parts();
        let [name, message, attribute, debug] = parts.each_ref().map(String::as_str);
        assert_holds(&line, &[&format!(" {} ", case.scope), name, message, attribute, debug]);
        let plain = unescape(&line).expect("checked");
        prop_assert!(plain.starts_with("2023-11-14T22:13:20.000000Z  INFO "), "{}", plain);

        let mut encoder = StatefulOtlpEncoder::new();
        encoder.encode_log_record(&case.scope, &View(&case)).expect("fits");
        let mut out = String::new();
        prop_assert_eq!(write_request(&mut out, encoder.flush().as_bytes()).ok(), Some(1));
        let decoded = out.strip_suffix('\n').expect("one line");
        prop_assert!(!decoded.contains('\n'));
        // Decoded, a `Debug` value is the string it was formatted into.
        assert_holds(decoded, &[name, message, attribute, &format!(" debug=\"{:?}\"", case.value)]);
    }
}

#[test]
fn escaping_undoes_exactly() {
    let mut line = String::new();
    let case = Case {
        target: String::new(),
        name: "n\\u{41}".into(),
        message: EVIL.into(),
        key: "k".into(),
        value: "\\\"".into(),
        scope: "s".into(),
    };
    write_console_line(&mut line, "s", &View(&case)).expect("a String does not fail");
    assert_eq!(
        line,
        r#"2023-11-14T22:13:20.000000Z  INFO s n\\u{41}: user\u{1b}[2J\u{1b}[31mFAKE\nERROR forged line\r\u{7} k="\\\"" debug="\\\\\\"""#
    );
}

// === writers to stderr, read from a child process ===

/// A callsite made at run time, so that targets and field names can be
/// arbitrary strings.
struct Dynamic(OnceLock<Metadata<'static>>);

impl Callsite for Dynamic {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        self.0.get().expect("set at creation")
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// An event with `case`'s target, name, message and field, dispatched to
/// the current subscriber.
fn emit(case: &Case) {
    let site: &'static Dynamic = Box::leak(Box::new(Dynamic(OnceLock::new())));
    let names: &'static [&'static str] = Box::leak(vec!["message", leak(&case.key)].into_boxed_slice());
    let meta = Metadata::new(
        leak(&case.name),
        leak(&case.target),
        Level::INFO,
        None,
        None,
        None,
        FieldSet::new(names, Identifier(site)),
        Kind::EVENT,
    );
    let _ = site.0.set(meta);
    callsite::register(site);
    let meta = site.metadata();
    let fields = meta.fields();
    let (Some(message), Some(key)) = (fields.field("message"), fields.field(names[1])) else {
        panic!("fields of the callsite");
    };
    let message_value = format_args!("{}", case.message);
    let values: [(&_, Option<&dyn Value>); 2] = [(&message, Some(&message_value)), (&key, Some(&case.value.as_str()))];
    Event::dispatch(meta, &fields.value_set(&values));
}

/// What the child printed: the cases, in order, and its stderr.
fn run_child(test: &str) -> (Vec<Case>, String) {
    let exe = std::env::current_exe().expect("test binary path");
    let out =
        Command::new(exe).args(["--exact", test, "--nocapture", "--test-threads=1"]).output().expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let cases = stdout
        .lines()
        // libtest may print "test <name> ... " on the same line first.
        .filter_map(|l| l.split_once("CASE ").map(|(_, case)| case))
        .map(|l| {
            let mut f = l.split(' ').map(|hex| {
                let bytes: Vec<u8> =
                    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect();
                String::from_utf8(bytes).expect("utf-8")
            });
            let mut next = || f.next().expect("six fields");
            Case { target: next(), name: next(), message: next(), key: next(), value: next(), scope: next() }
        })
        .collect();
    (cases, String::from_utf8(out.stderr).expect("the lines are UTF-8"))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

const CHILD_CASES: u32 = 64;

/// Prints each case through the console destination, a full channel (the
/// raw logger), a console node and a raw node; run again as a child by
/// `stderr_lines_are_inert_and_unescape_to_the_event`, which reads them.
#[test]
#[expect(clippy::print_stdout, reason = "the parent reads the cases from the child's stdout")]
fn print_arbitrary_events_on_stderr() {
    set_raw_lines_per_second(u32::MAX);
    let console = OtlpTracingLayer::builder(Destination::Console).with_flood_limit(None).build();
    let full = OtlpBytesChannel::new(1);
    let (sender, _receiver) = full.into_parts();
    let raw = OtlpTracingLayer::builder(Destination::Channel(sender)).with_flood_limit(None).build();
    let raw_handle = raw.handle();
    let nodes = NodeLogs::builder(Destination::Noop).with_flood_limit(None).build();
    let console_subscriber = Arc::new(tracing_subscriber::registry().with(console));
    let raw_subscriber = Arc::new(tracing_subscriber::registry().with(raw));
    // The first event fills the channel; the rest go to the raw logger.
    tracing::subscriber::with_default(raw_subscriber.clone(), || tracing::info!("fills the channel"));

    let before = raw_logger_metrics();
    let mut runner = TestRunner::deterministic();
    for _ in 0..CHILD_CASES {
        let case = case().new_tree(&mut runner).expect("a case").current();
        println!(
            "CASE {} {} {} {} {} {}",
            hex(&case.target),
            hex(&case.name),
            hex(&case.message),
            hex(&case.key),
            hex(&case.value),
            hex(&case.scope)
        );
        tracing::subscriber::with_default(console_subscriber.clone(), || emit(&case));
        tracing::subscriber::with_default(raw_subscriber.clone(), || emit(&case));
        let console_node = nodes.shared(Node::new(case.scope.clone()).with_logger(NodeLogger::Console));
        tracing::subscriber::with_default(console_subscriber.clone(), || console_node.in_scope(|| emit(&case)));
        let raw_node = nodes.shared(Node::new(case.scope.clone()).with_logger(NodeLogger::Raw));
        otel_info!(raw_node, "node.event", detail = case.value.as_str(), "{}", case.message);
    }
    nodes.flush(FlushReason::Explicit);
    assert_eq!(raw_handle.metrics().dropped(DropReason::ChannelFull), u64::from(CHILD_CASES));
    // At least one raw line per full-channel event and per raw node event
    // (other tests of this binary may write raw lines at the same time; the
    // parent counts the lines of a child that runs this test alone).
    assert!(raw_logger_metrics().written - before.written >= 2 * u64::from(CHILD_CASES));
}

#[test]
fn stderr_lines_are_inert_and_unescape_to_the_event() {
    let (cases, stderr) = run_child("print_arbitrary_events_on_stderr");
    assert_eq!(cases.len(), CHILD_CASES as usize);
    // Only the lines of the cases (libtest's own lines go to stdout).
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4 * cases.len(), "one line per event:\n{stderr}");
    for (case, lines) in cases.iter().zip(lines.chunks(4)) {
        let [console, raw, console_node, raw_node] = lines else { unreachable!("chunks of 4") };
        let parts = case.parts();
        let [name, message, attribute, _] = parts.each_ref().map(String::as_str);
        let target = format!(" {} ", case.target);
        let scope = format!(" {} ", case.scope);
        assert!(!console.starts_with("selftrace["), "{console}");
        assert_holds(console, &[&target, name, message, attribute]);
        assert!(raw.starts_with("selftrace[channel_full] "), "{raw}");
        assert_holds(raw, &[&target, name, message, attribute]);
        assert_holds(console_node, &[&scope, name, message, attribute]);
        assert!(raw_node.starts_with("selftrace[raw] "), "{raw_node}");
        assert_holds(raw_node, &[&scope, " node.event: ", message, &format!(" detail=\"{}\"", case.value)]);
    }
}

/// The issue's example through each stderr writer: one line each, no
/// escape sequence in the bytes.
#[test]
fn the_forged_login_prints_one_line_per_writer() {
    let (_, stderr) = run_child("print_the_forged_login");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    for line in &lines {
        assert!(!line.bytes().any(|b| b < 0x20 || b == 0x7f), "{line:?}");
        assert!(
            line.contains(r#"login from user\u{1b}[2J\u{1b}[31mFAKE\nERROR forged line\r\u{7} user="user\u{1b}[2J"#),
            "{line}"
        );
    }
    assert!(lines[1].starts_with("selftrace[channel_full] "));
    assert!(lines[2].contains(" console.node "));
}

/// Run again as a child by `the_forged_login_prints_one_line_per_writer`.
#[test]
fn print_the_forged_login() {
    set_raw_lines_per_second(u32::MAX);
    let evil = EVIL;
    let console = OtlpTracingLayer::builder(Destination::Console).with_flood_limit(None).build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(console), || {
        tracing::info!(user = evil, "login from {}", evil);
    });
    let (sender, _receiver) = OtlpBytesChannel::new(1).into_parts();
    let raw = OtlpTracingLayer::builder(Destination::Channel(sender)).with_flood_limit(None).build();
    let handle = raw.handle();
    let nodes = NodeLogs::builder(Destination::Noop).with_flood_limit(None).build();
    let node = nodes.shared(Node::new("console.node").with_logger(NodeLogger::Console));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(raw), || {
        tracing::info!(target: "quiet", "fills the channel");
        tracing::info!(user = evil, "login from {}", evil);
    });
    otel_info!(node, "login", user = evil, "login from {}", evil);
    assert_eq!(handle.metrics().dropped(DropReason::ChannelFull), 1);
}
