//! The bounded writer under the encoder: every write checked against the
//! request's capacity and the record's limit, strings cut at a UTF-8
//! boundary with the truncation marker.

use std::fmt;

use super::{
    limits::{MAX_NESTING, TRUNCATION_MARKER},
    tag,
};
pub(super) use crate::out::Out;
use crate::{
    view::AnyValue,
    wire::{put_varint, varint_len, write_padded_varint},
};

// === impl Out ===

/// Which bound a write crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Exceeded {
    /// The record's own limit: degrade the value (truncate or drop it).
    Record,
    /// The request's capacity: abort the record, the caller may flush.
    Request,
}

/// Room past the request's capacity that the buffer is allocated with: short
/// copies write a whole chunk (of [`SHORT`] bytes, or 32 or 48 for a short
/// key-value, [`put_chunk`]) and cut it back (one fixed-size store, no call to `memcpy`),
/// so they never reach past the allocation.
pub(super) const SLACK: usize = 48;

/// The longest piece [`put_short`] writes as one chunk.
const SHORT: usize = 16;

/// Appends `bytes`, at most [`SHORT`] long (longer ones are copied as they
/// are), as one fixed-size chunk cut back to their length. Capacity was
/// checked for `bytes` only: the chunk's tail lands in the slack.
#[inline(always)]
pub(super) fn put_short(buf: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len();
    if n > SHORT {
        return buf.extend_from_slice(bytes);
    }
    let mut chunk = [0_u8; SHORT];
    short_chunk(&mut chunk, bytes);
    let len = buf.len();
    buf.extend_from_slice(&chunk);
    buf.truncate(len + n);
}

/// Appends `head`, `first`, `middle` and `second` (the pieces of a short
/// key-value: its head, its key, its value's field or that field's head, a
/// short string) as one chunk of `C` bytes cut back to their length: one
/// fixed-size store where the pieces would be as many writes. `first` and
/// `second` of at most [`SHORT`] bytes are copied as [`put_short`] copies;
/// pieces that do not fit the chunk are written as they are. `C` is 32
/// where there is no `second` (a scalar: no room for one), 48 where there
/// is; capacity was checked for the pieces only: the chunk's tail lands in
/// the slack.
#[inline(always)]
pub(super) fn put_chunk<const M: usize, const C: usize>(
    buf: &mut Vec<u8>,
    head: [u8; 4],
    first: &[u8],
    middle: [u8; M],
    second: &[u8],
) {
    const { assert!(C <= SLACK, "a chunk may not reach past the buffer's slack") };
    let (n, m) = (first.len(), second.len());
    // Room for `second` in a chunk past the three others, if any.
    let second_room = C.saturating_sub(4 + SHORT + M).min(SHORT);
    if n > SHORT || m > second_room || 4 + SHORT + M > C {
        buf.extend_from_slice(&head);
        buf.extend_from_slice(first);
        buf.extend_from_slice(&middle);
        return buf.extend_from_slice(second);
    }
    let mut chunk = [0_u8; C];
    let Some((start, rest)) = chunk.split_first_chunk_mut::<4>() else { return };
    *start = head;
    if let Some(at) = rest.first_chunk_mut::<SHORT>() {
        short_chunk(at, first);
    }
    if let Some(at) = rest.get_mut(n..n + M) {
        at.copy_from_slice(&middle);
    }
    if second_room == SHORT
        && let Some(at) = rest.get_mut(n + M..).and_then(|r| r.first_chunk_mut::<SHORT>())
    {
        short_chunk(at, second);
    }
    let len = buf.len();
    buf.extend_from_slice(&chunk);
    buf.truncate(len + 4 + n + M + m);
}

/// Copies `bytes` (at most [`SHORT`] long) to the start of `chunk` with at
/// most two overlapping word copies (no call to `memcpy`).
#[inline(always)]
fn short_chunk(chunk: &mut [u8; SHORT], bytes: &[u8]) {
    let n = bytes.len();
    if let (Some(head), Some(tail)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        // 8..=16 bytes: two overlapping words.
        chunk[..8].copy_from_slice(head);
        if let Some(end) = chunk.get_mut(n - 8..n) {
            end.copy_from_slice(tail);
        }
    } else if let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        chunk[..4].copy_from_slice(head);
        if let Some(end) = chunk.get_mut(n - 4..n) {
            end.copy_from_slice(tail);
        }
    } else if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) {
        // 1..=3 bytes: the first, the middle and the last.
        chunk[0] = first;
        chunk[n / 2] = bytes.get(n / 2).copied().unwrap_or_default();
        chunk[n - 1] = last;
    }
}

/// `a == b` without a `memcmp` call up to [`SHORT`] bytes (a scope name
/// against the open scope's, every record): overlapping word comparisons,
/// as [`short_chunk`] copies.
#[inline(always)]
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n > SHORT {
        return a == b;
    }
    if let (Some(ah), Some(at), Some(bh), Some(bt)) =
        (a.first_chunk::<8>(), a.last_chunk::<8>(), b.first_chunk::<8>(), b.last_chunk::<8>())
    {
        ah == bh && at == bt
    } else if let (Some(ah), Some(at), Some(bh), Some(bt)) =
        (a.first_chunk::<4>(), a.last_chunk::<4>(), b.first_chunk::<4>(), b.last_chunk::<4>())
    {
        ah == bh && at == bt
    } else {
        // 0..=3 bytes: the first, the middle and the last.
        a.first() == b.first() && a.get(n / 2) == b.get(n / 2) && a.last() == b.last()
    }
}

impl Out {
    pub(super) fn unbounded() -> Self {
        Self { buf: Vec::new(), request_end: usize::MAX, record_end: usize::MAX, end: usize::MAX, record_width: 5 }
    }

    #[inline(always)]
    pub(super) fn check(&self, n: usize) -> Result<(), Exceeded> {
        if self.buf.len() + n <= self.end { Ok(()) } else { Err(self.overflow(n)) }
    }

    /// Which bound a write of `n` bytes crosses: the record's own limit wins,
    /// since flushing cannot help it.
    #[cold]
    pub(super) fn overflow(&self, n: usize) -> Exceeded {
        if self.buf.len().saturating_add(n) > self.record_end { Exceeded::Record } else { Exceeded::Request }
    }

    #[inline(always)]
    pub(super) fn set_record_end(&mut self, record_end: usize) {
        self.record_end = record_end;
        self.end = self.request_end.min(record_end);
    }

    #[inline]
    pub(super) fn put_slice(&mut self, bytes: &[u8]) -> Result<(), Exceeded> {
        self.check(bytes.len())?;
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    #[inline]
    pub(super) fn put_tag_varint(&mut self, tag: u8, value: u64) -> Result<(), Exceeded> {
        self.check(1 + varint_len(value))?;
        self.buf.push(tag);
        put_varint(&mut self.buf, value);
        Ok(())
    }

    #[inline]
    pub(super) fn put_tag_fixed64(&mut self, tag: u8, value: u64) -> Result<(), Exceeded> {
        self.check(9)?;
        self.buf.push(tag);
        self.buf.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }

    #[inline]
    pub(super) fn put_tag_fixed32(&mut self, tag: u8, value: u32) -> Result<(), Exceeded> {
        self.check(5)?;
        self.buf.push(tag);
        self.buf.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }

    /// A length-delimited field whose content is known.
    #[inline]
    pub(super) fn put_bytes_field(&mut self, tag: u8, bytes: &[u8]) -> Result<(), Exceeded> {
        self.check(1 + varint_len(bytes.len() as u64) + bytes.len())?;
        if bytes.len() < 0x80 {
            self.buf.extend_from_slice(&[tag, bytes.len() as u8]);
            put_short(&mut self.buf, bytes);
        } else {
            self.buf.push(tag);
            put_varint(&mut self.buf, bytes.len() as u64);
            self.buf.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Opens a length-delimited field whose length is patched by [`Out::close`].
    #[inline]
    pub(super) fn open(&mut self, tag: u8, width: usize) -> Result<usize, Exceeded> {
        self.check(1 + width)?;
        let at = self.buf.len() + 1;
        match width {
            // Records' and their values' placeholders (limits up to 16383).
            2 => self.buf.extend_from_slice(&[tag, 0, 0]),
            3 => self.buf.extend_from_slice(&[tag, 0, 0, 0]),
            _ => {
                self.buf.push(tag);
                self.buf.resize(at + width, 0);
            }
        }
        Ok(at)
    }

    /// Patches the length of the field opened at `at` with `width` bytes.
    #[inline]
    pub(super) fn close(&mut self, at: usize, width: usize) {
        let len = self.buf.len().saturating_sub(at + width);
        if let Some(slot) = self.buf.get_mut(at..at + width) {
            write_padded_varint(slot, len as u64);
        }
    }

    /// Runs `write`; a value that crossed the record's limit is rolled back
    /// and reported as cut (`Ok(true)`), so the caller goes on with the next
    /// one. A request overflow is passed up: the whole record must go.
    #[inline]
    pub(super) fn degrade(&mut self, write: impl FnOnce(&mut Out) -> Result<bool, Exceeded>) -> Result<bool, Exceeded> {
        let mark = self.buf.len();
        let written = write(self);
        self.degraded(mark, written)
    }

    /// What [`degrade`](Self::degrade) makes of a write that began at
    /// `mark`, for callers that write without a closure (the encoder's
    /// field writer: a closure would be a function of its own that no
    /// longer knows the value's kind).
    #[inline(always)]
    pub(super) fn degraded(&mut self, mark: usize, written: Result<bool, Exceeded>) -> Result<bool, Exceeded> {
        match written {
            Err(Exceeded::Record) => {
                self.buf.truncate(mark);
                Ok(true)
            }
            other => other,
        }
    }

    /// A string field cut to `max` bytes and to the record's room, with the
    /// truncation marker. Returns whether it was cut.
    #[inline]
    pub(super) fn put_string_field(&mut self, tag: u8, s: &str, max: usize) -> Result<bool, Exceeded> {
        if s.len() <= max {
            match self.put_bytes_field(tag, s.as_bytes()) {
                Err(Exceeded::Record) => {}
                other => return other.map(|()| false),
            }
        }
        let mut sink = self.open_str(tag, max)?;
        // An error only means the sink stopped at its bound; `finish` says which.
        let _ = fmt::Write::write_str(&mut sink, s);
        sink.finish()
    }

    /// A string field written through `Debug`, cut like [`put_string_field`].
    ///
    /// [`put_string_field`]: Out::put_string_field
    #[inline]
    pub(super) fn put_fmt_field(&mut self, tag: u8, value: &dyn fmt::Debug, max: usize) -> Result<bool, Exceeded> {
        self.open_str(tag, max)?.write_debug(value)
    }

    /// `AnyValue { string_value }` as field `tag`, the string written
    /// through `Debug` and cut like [`put_string_field`]: a formatted body.
    /// Both length placeholders go in as one piece.
    ///
    /// [`put_string_field`]: Out::put_string_field
    #[inline]
    pub(super) fn put_fmt_any_value_field(
        &mut self,
        tag: u8,
        value: &dyn fmt::Debug,
        max: usize,
    ) -> Result<bool, Exceeded> {
        let width = self.record_width;
        // Field by field where the placeholders are not 2 bytes, or where
        // they do not fit: that path decides which bound a write crosses
        // first.
        if width != 2 || self.check(6).is_err() {
            return self.put_any_value_field(tag, AnyValue::Fmt(value), max, 0);
        }
        let outer = self.buf.len() + 1;
        self.buf.extend_from_slice(&[tag, 0, 0, tag::ANY_STRING, 0, 0]);
        let cut = self.str_sink(outer + 3, max).write_debug(value)?;
        self.close(outer, width);
        Ok(cut)
    }

    #[inline]
    pub(super) fn open_str(&mut self, tag: u8, max: usize) -> Result<StrSink<'_>, Exceeded> {
        let at = self.open(tag, self.record_width)?;
        Ok(self.str_sink(at, max))
    }

    /// A sink for the string whose placeholder, just written, is at `at`.
    #[inline]
    fn str_sink(&mut self, at: usize, max: usize) -> StrSink<'_> {
        let (width, start) = (self.record_width, self.buf.len());
        let hard_end = start.saturating_add(max).min(self.record_end);
        StrSink { out: self, at, width, start, hard_end, cut: false, request_overflow: false }
    }

    /// `KeyValue { key, value }` as field `tag`. Returns whether anything was
    /// cut or dropped inside the value.
    ///
    /// The usual attribute (a short key, a scalar or a short string, room
    /// for it) is written here, inlined where the value's kind is known (a
    /// `tracing` visitor's `record_i64` writes an integer's case only); any
    /// other goes out of line.
    #[inline(always)]
    pub(super) fn put_key_value(
        &mut self,
        tag: u8,
        key: &str,
        value: AnyValue<'_>,
        max_value: usize,
        depth: usize,
    ) -> Result<bool, Exceeded> {
        // The usual attribute: a short key and a scalar or short string, every
        // length one byte. One match, constant lengths, no `memcpy` call.
        if key.len() < 0x40 {
            let key = key.as_bytes();
            // Not match guards: `small_key_value` writes when it succeeds.
            #[allow(clippy::collapsible_match)]
            match value {
                AnyValue::Int(i) if (0..0x80).contains(&i) => {
                    if self.small_key_value(tag, key, 2, [tag::KV_VALUE, 2, tag::ANY_INT, i as u8], &[]) {
                        return Ok(false);
                    }
                }
                AnyValue::Int(i) => {
                    let len = 1 + varint_len(i as u64);
                    if self.small_key_value(tag, key, len, [tag::KV_VALUE, len as u8, tag::ANY_INT], &[]) {
                        put_varint(&mut self.buf, i as u64);
                        return Ok(false);
                    }
                }
                AnyValue::Bool(b) => {
                    if self.small_key_value(tag, key, 2, [tag::KV_VALUE, 2, tag::ANY_BOOL, u8::from(b)], &[]) {
                        return Ok(false);
                    }
                }
                AnyValue::Double(d) => {
                    let mut field = [tag::KV_VALUE, 9, tag::ANY_DOUBLE, 0, 0, 0, 0, 0, 0, 0, 0];
                    field[3..].copy_from_slice(&d.to_le_bytes());
                    if self.small_key_value(tag, key, 9, field, &[]) {
                        return Ok(false);
                    }
                }
                AnyValue::Str(s) if s.len() < 0x3E && s.len() <= max_value => {
                    let head = [tag::KV_VALUE, 2 + s.len() as u8, tag::ANY_STRING, s.len() as u8];
                    if self.small_key_value(tag, key, 2 + s.len(), head, s.as_bytes()) {
                        return Ok(false);
                    }
                }
                _ => {}
            }
        }
        self.put_key_value_slow(tag, key, value, max_value, depth)
    }

    /// [`put_key_value`](Self::put_key_value) past its inlined cases.
    #[inline(never)]
    fn put_key_value_slow(
        &mut self,
        tag: u8,
        key: &str,
        value: AnyValue<'_>,
        max_value: usize,
        depth: usize,
    ) -> Result<bool, Exceeded> {
        // A formatted value (`?x`, `%x`): its headers in two pieces.
        if let AnyValue::Fmt(formatted) = value
            && self.record_width == 2
            && key.len() < 0x80
            && depth < MAX_NESTING
            && self.check(11 + key.len()).is_ok()
        {
            let outer = self.buf.len() + 1;
            self.buf.extend_from_slice(&[tag, 0, 0, tag::KV_KEY, key.len() as u8]);
            self.buf.extend_from_slice(key.as_bytes());
            let cut = self.put_fmt_any_value_field(tag::KV_VALUE, formatted, max_value)?;
            self.close(outer, 2);
            return Ok(cut);
        }
        // Fast path: scalar and short-string values have lengths known up front.
        if let Some(any_len) = scalar_any_value_len(value, max_value) {
            let kv_len = 1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(any_len as u64) + any_len;
            match self.check(1 + varint_len(kv_len as u64) + kv_len) {
                // Every length fits one byte (most attributes): the headers
                // go in as fixed-size pieces, one capacity check each.
                Ok(()) if kv_len < 0x80 => {
                    self.buf.extend_from_slice(&[tag, kv_len as u8, tag::KV_KEY, key.len() as u8]);
                    put_short(&mut self.buf, key.as_bytes());
                    put_scalar_field(&mut self.buf, [tag::KV_VALUE, any_len as u8], value);
                    return Ok(false);
                }
                Ok(()) => {
                    self.buf.push(tag);
                    put_varint(&mut self.buf, kv_len as u64);
                    self.buf.push(tag::KV_KEY);
                    put_varint(&mut self.buf, key.len() as u64);
                    self.buf.extend_from_slice(key.as_bytes());
                    self.buf.push(tag::KV_VALUE);
                    put_varint(&mut self.buf, any_len as u64);
                    put_scalar_any_value(&mut self.buf, value);
                    return Ok(false);
                }
                Err(Exceeded::Request) => return Err(Exceeded::Request),
                Err(Exceeded::Record) => {} // fall through: the value may be cut
            }
        }
        let width = self.record_width;
        let at = self.open(tag, width)?;
        self.put_bytes_field(tag::KV_KEY, key.as_bytes())?;
        let cut = self.put_any_value_field(tag::KV_VALUE, value, max_value, depth)?;
        self.close(at, width);
        Ok(cut)
    }

    /// Writes the head of a `KeyValue` (its tag and length, the key) whose
    /// key is under 64 bytes and whose value's `AnyValue` message is
    /// `any_len` < 64 bytes, then `value` and `rest` (the value's field, or
    /// its head and a short string; see [`put_chunk`]), when all of it
    /// fits; the caller writes what is left of the value's field. False
    /// (nothing written) when it does not fit: the general path then decides
    /// which bound it crosses.
    #[inline(always)]
    fn small_key_value<const M: usize>(
        &mut self,
        tag: u8,
        key: &[u8],
        any_len: usize,
        value: [u8; M],
        rest: &[u8],
    ) -> bool {
        let kv_len = 2 + key.len() + 2 + any_len;
        if self.buf.len() + 2 + kv_len > self.end {
            return false;
        }
        let head = [tag, kv_len as u8, tag::KV_KEY, key.len() as u8];
        if rest.is_empty() {
            put_chunk::<M, 32>(&mut self.buf, head, key, value, rest);
        } else {
            put_chunk::<M, 48>(&mut self.buf, head, key, value, rest);
        }
        true
    }

    /// `AnyValue` as field `tag`. Returns whether anything was cut or dropped.
    ///
    /// A scalar or a short string with room for it is written here, inline;
    /// anything else out of line.
    #[inline(always)]
    pub(super) fn put_any_value_field(
        &mut self,
        tag: u8,
        value: AnyValue<'_>,
        max_value: usize,
        depth: usize,
    ) -> Result<bool, Exceeded> {
        if let Some(len) = scalar_any_value_len(value, max_value)
            && len < 0x80
            && self.check(2 + len).is_ok()
        {
            put_scalar_field(&mut self.buf, [tag, len as u8], value);
            return Ok(false);
        }
        self.put_any_value_field_slow(tag, value, max_value, depth)
    }

    /// [`put_any_value_field`](Self::put_any_value_field), every case.
    #[inline(never)]
    fn put_any_value_field_slow(
        &mut self,
        tag: u8,
        value: AnyValue<'_>,
        max_value: usize,
        depth: usize,
    ) -> Result<bool, Exceeded> {
        if let Some(len) = scalar_any_value_len(value, max_value) {
            match self.check(1 + varint_len(len as u64) + len) {
                Ok(()) if len < 0x80 => {
                    put_scalar_field(&mut self.buf, [tag, len as u8], value);
                    return Ok(false);
                }
                Ok(()) => {
                    self.buf.push(tag);
                    put_varint(&mut self.buf, len as u64);
                    put_scalar_any_value(&mut self.buf, value);
                    return Ok(false);
                }
                Err(Exceeded::Request) => return Err(Exceeded::Request),
                Err(Exceeded::Record) => {}
            }
        }
        if depth >= MAX_NESTING {
            return Err(Exceeded::Record);
        }
        let width = self.record_width;
        let at = self.open(tag, width)?;
        let cut = match value {
            AnyValue::Str(s) => self.put_string_field(tag::ANY_STRING, s, max_value)?,
            AnyValue::Fmt(v) => self.put_fmt_field(tag::ANY_STRING, v, max_value)?,
            AnyValue::Bytes(b) if b.len() <= max_value => {
                self.put_bytes_field(tag::ANY_BYTES, b)?;
                false
            }
            AnyValue::Bytes(_) => return Err(Exceeded::Record),
            AnyValue::Array(array) => {
                let inner = self.open(tag::ANY_ARRAY, width)?;
                let mut cut = Ok(false);
                array.visit_values(&mut |item| {
                    if let Ok(any_cut) = cut {
                        cut = self
                            .degrade(|out| out.put_any_value_field(tag::ARRAY_VALUES, item, max_value, depth + 1))
                            .map(|c| any_cut | c);
                    }
                });
                let cut = cut?;
                self.close(inner, width);
                cut
            }
            AnyValue::Map(map) => {
                let inner = self.open(tag::ANY_KVLIST, width)?;
                let mut cut = Ok(false);
                map.visit_entries(&mut |key, item| {
                    if let Ok(any_cut) = cut {
                        cut = self
                            .degrade(|out| out.put_key_value(tag::KVLIST_VALUES, key, item, max_value, depth + 1))
                            .map(|c| any_cut | c);
                    }
                });
                let cut = cut?;
                self.close(inner, width);
                cut
            }
            // Scalars only reach here when they did not fit the record.
            AnyValue::Bool(_) | AnyValue::Int(_) | AnyValue::Double(_) => return Err(Exceeded::Record),
        };
        self.close(at, width);
        Ok(cut)
    }
}

/// The encoded length of an `AnyValue` message whose size is known without
/// writing it, or `None` for values that need placeholders.
#[inline(always)]
fn scalar_any_value_len(value: AnyValue<'_>, max_value: usize) -> Option<usize> {
    match value {
        AnyValue::Str(s) if s.len() <= max_value => Some(1 + varint_len(s.len() as u64) + s.len()),
        AnyValue::Bool(_) => Some(2),
        AnyValue::Int(i) => Some(1 + varint_len(i as u64)),
        AnyValue::Double(_) => Some(9),
        AnyValue::Bytes(b) if b.len() <= max_value => Some(1 + varint_len(b.len() as u64) + b.len()),
        _ => None,
    }
}

/// Writes `header` (a field's tag and a one-byte length: the value's
/// message fits 127 bytes) and a value accepted by [`scalar_any_value_len`];
/// capacity was checked. The header and the value's own header go in as one
/// fixed-size piece: one capacity check instead of one per byte.
#[inline(always)]
fn put_scalar_field(buf: &mut Vec<u8>, [tag, len]: [u8; 2], value: AnyValue<'_>) {
    match value {
        // A string in a 127-byte message has a one-byte length.
        AnyValue::Str(s) => put_chunk::<0, 32>(buf, [tag, len, tag::ANY_STRING, s.len() as u8], s.as_bytes(), [], &[]),
        AnyValue::Bool(b) => buf.extend_from_slice(&[tag, len, tag::ANY_BOOL, u8::from(b)]),
        AnyValue::Int(i) if (0..0x80).contains(&i) => buf.extend_from_slice(&[tag, len, tag::ANY_INT, i as u8]),
        AnyValue::Double(d) => {
            let mut field = [tag, len, tag::ANY_DOUBLE, 0, 0, 0, 0, 0, 0, 0, 0];
            field[3..].copy_from_slice(&d.to_le_bytes());
            buf.extend_from_slice(&field);
        }
        _ => {
            buf.extend_from_slice(&[tag, len]);
            put_scalar_any_value(buf, value);
        }
    }
}

/// Writes a value accepted by [`scalar_any_value_len`]; capacity was checked.
#[inline(always)]
fn put_scalar_any_value(buf: &mut Vec<u8>, value: AnyValue<'_>) {
    match value {
        AnyValue::Str(s) => {
            buf.push(tag::ANY_STRING);
            put_varint(buf, s.len() as u64);
            buf.extend_from_slice(s.as_bytes());
        }
        AnyValue::Bool(b) => {
            buf.push(tag::ANY_BOOL);
            buf.push(u8::from(b));
        }
        AnyValue::Int(i) => {
            buf.push(tag::ANY_INT);
            put_varint(buf, i as u64);
        }
        AnyValue::Double(d) => {
            buf.push(tag::ANY_DOUBLE);
            buf.extend_from_slice(&d.to_le_bytes());
        }
        AnyValue::Bytes(b) => {
            buf.push(tag::ANY_BYTES);
            put_varint(buf, b.len() as u64);
            buf.extend_from_slice(b);
        }
        AnyValue::Fmt(_) | AnyValue::Array(_) | AnyValue::Map(_) => {}
    }
}

// === impl StrSink ===

/// A `fmt::Write` into an open string field that stops at its bound.
pub(super) struct StrSink<'o> {
    out: &'o mut Out,
    at: usize,
    width: usize,
    start: usize,
    hard_end: usize,
    cut: bool,
    request_overflow: bool,
}

impl fmt::Write for StrSink<'_> {
    #[inline]
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        if self.cut || self.request_overflow {
            return Err(fmt::Error);
        }
        let len = self.out.buf.len();
        // A short piece with room for it (a message's usual literal): one
        // fixed-size store into the slack, no `memcpy` call.
        if piece.len() <= SHORT && len + piece.len() <= self.hard_end.min(self.out.request_end) {
            put_short(&mut self.out.buf, piece.as_bytes());
            return Ok(());
        }
        let room = self.hard_end.saturating_sub(len);
        let take = piece.len().min(room);
        if len + take > self.out.request_end {
            self.request_overflow = true;
            return Err(fmt::Error);
        }
        // Bytes, not `&piece[..take]`: the cut may split a character; `finish`
        // moves it back to a boundary.
        self.out.buf.extend_from_slice(piece.as_bytes().get(..take).unwrap_or_default());
        if take < piece.len() {
            self.cut = true;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

impl StrSink<'_> {
    /// Writes `value` through `Debug` and finishes the string.
    #[inline]
    fn write_debug(mut self, value: &dyn fmt::Debug) -> Result<bool, Exceeded> {
        // An error only means the sink stopped at its bound; `finish` says which.
        let _ = fmt::write(&mut self, format_args!("{value:?}"));
        self.finish()
    }

    #[inline]
    fn finish(self) -> Result<bool, Exceeded> {
        if self.request_overflow {
            return Err(Exceeded::Request);
        }
        if self.cut {
            let Some(mut cut) = self.hard_end.checked_sub(TRUNCATION_MARKER.len()) else {
                return Err(Exceeded::Record);
            };
            if cut < self.start {
                return Err(Exceeded::Record);
            }
            // Step back over UTF-8 continuation bytes to a character boundary.
            while cut > self.start && self.out.buf.get(cut).is_some_and(|b| b & 0xC0 == 0x80) {
                cut -= 1;
            }
            self.out.buf.truncate(cut);
            self.out.buf.extend_from_slice(TRUNCATION_MARKER.as_bytes());
        }
        self.out.close(self.at, self.width);
        Ok(self.cut)
    }
}

/// boundary.
pub(super) fn truncate_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes its text through `Debug` in pieces, as format strings do.
    struct Text<'a>(&'a str);

    impl fmt::Debug for Text<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.split_inclusive(' ').try_for_each(|piece| f.write_str(piece))
        }
    }

    fn out(used: usize, record_room: usize, request_room: usize) -> Out {
        let mut out = Out::unbounded();
        out.buf = vec![7; used];
        out.request_end = used + request_room;
        out.record_width = 2;
        out.set_record_end(used + record_room);
        out
    }

    /// `same_bytes` is `==` at every length around its word sizes and its
    /// limit, with one byte changed at every place.
    #[test]
    fn same_bytes_is_equality() {
        let base: Vec<u8> = (b'a'..=b'z').collect();
        for n in 0..=20 {
            let a = &base[..n];
            assert!(same_bytes(a, a), "{n} bytes");
            for m in 0..=20 {
                assert_eq!(same_bytes(a, &base[..m]), n == m, "{n} and {m} bytes");
            }
            // One byte changed, at every place.
            for at in 0..n {
                let mut b = a.to_vec();
                b[at] ^= 1;
                assert!(!same_bytes(a, &b), "{n} bytes, changed at {at}");
            }
        }
    }

    /// The scalar fast paths of a key-value write what the general writer
    /// does, error for error, at every room around the limits: the whole
    /// key-value with one-byte lengths when it fits, else field by field.
    #[test]
    fn scalar_key_values_write_what_the_general_writer_does() {
        let long_key = "k".repeat(70);
        let keys = ["", "k", "abc", "key1", "exactly.16.bytes", "seventeen.bytes.k", "a.dotted.key.of_20b", &long_key];
        let long = "s".repeat(200);
        let values = [
            AnyValue::Int(0),
            AnyValue::Int(127),
            AnyValue::Int(128),
            AnyValue::Int(-1),
            AnyValue::Int(i64::MAX),
            AnyValue::Bool(true),
            AnyValue::Double(-2.5),
            AnyValue::Str(""),
            AnyValue::Str("value"),
            AnyValue::Str("abcdefg"),
            AnyValue::Str("sixteen bytes!!!"),
            AnyValue::Str("seventeen bytes!!"),
            AnyValue::Str(&long[..61]),
            AnyValue::Str(&long[..62]),
            AnyValue::Str(&long),
            AnyValue::Bytes(b"raw"),
        ];
        // The general writer: the whole key-value at its smallest when it
        // fits the request and the record, else field by field.
        let general = |o: &mut Out, key: &str, value: AnyValue<'_>, max: usize| -> Result<bool, Exceeded> {
            if scalar_any_value_len(value, max).is_some() {
                let mut any = Out::unbounded();
                any.put_any_value_field(tag::KV_VALUE, value, max, 0)?;
                let mut kv = vec![tag::KV_KEY];
                put_varint(&mut kv, key.len() as u64);
                kv.extend_from_slice(key.as_bytes());
                kv.extend_from_slice(&any.buf);
                let mut whole = vec![tag::LOG_ATTRIBUTES];
                put_varint(&mut whole, kv.len() as u64);
                whole.extend_from_slice(&kv);
                match o.check(whole.len()) {
                    Ok(()) => {
                        o.buf.extend_from_slice(&whole);
                        return Ok(false);
                    }
                    Err(Exceeded::Request) => return Err(Exceeded::Request),
                    Err(Exceeded::Record) => {}
                }
            }
            let at = o.open(tag::LOG_ATTRIBUTES, 2)?;
            o.put_bytes_field(tag::KV_KEY, key.as_bytes())?;
            let cut = o.put_any_value_field(tag::KV_VALUE, value, max, 0)?;
            o.close(at, 2);
            Ok(cut)
        };
        for key in keys {
            for value in values {
                for max in [4, 61, 300] {
                    for record_room in 0..100_usize {
                        for request_room in [record_room.saturating_sub(3), record_room, record_room + 5, 10_000] {
                            let (mut fast, mut slow) =
                                (out(5, record_room, request_room), out(5, record_room, request_room));
                            let got = fast.degrade(|o| o.put_key_value(tag::LOG_ATTRIBUTES, key, value, max, 0));
                            let want = slow.degrade(|o| general(o, key, value, max));
                            // After a request overflow the record goes whole:
                            // no bytes to compare.
                            if want != Err(Exceeded::Request) {
                                assert_eq!(
                                    fast.buf, slow.buf,
                                    "{key:?} = {value:?} max {max} rooms {record_room} {request_room}"
                                );
                            }
                            assert_eq!(got, want, "{key:?} = {value:?} max {max} rooms {record_room} {request_room}");
                        }
                    }
                }
            }
        }
    }

    /// The formatted fast paths write what the field-by-field writes do,
    /// cut for cut and error for error, at every room around the limits.
    #[test]
    fn formatted_fast_paths_write_what_the_fields_do() {
        let texts = ["", "a", "hello world", "é€ é€ é€ é€ é€", &"x ".repeat(90)];
        for text in texts {
            for max in [4, 16, 64, 300] {
                for record_room in 0..60_usize {
                    for request_room in [record_room.saturating_sub(3), record_room, record_room + 5, 10_000] {
                        let value = AnyValue::Fmt(&Text(text));
                        let (mut fast, mut slow) =
                            (out(5, record_room, request_room), out(5, record_room, request_room));
                        let got = fast.degrade(|o| o.put_fmt_any_value_field(tag::LOG_BODY, &Text(text), max));
                        let want = slow.degrade(|o| o.put_any_value_field(tag::LOG_BODY, value, max, 0));
                        assert_eq!(
                            (got, &fast.buf),
                            (want, &slow.buf),
                            "body {text:?} max {max} rooms {record_room} {request_room}"
                        );

                        let (mut fast, mut slow) =
                            (out(5, record_room, request_room), out(5, record_room, request_room));
                        let got = fast.degrade(|o| o.put_key_value(tag::LOG_ATTRIBUTES, "key", value, max, 0));
                        let want = slow.degrade(|o| {
                            let at = o.open(tag::LOG_ATTRIBUTES, 2)?;
                            o.put_bytes_field(tag::KV_KEY, b"key")?;
                            let cut = o.put_any_value_field(tag::KV_VALUE, value, max, 0)?;
                            o.close(at, 2);
                            Ok(cut)
                        });
                        assert_eq!(
                            (got, &fast.buf),
                            (want, &slow.buf),
                            "attribute {text:?} max {max} rooms {record_room} {request_room}"
                        );
                    }
                }
            }
        }
    }
}
