//! YAML in, typed configuration out, and errors that say where.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_saphyr::granit_parser::{Event, Parser};

/// Deserializes `text` (YAML) into `T`, the way this crate reads every
/// configuration: unknown keys are errors (for types that deny them, as all
/// of this crate's do), duplicated keys are errors, nothing panics.
///
/// `source` names the text in errors (a file name, say). An engine uses it
/// for its own sections too, so that every configuration error it reports
/// reads the same way.
///
/// # Errors
///
/// A [`YamlError`] with the line and column (1-based) and the key path of
/// the value at fault.
///
/// # Examples
///
/// ```
/// use selftrace_itr::{ReceiverConfig, config::from_yaml};
///
/// let err = from_yaml::<ReceiverConfig>("itr.yaml", "flush_interval: 1s\nchanel_capacity: 10\n").unwrap_err();
/// assert_eq!((err.line(), err.column()), (2, 1));
/// assert_eq!(err.path(), "chanel_capacity");
/// assert!(err.to_string().starts_with("itr.yaml:2:1: `chanel_capacity`: unknown field"));
/// ```
pub fn from_yaml<T: DeserializeOwned>(source: &str, text: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str(text).map_err(|error| {
        let (line, column) = error.location().map(|at| (usize_of(at.line()), usize_of(at.column()))).unwrap_or((0, 0));
        YamlError {
            source: source.to_owned(),
            line,
            column,
            path: key_path_at(text, line, column),
            message: message_of(&error),
        }
    })
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The parser's message without its location prefix and source snippet
/// (the error gives both separately).
fn message_of(error: &serde_saphyr::Error) -> String {
    let full = error.without_snippet().to_string();
    let first = full.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "line L column C: message", the message sometimes ending in
    // " at line L, column C" again.
    let message = match first.strip_prefix("line ").and_then(|rest| rest.split_once(": ")) {
        Some((_, message)) => message,
        None => first,
    };
    let message = match message.rfind(" at line ") {
        Some(i) if message[i..].contains(", column ") => &message[..i],
        _ => message,
    };
    message.to_owned()
}

/// A configuration that could not be read.
///
/// Its `Display` reads `source:line:column: `key.path`: message`, the shape
/// compilers and editors understand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    source: String,
    line: usize,
    column: usize,
    path: String,
    message: String,
}

impl YamlError {
    /// An error found after parsing, at a known place: an engine's own
    /// checks of its sections use it to report like the parser does.
    pub fn at(
        source: impl Into<String>,
        (line, column): (usize, usize),
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self { source: source.into(), line, column, path: path.into(), message: message.into() }
    }

    /// What the text is called (the `source` given to [`from_yaml`]).
    pub fn source_name(&self) -> &str {
        &self.source
    }

    /// The line, from 1 (0 when the parser gave no place).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column, from 1, in characters.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The key path of the value at fault, e.g.
    /// `service.telemetry.logs.processors[0].batch`; empty at the top.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() { "(top level)" } else { &self.path };
        write!(f, "{}:{}:{}: `{}`: {}", self.source, self.line, self.column, path, self.message)
    }
}

impl std::error::Error for YamlError {}

/// Walks the YAML events up to (`line`, `column`) and returns the key path
/// of the last node that starts there or before: the key or value the
/// parser stopped at.
pub(crate) fn key_path_at(text: &str, line: usize, column: usize) -> String {
    enum Frame {
        Map { key: Option<String>, in_value: bool },
        Seq { index: usize },
    }
    fn path(stack: &[Frame]) -> String {
        let mut out = String::new();
        for frame in stack {
            match frame {
                Frame::Map { key: Some(key), .. } => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Frame::Map { key: None, .. } => {}
                Frame::Seq { index } => out.push_str(&format!("[{index}]")),
            }
        }
        out
    }
    // A finished value: the map waits for its next key, the sequence
    // moves to its next item.
    fn advance(stack: &mut [Frame]) {
        match stack.last_mut() {
            Some(Frame::Map { in_value, key }) => {
                *in_value = false;
                *key = None;
            }
            Some(Frame::Seq { index }) => *index += 1,
            None => {}
        }
    }

    let mut stack: Vec<Frame> = Vec::new();
    let mut best = String::new();
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        // Markers: line from 1, column from 0.
        if (span.start.line(), span.start.col() + 1) > (line, column) {
            break;
        }
        match event {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map { key, in_value: in_value @ false }) = stack.last_mut() {
                    *key = Some(value.into_owned());
                    *in_value = true;
                    best = path(&stack);
                } else {
                    best = path(&stack);
                    advance(&mut stack);
                }
            }
            Event::Alias(_) => {
                best = path(&stack);
                advance(&mut stack);
            }
            Event::MappingStart(..) => {
                best = path(&stack);
                stack.push(Frame::Map { key: None, in_value: false });
            }
            Event::SequenceStart(..) => {
                best = path(&stack);
                stack.push(Frame::Seq { index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                advance(&mut stack);
            }
            _ => {}
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DOC: &str = "\
service:
  telemetry:
    logs:
      level: info
      processors:
        - batch:
            exporter:
              console:
        - simple:
            exporter:
              otlp:
                endpoint: x
";

    #[test]
    fn the_path_names_keys_and_sequence_items() {
        assert_eq!(key_path_at(DOC, 4, 7), "service.telemetry.logs.level");
        assert_eq!(key_path_at(DOC, 4, 14), "service.telemetry.logs.level");
        assert_eq!(key_path_at(DOC, 6, 11), "service.telemetry.logs.processors[0].batch");
        assert_eq!(key_path_at(DOC, 9, 11), "service.telemetry.logs.processors[1].simple");
        assert_eq!(key_path_at(DOC, 12, 27), "service.telemetry.logs.processors[1].simple.exporter.otlp.endpoint");
        assert_eq!(key_path_at(DOC, 1, 1), "service");
    }

    #[test]
    fn flow_collections_have_paths_too() {
        let doc = "a: {b: [1, {c: 2}]}\n";
        assert_eq!(key_path_at(doc, 1, 16), "a.b[1].c");
        assert_eq!(key_path_at(doc, 1, 10), "a.b[0]");
    }
}
