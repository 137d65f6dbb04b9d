//! The exporter's disk spool: the merged batches, as they are sent, in
//! checksummed frames in segment files, with a cursor that records what the
//! endpoint acknowledged.
//!
//! # Layout
//!
//! ```text
//!  <dir>/LOCK                     held locked (flock) while an exporter uses the directory
//!  <dir>/cursor                   acknowledged position, sent position, CRC-32
//!  <dir>/00000000000000000007.seg "STSPOOL1", then frames:
//!                                 [len u32 LE][records u32 LE][crc32 u32 LE][len bytes: the batch]
//! ```
//!
//! A frame's CRC-32 (Castagnoli's polynomial is not needed: `crc32fast`'s
//! IEEE one, with hardware support) covers its length, its record count and
//! its bytes. Frames are appended to the newest segment; a segment is closed
//! at [`segment size`](segment_bytes) and deleted once every frame in it is
//! acknowledged. The spool's size is the size of its live segments; a batch
//! that would take it past `max_bytes` is refused (counted
//! `dropped_spool_full`): the newest records are the ones refused, so the
//! beginning of an outage (what caused it) is kept, nothing already written
//! is rewritten, and the cursor only moves forward (the Collector's
//! persistent queue and Vector's disk buffer refuse the newest too).
//!
//! # Delivery and crashes
//!
//! The exporter writes to the spool what is not acknowledged at each sync
//! (write-behind; see the exporter's docs), then `fdatasync`s the segment
//! and the cursor. Frames are read and sent in order, one at a time. Before
//! a frame is sent the cursor records it as sent (a batch already in flight
//! when it is written is recorded so at once); once the endpoint answers
//! (acknowledged, or refused for good), the cursor moves past it. Both are
//! small writes in place.
//!
//! * A crash (process or machine) loses what had not been written and
//!   synced: at most one sync interval.
//! * At least once: a frame sent and acknowledged whose acknowledgement the
//!   cursor had not recorded is sent again on restart. Those are the frames
//!   between the acknowledged and the sent position: at most one frame after
//!   a process crash (the one in flight), at most one `sync` interval of
//!   frames after a machine crash. Counted in `records_redelivered`.
//! * On open, the frames after the acknowledged position are read once and
//!   checked: a torn frame at the end of the last segment (a crash during a
//!   write) is cut off, a frame whose checksum fails is skipped, each counted
//!   in `spool_corrupt_frames` (their records cannot be counted: the bytes
//!   that say how many are the ones in doubt). A length that cannot be right
//!   ends the segment there. What is valid is counted in
//!   `records_recovered` and sent first.
//!
//! # Why not a library
//!
//! Evaluated for this use (one writer, one in-order reader, delete from the
//! front, crash-safe, cheap per MiB, small):
//!
//! | crate | fit |
//! |---|---|
//! | `okaywal` | a WAL with checkpoints into a store of one's own: the store and the acknowledgement cursor would still be ours; marked early in development (0.3.1, 2023) |
//! | `yaque` | an async, disk-backed queue (0.6): segments and a receiver's saved position, as here, but a dead process's lock is cleared by its `recovery` feature (sysinfo), and acknowledging is tied to its async receiver; pulls notify, sysinfo, futures |
//! | `redb` | an embedded B-tree: every batch a copy-on-write transaction, deleting the front rewrites pages; a durable commit costs an fsync |
//! | `fjall` | an LSM tree: compaction writes each batch again, many dependencies (lz4, xxhash, self-cell, ...) |
//! | `otel-arrow`'s quiver | Arrow IPC segments for OTAP records, experimental and unpublished; not OTLP bytes |
//!
//! None is cheaper than appending the bytes once: this module is a segment
//! log on `std::fs` with `crc32fast` (already in the tree through `flate2`).

use std::{
    collections::VecDeque,
    fmt,
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use bytes::Bytes;

/// The first bytes of every segment.
const MAGIC: &[u8; 8] = b"STSPOOL1";
/// The first bytes of the cursor file.
const CURSOR_MAGIC: &[u8; 8] = b"STCURSR1";
const HEADER: u64 = MAGIC.len() as u64;
/// A frame's length, record count and checksum.
pub(crate) const FRAME_HEADER: u64 = 12;
/// The largest frame payload accepted when reading (a longer length is
/// damage, not data).
const MAX_FRAME: u64 = 1 << 30;
const SEGMENT_SUFFIX: &str = ".seg";

/// Segment size for a spool of `max_bytes`: a sixteenth of it, between 1
/// MiB and 64 MiB, so deleting an acknowledged segment frees at most 1/16
/// of the spool late.
pub(crate) fn segment_bytes(max_bytes: u64) -> u64 {
    (max_bytes / 16).clamp(1 << 20, 64 << 20)
}

// === impl SpoolError ===

/// Why a spool directory cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum SpoolError {
    /// The directory cannot be created, read or written.
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Another exporter (in this process or another) holds the directory.
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// The directory can be written by other users: the spool holds other
    /// people's logs.
    Permissions {
        /// The directory.
        dir: PathBuf,
        /// Its mode.
        mode: u32,
    },
}

impl SpoolError {
    /// Whether another exporter holds the directory.
    pub fn is_locked(&self) -> bool {
        matches!(self, Self::Locked { .. })
    }
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, .. } => write!(f, "cannot use the spool path {}", path.display()),
            Self::Locked { dir } => {
                write!(f, "the spool directory {} is in use by another exporter (its LOCK is held)", dir.display())
            }
            Self::Permissions { dir, mode } => write!(
                f,
                "the spool directory {} can be written by other users (mode {mode:o}); make it 0700",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for SpoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io { path: path.to_owned(), source }
}

// === impl Position ===

/// A place in the spool: a segment and a byte offset in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    seq: u64,
    offset: u64,
}

impl Position {
    fn start(seq: u64) -> Self {
        Self { seq, offset: HEADER }
    }
}

/// One frame read back.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) bytes: Bytes,
    pub(crate) records: u64,
    /// Where the next frame starts.
    end: Position,
}

/// What opening a spool found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Records in the valid frames after the acknowledged position.
    pub(crate) records: u64,
    /// Of those, records in frames already sent before (possibly
    /// acknowledged).
    pub(crate) redelivered: u64,
    /// Frames cut off or skipped.
    pub(crate) corrupt_frames: u64,
}

/// Why an append did not happen.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// The spool would pass `max_bytes`.
    Full,
    /// The disk refused (full, read-only, failing); nothing was left half
    /// written where it could be read.
    Io(io::Error),
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    /// Bytes in the file (header included).
    len: u64,
}

// === impl Spool ===

/// A spool directory, opened and locked.
pub(crate) struct Spool {
    dir: PathBuf,
    /// Held locked for the spool's life.
    _lock: File,
    cursor_file: File,
    max_bytes: u64,
    segment_bytes: u64,
    /// Live segments, oldest first; the last one is written to.
    segments: VecDeque<Segment>,
    writer: Option<File>,
    /// The segment being read, and its handle.
    reader: Option<(u64, File)>,
    /// Everything before is acknowledged (or refused for good).
    acked: Position,
    /// Everything before was sent at least once.
    sent: Position,
    /// The next frame to read.
    read: Position,
    /// Frames written and not read yet, kept in memory to save reading
    /// them back, in order, while they fit in `cache_limit`.
    cache: VecDeque<(Position, Frame)>,
    cache_bytes: usize,
    cache_limit: usize,
    /// Records in frames not acknowledged yet.
    pending_records: u64,
    /// Frames cut off or skipped, at the open and while reading.
    corrupt_frames: u64,
    /// The end of what the open checked: damaged frames before it were
    /// counted then.
    verified: Position,
    /// Data written since the last sync.
    dirty: bool,
    /// The cursor written since the last sync.
    cursor_dirty: bool,
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("bytes", &self.bytes())
            .field("pending_records", &self.pending_records)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Opens (creating it `0700` if missing) and locks `dir`, reads what a
    /// previous exporter left and starts a new segment.
    pub(crate) fn open(dir: &Path, max_bytes: u64, cache_limit: usize) -> Result<(Self, Recovered), SpoolError> {
        create_private_dir(dir)?;
        let lock_path = dir.join("LOCK");
        let lock = private_file(&lock_path, false)?;
        if let Err(e) = lock.try_lock() {
            return Err(match e {
                fs::TryLockError::WouldBlock => SpoolError::Locked { dir: dir.to_owned() },
                fs::TryLockError::Error(source) => SpoolError::Io { path: lock_path, source },
            });
        }
        let cursor_path = dir.join("cursor");
        let mut cursor_file = private_file(&cursor_path, false)?;
        let mut seqs = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_at(dir))? {
            let entry = entry.map_err(io_at(dir))?;
            let name = entry.file_name();
            let Some(seq) = name.to_str().and_then(|n| n.strip_suffix(SEGMENT_SUFFIX)).and_then(|n| n.parse().ok())
            else {
                continue;
            };
            seqs.push(seq);
        }
        seqs.sort_unstable();
        let first = seqs.first().copied().unwrap_or(0);
        // A cursor that cannot be read: start from the oldest segment (more
        // sent again, nothing lost).
        let (mut acked, mut sent) =
            read_cursor(&mut cursor_file).unwrap_or((Position::start(first), Position::start(first)));
        if acked.seq < first {
            acked = Position::start(first);
        }
        sent = sent.max(acked);
        let mut spool = Spool {
            dir: dir.to_owned(),
            _lock: lock,
            cursor_file,
            max_bytes,
            segment_bytes: segment_bytes(max_bytes),
            segments: VecDeque::new(),
            writer: None,
            reader: None,
            acked,
            sent,
            read: acked,
            cache: VecDeque::new(),
            cache_bytes: 0,
            cache_limit,
            pending_records: 0,
            corrupt_frames: 0,
            verified: Position::default(),
            dirty: false,
            cursor_dirty: false,
        };
        let mut recovered = Recovered::default();
        for seq in seqs {
            let path = spool.segment_path(seq);
            if seq < acked.seq {
                fs::remove_file(&path).map_err(io_at(&path))?;
                continue;
            }
            let from = if seq == acked.seq { acked.offset } else { HEADER };
            let scan = scan_segment(&path, from).map_err(io_at(&path))?;
            recovered.corrupt_frames += scan.corrupt_frames;
            for (at, records) in scan.frames {
                let pos = Position { seq, offset: at };
                recovered.records += records;
                if pos < sent {
                    recovered.redelivered += records;
                }
            }
            spool.segments.push_back(Segment { seq, len: scan.len });
        }
        spool.pending_records = recovered.records;
        spool.corrupt_frames = recovered.corrupt_frames;
        spool.verified = spool.write_position();
        // Never write into a segment found on the disk: a new one, after
        // every sequence number the cursor or the directory has seen.
        let next = spool.segments.back().map_or(0, |s| s.seq + 1).max(acked.seq + 1);
        spool.start_segment(next).map_err(io_at(&spool.segment_path(next)))?;
        spool.write_cursor().map_err(io_at(&cursor_path))?;
        Ok((spool, recovered))
    }

    /// Bytes of the live segments.
    pub(crate) fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Records written and not acknowledged yet.
    pub(crate) fn pending_records(&self) -> u64 {
        self.pending_records
    }

    /// Bytes of the frames kept in memory for the reader.
    pub(crate) fn cached_bytes(&self) -> usize {
        self.cache_bytes
    }

    /// Frames cut off or skipped: found at the open, and skipped by the
    /// reader since (damaged while running).
    pub(crate) fn corrupt_frames(&self) -> u64 {
        self.corrupt_frames
    }

    /// Whether every frame written was read.
    pub(crate) fn is_drained(&self) -> bool {
        self.read >= self.write_position()
    }

    fn write_position(&self) -> Position {
        self.segments.back().map_or_else(Position::default, |s| Position { seq: s.seq, offset: s.len })
    }

    fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}{SEGMENT_SUFFIX}"))
    }

    /// Appends one batch as a frame.
    pub(crate) fn append(&mut self, bytes: &Bytes, records: u64) -> Result<(), AppendError> {
        self.append_frame(bytes, records, true).map(|_| ())
    }

    /// Appends a batch that is being sent already (it waited in memory and
    /// nothing older is left in the spool): written as a frame, read at
    /// once and recorded as sent, so that the answer settles it.
    pub(crate) fn append_in_flight(&mut self, bytes: &Bytes, records: u64) -> Result<Frame, AppendError> {
        let end = self.append_frame(bytes, records, false)?;
        let frame = Frame { bytes: bytes.clone(), records, end };
        self.hand_out(frame).map_err(AppendError::Io)
    }

    /// Appends a frame; `cache`: keep it for the reader. Returns where it
    /// ends.
    fn append_frame(&mut self, bytes: &Bytes, records: u64, cache: bool) -> Result<Position, AppendError> {
        let frame_len = FRAME_HEADER + bytes.len() as u64;
        if self.bytes() + frame_len > self.max_bytes {
            return Err(AppendError::Full);
        }
        let tail = self.segments.back().map_or(0, |s| s.len);
        if self.writer.is_none() || (tail > HEADER && tail + frame_len > self.segment_bytes) {
            let next = self.segments.back().map_or(0, |s| s.seq + 1);
            self.start_segment(next).map_err(AppendError::Io)?;
        }
        let header = frame_header(bytes, records);
        let (Some(writer), Some(segment)) = (self.writer.as_mut(), self.segments.back_mut()) else {
            return Err(AppendError::Io(io::Error::other("no segment to write")));
        };
        let start = segment.len;
        let written = writer.write_all(&header).and_then(|()| writer.write_all(bytes));
        if let Err(e) = written {
            // Leave no partial frame: cut the segment back, or, if that
            // fails too, write the next frames to a new segment (the reader
            // then finds the torn one, counts and skips it).
            if writer.set_len(start).and_then(|()| writer.seek(SeekFrom::Start(start))).is_err() {
                segment.len = start + frame_len;
                self.writer = None;
            }
            return Err(AppendError::Io(e));
        }
        segment.len += frame_len;
        let pos = Position { seq: segment.seq, offset: start };
        let end = Position { seq: segment.seq, offset: segment.len };
        self.pending_records += records;
        self.dirty = true;
        // Keep it in memory for the reader while it fits, in order: a gap
        // (a frame left out) is read back from the disk.
        if cache && self.cache_bytes + bytes.len() <= self.cache_limit {
            self.cache_bytes += bytes.len();
            self.cache.push_back((pos, Frame { bytes: bytes.clone(), records, end }));
        }
        Ok(end)
    }

    /// The next frame to send, skipping (and counting) damaged ones; the
    /// cursor records it as sent.
    ///
    /// Call it once the frame it gave before is settled: frames are sent one
    /// at a time, and what lies before the read position (damaged frames
    /// skipped) is settled with them.
    pub(crate) fn next(&mut self) -> io::Result<Option<Frame>> {
        self.acked = self.acked.max(self.read);
        loop {
            if self.is_drained() {
                return Ok(None);
            }
            // Cached frames before the read position were read from the disk.
            while self.cache.front().is_some_and(|(pos, _)| *pos < self.read) {
                self.uncache();
            }
            if self.cache.front().is_some_and(|(pos, _)| *pos == self.read) {
                let frame = self.uncache();
                return self.hand_out(frame).map(Some);
            }
            let Some(segment_len) = self.segments.iter().find(|s| s.seq == self.read.seq).map(|s| s.len) else {
                // A segment deleted or never written: on to the next live one.
                match self.segments.iter().find(|s| s.seq > self.read.seq) {
                    Some(s) => self.read = Position::start(s.seq),
                    None => return Ok(None),
                }
                continue;
            };
            if self.read.offset >= segment_len {
                match self.segments.iter().find(|s| s.seq > self.read.seq) {
                    Some(s) => self.read = Position::start(s.seq),
                    None => return Ok(None),
                }
                continue;
            }
            match self.read_frame(segment_len) {
                Ok(Some(frame)) => return self.hand_out(frame).map(Some),
                Ok(None) => continue,
                Err(e) => {
                    // A segment that cannot be read (removed, failing disk):
                    // the rest of it is given up, counted, and the reader
                    // goes on with the next one.
                    self.corrupt_frames += 1;
                    self.reader = None;
                    self.read = Position { seq: self.read.seq, offset: segment_len };
                    return Err(e);
                }
            }
        }
    }

    fn uncache(&mut self) -> Frame {
        let (_, frame) = self.cache.pop_front().unwrap_or_else(|| unreachable!("checked by the caller"));
        self.cache_bytes -= frame.bytes.len();
        frame
    }

    fn hand_out(&mut self, frame: Frame) -> io::Result<Frame> {
        self.read = frame.end;
        if frame.end > self.sent {
            self.sent = frame.end;
            self.write_cursor()?;
        }
        Ok(frame)
    }

    /// Reads the frame at the read position from the disk; `None` when it
    /// is damaged (skipped and counted, or the rest of the segment given up).
    fn read_frame(&mut self, segment_len: u64) -> io::Result<Option<Frame>> {
        let seq = self.read.seq;
        if self.reader.as_ref().is_none_or(|(s, _)| *s != seq) {
            let file = File::open(self.segment_path(seq))?;
            self.reader = Some((seq, file));
        }
        let Some((_, file)) = self.reader.as_mut() else { unreachable!("opened above") };
        file.seek(SeekFrom::Start(self.read.offset))?;
        let remaining = segment_len - self.read.offset;
        let mut header = [0; FRAME_HEADER as usize];
        let fits = remaining >= FRAME_HEADER && file.read_exact(&mut header).is_ok();
        let (len, records, crc) = parse_header(&header);
        let counted = self.read >= self.verified;
        if !fits || len > MAX_FRAME || FRAME_HEADER + len > remaining {
            // Nothing after this can be trusted to start a frame.
            self.corrupt_frames += u64::from(counted);
            self.read = Position { seq, offset: segment_len };
            return Ok(None);
        }
        let mut payload = vec![0; len as usize];
        file.read_exact(&mut payload)?;
        let end = Position { seq, offset: self.read.offset + FRAME_HEADER + len };
        if checksum(len, records, &payload) != crc {
            self.corrupt_frames += u64::from(counted);
            self.read = end;
            return Ok(None);
        }
        Ok(Some(Frame { bytes: Bytes::from(payload), records, end }))
    }

    /// The endpoint answered for `frame` (acknowledged or refused for good):
    /// the cursor moves past it, and segments left behind are deleted.
    pub(crate) fn settle(&mut self, frame: &Frame) -> io::Result<()> {
        self.pending_records = self.pending_records.saturating_sub(frame.records);
        self.acked = self.acked.max(frame.end);
        self.write_cursor()?;
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.seq < self.acked.seq) {
            let Some(segment) = self.segments.pop_front() else { break };
            if self.reader.as_ref().is_some_and(|(s, _)| *s == segment.seq) {
                self.reader = None;
            }
            fs::remove_file(self.segment_path(segment.seq))?;
        }
        Ok(())
    }

    /// Flushes written frames and the cursor to the disk.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.dirty)
            && let Some(writer) = &self.writer
        {
            writer.sync_data()?;
        }
        if std::mem::take(&mut self.cursor_dirty) {
            self.cursor_file.sync_data()?;
        }
        Ok(())
    }

    fn start_segment(&mut self, seq: u64) -> io::Result<()> {
        // The segment left behind is synced now: `sync` only sees the
        // newest one.
        if let Some(old) = self.writer.take()
            && self.dirty
        {
            old.sync_data()?;
        }
        let path = self.segment_path(seq);
        let mut file = private_file(&path, true).map_err(|e| match e {
            SpoolError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        })?;
        file.write_all(MAGIC)?;
        // The new file's name must survive a machine crash too.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.segments.push_back(Segment { seq, len: HEADER });
        self.writer = Some(file);
        Ok(())
    }

    fn write_cursor(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 44];
        buf[..8].copy_from_slice(CURSOR_MAGIC);
        for (i, v) in [self.acked.seq, self.acked.offset, self.sent.seq, self.sent.offset].into_iter().enumerate() {
            buf[8 + i * 8..16 + i * 8].copy_from_slice(&v.to_le_bytes());
        }
        let crc = crc32fast::hash(&buf[..40]);
        buf[40..].copy_from_slice(&crc.to_le_bytes());
        self.cursor_dirty = true;
        self.cursor_file.seek(SeekFrom::Start(0))?;
        self.cursor_file.write_all(&buf)
    }
}

fn read_cursor(file: &mut File) -> Option<(Position, Position)> {
    let mut buf = [0u8; 44];
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_exact(&mut buf).ok()?;
    let crc = u32::from_le_bytes(buf[40..44].try_into().ok()?);
    if &buf[..8] != CURSOR_MAGIC || crc32fast::hash(&buf[..40]) != crc {
        return None;
    }
    let word = |i: usize| buf.get(8 + i * 8..16 + i * 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    Some((Position { seq: word(0)?, offset: word(1)? }, Position { seq: word(2)?, offset: word(3)? }))
}

/// The 12-byte frame header of `bytes`.
pub(crate) fn frame_header(bytes: &[u8], records: u64) -> [u8; FRAME_HEADER as usize] {
    let len = bytes.len() as u64;
    let records = records.min(u64::from(u32::MAX));
    let mut header = [0; FRAME_HEADER as usize];
    header[..4].copy_from_slice(&(len as u32).to_le_bytes());
    header[4..8].copy_from_slice(&(records as u32).to_le_bytes());
    header[8..].copy_from_slice(&checksum(len, records, bytes).to_le_bytes());
    header
}

fn parse_header(header: &[u8; FRAME_HEADER as usize]) -> (u64, u64, u32) {
    let word = |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    (u64::from(word(0)), u64::from(word(4)), word(8))
}

fn checksum(len: u64, records: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&(len as u32).to_le_bytes());
    hasher.update(&(records as u32).to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// What a segment holds from an offset on.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Valid frames: offset and records.
    pub(crate) frames: Vec<(u64, u64)>,
    pub(crate) corrupt_frames: u64,
    /// The segment's length after a torn tail is cut off.
    pub(crate) len: u64,
}

/// Checks the frames of the segment at `path` from `from` on; a torn or
/// unreadable tail is cut off.
fn scan_segment(path: &Path, from: u64) -> io::Result<Scan> {
    let data = fs::read(path)?;
    let scan = scan_frames(&data, from);
    if scan.len < data.len() as u64 {
        OpenOptions::new().write(true).open(path)?.set_len(scan.len)?;
    }
    Ok(scan)
}

/// Checks the frames of a segment's bytes from `from` on. `len` is where
/// the whole frames end (a damaged one whose length held included).
pub(crate) fn scan_frames(data: &[u8], from: u64) -> Scan {
    let mut scan = Scan::default();
    if data.len() < HEADER as usize || &data[..HEADER as usize] != MAGIC {
        // Not a segment (a crash before its header was written): nothing
        // in it, one damaged frame if it holds anything.
        scan.corrupt_frames = u64::from(!data.is_empty());
        return scan;
    }
    let mut at = from.max(HEADER);
    while at < data.len() as u64 {
        let rest = &data[at as usize..];
        let Some(header) = rest.get(..FRAME_HEADER as usize).and_then(|h| <&[u8; 12]>::try_from(h).ok()) else {
            scan.corrupt_frames += 1;
            break;
        };
        let (len, records, crc) = parse_header(header);
        let Some(payload) = rest.get(FRAME_HEADER as usize..).and_then(|p| p.get(..len as usize)) else {
            // Longer than what is there: torn, or a damaged length.
            scan.corrupt_frames += 1;
            break;
        };
        if len > MAX_FRAME {
            scan.corrupt_frames += 1;
            break;
        }
        if checksum(len, records, payload) == crc {
            scan.frames.push((at, records));
        } else {
            scan.corrupt_frames += 1;
        }
        at += FRAME_HEADER + len;
    }
    // Where the whole frames end; a torn or unreadable tail is not part of
    // the segment.
    scan.len = at;
    scan
}

/// Creates `dir` with mode `0700` if missing; refuses one that others can
/// write.
fn create_private_dir(dir: &Path) -> Result<(), SpoolError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_at(dir))?;
    let meta = fs::metadata(dir).map_err(io_at(dir))?;
    if !meta.is_dir() {
        return Err(SpoolError::Io { path: dir.to_owned(), source: io::Error::other("not a directory") });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(SpoolError::Permissions { dir: dir.to_owned(), mode });
        }
    }
    Ok(())
}

/// Opens (creating it `0600`) a file for reading and writing; `new`: a new
/// file, emptied if it exists.
fn private_file(path: &Path, new: bool) -> Result<File, SpoolError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(new);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io_at(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segment(frames: &[(Vec<u8>, u64)]) -> (Vec<u8>, Vec<u64>) {
        let mut data = MAGIC.to_vec();
        let mut ends = Vec::new();
        for (bytes, records) in frames {
            data.extend_from_slice(&frame_header(bytes, *records));
            data.extend_from_slice(bytes);
            ends.push(data.len() as u64);
        }
        (data, ends)
    }

    proptest! {
        /// Any sequence of frames cut at any byte gives back every whole
        /// frame before the cut and nothing else.
        #[test]
        fn a_cut_keeps_every_whole_frame_and_nothing_else(
            frames in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..200), 0u64..1000), 0..12),
            cut in any::<prop::sample::Index>(),
        ) {
            let (data, ends) = segment(&frames);
            let cut = cut.index(data.len() + 1);
            let scan = scan_frames(&data[..cut], HEADER);
            let whole = ends.iter().filter(|&&end| end <= cut as u64).count();
            prop_assert_eq!(scan.frames.len(), whole);
            for ((at, records), (i, (_, expected))) in scan.frames.iter().zip(frames.iter().enumerate()) {
                let start = if i == 0 { HEADER } else { ends[i - 1] };
                prop_assert_eq!(*at, start);
                prop_assert_eq!(records, expected);
            }
            let valid_end = if whole == 0 { HEADER.min(cut as u64) } else { ends[whole - 1] };
            if cut as u64 >= HEADER {
                prop_assert_eq!(scan.len, valid_end);
                // A cut inside a frame is one torn frame.
                prop_assert_eq!(scan.corrupt_frames, u64::from(cut as u64 > valid_end));
            }
        }

        /// A byte flipped inside a frame's bytes loses that frame only.
        #[test]
        fn a_flipped_byte_loses_one_frame(
            frames in prop::collection::vec((prop::collection::vec(any::<u8>(), 1..100), 0u64..1000), 1..8),
            which in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
        ) {
            let (mut data, ends) = segment(&frames);
            let which = which.index(frames.len());
            let start = if which == 0 { HEADER } else { ends[which - 1] };
            let payload = start + FRAME_HEADER;
            let flip = payload + at.index(frames[which].0.len()) as u64;
            data[flip as usize] ^= 0x5a;
            let scan = scan_frames(&data, HEADER);
            prop_assert_eq!(scan.corrupt_frames, 1);
            prop_assert_eq!(scan.frames.len(), frames.len() - 1);
            prop_assert!(scan.frames.iter().all(|&(s, _)| s != start));
        }
    }
}
