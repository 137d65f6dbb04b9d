//! Escaping for human-readable lines: what an event carries can neither
//! drive the terminal nor forge a line.
//!
//! Everything of an event that a console or raw line shows (message, field
//! names and values, target, scope, event name, span fields, `Debug`
//! output) passes through [`Escaped`] on its way to the line. The notation
//! is Rust's string-literal escaping, which `{:?}` of a `str` also writes:
//!
//! | character | written |
//! |---|---|
//! | `\` | `\\` |
//! | `"` (in a quoted value) | `\"` |
//! | line feed, carriage return, tab | `\n`, `\r`, `\t` |
//! | other C0 controls (U+0000-U+001F), `DEL`, C1 controls (U+0080-U+009F) | `\u{1b}`, `\u{7f}`, `\u{9b}` |
//! | bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) | `\u{202e}` |
//! | line and paragraph separators (U+2028, U+2029) | `\u{2028}` |
//!
//! So a line holds no byte below 0x20 but its final newline, no `ESC`, no
//! C1 control, and reads the way it is stored: every `\` in the output
//! starts an escape, and undoing them gives back the original text.
//! Bidirectional controls are escaped too (tracing-subscriber's fix for
//! RUSTSEC-2025-0055 leaves them): they make a line display in an order
//! other than the one it holds (CVE-2021-42574, "Trojan Source").
//!
//! Cost: a scan of the text; runs of ordinary characters are written in one
//! call, nothing is allocated.

use std::fmt::{self, Write as _};

/// A `fmt::Write` that escapes everything written through it before it
/// reaches `out` (see the [module docs](self)).
pub(crate) struct Escaped<'o> {
    out: &'o mut dyn fmt::Write,
    quoted: bool,
}

impl<'o> Escaped<'o> {
    /// Escapes text written outside quotes (a message, a name, a target).
    pub(crate) fn bare(out: &'o mut dyn fmt::Write) -> Self {
        Self { out, quoted: false }
    }

    /// Escapes text written between `"` (a string value): `"` is escaped
    /// too.
    pub(crate) fn quoted(out: &'o mut dyn fmt::Write) -> Self {
        Self { out, quoted: true }
    }
}

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut run = 0;
        for (at, c) in s.char_indices() {
            if !needs_escape(c, self.quoted) {
                continue;
            }
            if let Some(plain) = s.get(run..at) {
                self.out.write_str(plain)?;
            }
            match c {
                '\\' => self.out.write_str("\\\\")?,
                '"' => self.out.write_str("\\\"")?,
                '\n' => self.out.write_str("\\n")?,
                '\r' => self.out.write_str("\\r")?,
                '\t' => self.out.write_str("\\t")?,
                c => write!(self.out, "\\u{{{:x}}}", u32::from(c))?,
            }
            run = at + c.len_utf8();
        }
        self.out.write_str(s.get(run..).unwrap_or_default())
    }
}

/// Writes `s` outside quotes, escaped.
pub(crate) fn write_bare(out: &mut dyn fmt::Write, s: &str) -> fmt::Result {
    Escaped::bare(out).write_str(s)
}

/// Writes `s` between `"`, escaped.
pub(crate) fn write_quoted(out: &mut dyn fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped::quoted(out).write_str(s)?;
    out.write_char('"')
}

fn needs_escape(c: char, quoted: bool) -> bool {
    match c {
        '\\' => true,
        '"' => quoted,
        ' '..='~' => false,
        '\0'..='\x1f' | '\x7f'..='\u{9f}' => true,
        '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        '\u{2028}' | '\u{2029}' => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(s: &str) -> String {
        let mut out = String::new();
        write_bare(&mut out, s).unwrap_or_default();
        out
    }

    #[test]
    fn controls_become_visible_escapes() {
        assert_eq!(bare("a\x1b[2Jb\nc\rd\x07e\tf\x7fg\u{9b}h"), r"a\u{1b}[2Jb\nc\rd\u{7}e\tf\u{7f}g\u{9b}h");
        assert_eq!(bare("x\u{202e}y\u{2066}z\u{2028}"), r"x\u{202e}y\u{2066}z\u{2028}");
    }

    #[test]
    fn backslashes_are_doubled_and_quotes_only_in_quoted_values() {
        assert_eq!(bare(r#"C:\dir "q""#), r#"C:\\dir "q""#);
        let mut out = String::new();
        write_quoted(&mut out, r#"a"b\c"#).unwrap_or_default();
        assert_eq!(out, r#""a\"b\\c""#);
    }

    #[test]
    fn quoted_strings_read_as_rust_debug_for_what_both_escape() {
        for s in ["plain", "tab\there", "nl\nand\"quote\\", "esc\x1b[31m", "nel\u{85}", "rlo\u{202e}"] {
            let mut out = String::new();
            write_quoted(&mut out, s).unwrap_or_default();
            assert_eq!(out, format!("{s:?}"));
        }
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        assert_eq!(bare("héllo wörld ✓ 日本"), "héllo wörld ✓ 日本");
    }
}
