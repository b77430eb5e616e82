//! The disk spool: a size-capped, append-only log of events per sink that survives a sink
//! outage and a process restart.
//!
//! # Where it sits
//!
//! The request path never touches the disk: [`Pipeline::emit`](super::Pipeline::emit) still only
//! pushes onto the sink's in-memory queue. The spool is written by the pipeline's worker, as a
//! **write-ahead log**: the sink's task moves everything from the queue into the spool (one
//! buffered `write` per chunk, then `fdatasync`), and only then hands batches to the sink, from
//! memory while the sink keeps up, from disk when it fell behind. A batch is removed from the
//! spool (its *acknowledgement* is recorded) only after the sink accepted it.
//!
//! Why always write-ahead rather than spilling only once the queue backs up: the events that
//! matter most are the ones in memory when the process dies, and with spill-on-backlog those are
//! exactly the ones lost. Writing ahead costs one sequential write and one `fdatasync` per chunk
//! of up to `4 × batch_max` events on the worker thread, nothing on the request path.
//!
//! # Files
//!
//! `dir/<sink name>/` holds numbered segment files (`0000000000000001.seg`, …) and an `ack`
//! file. A segment is a sequence of records:
//!
//! | bytes | what |
//! |---|---|
//! | 4 | magic `TSP1` |
//! | 4 | payload length, little endian |
//! | 4 | CRC-32 of the length bytes and the payload, little endian |
//! | n | the event as JSON |
//!
//! The `ack` file holds two checksummed slots, written alternately, naming the first record not
//! yet delivered; a torn slot write leaves the other slot valid. Fully delivered segments are
//! deleted.
//!
//! # Reopening
//!
//! On start every segment is scanned. An incomplete or unreadable record at the end of the last
//! segment (a write cut short by a crash) is truncated away. An unreadable record elsewhere is
//! skipped — the scan resumes at the next record whose magic and checksum are valid — and
//! counted as `dropped.corrupt`. Records still pending are delivered first, before anything
//! emitted in the new process.
//!
//! # Guarantees and limits
//!
//! - An event counts as *in the spool* once the chunk holding it was written and
//!   `fdatasync`ed ([`Pipeline::persist`](super::Pipeline::persist) waits for that).
//! - Delivery from the spool is at least once: if the process dies after the sink accepted a
//!   batch but before its acknowledgement was recorded, that batch is delivered again after the
//!   restart. Events carry a unique id, which idempotent sinks use to drop the repeat. The
//!   acknowledgement is written (not synced) after every batch and synced with the next data
//!   sync, so after a *process* crash nothing else repeats; after a power loss, at most the
//!   batches acknowledged since the last sync do.
//! - The spool never grows past [`SpoolConfig::max_bytes`]: past it, new events are dropped and
//!   counted as `dropped.spool_full`. Delivered bytes are reclaimed a segment at a time.
//! - One pipeline per directory: a second pipeline of the same process is refused the
//!   directory while the first holds it; two *processes* sharing one are not detected, and
//!   corrupt each other.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::event::{Event, SharedEvent};

const MAGIC: [u8; 4] = *b"TSP1";
const HEADER: u64 = 12;
/// Largest payload accepted when reading; larger events are not spooled.
const MAX_RECORD: u64 = 64 << 20;
const ACK_FILE: &str = "ack";
const ACK_MAGIC: [u8; 4] = *b"TSA1";
const ACK_SLOT: u64 = 32;
const SEGMENT_EXT: &str = "seg";
/// Smallest segment size, whatever the configuration.
const MIN_SEGMENT: u64 = 4096;

/// Settings of the disk spool (see the [module docs](self)).
///
/// ```
/// use tower_siem::pipeline::{PipelineConfig, SpoolConfig};
///
/// let dir = tempfile::tempdir()?;
/// let config = PipelineConfig {
///     // Spool only the webhook's events, in at most 64 MiB.
///     spool: Some(SpoolConfig::new(dir.path()).max_bytes(64 << 20).only(["webhook"])),
///     ..PipelineConfig::default()
/// };
/// assert!(config.spool.as_ref().unwrap().applies_to("webhook"));
/// assert!(!config.spool.as_ref().unwrap().applies_to("jsonl"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Directory holding one subdirectory per spooled sink (created when missing).
    pub dir: PathBuf,
    /// Most bytes of segment files per sink (default 256 MiB; at least 8 KiB).
    pub max_bytes: u64,
    /// Size at which a new segment file is started (default 8 MiB; clamped to
    /// 4 KiB..=`max_bytes / 4`). Space is reclaimed a segment at a time.
    pub segment_bytes: u64,
    /// Names of the sinks to spool; `None` (the default) spools every sink.
    pub sinks: Option<Vec<String>>,
}

impl SpoolConfig {
    /// Spools every sink under `dir`, 256 MiB each at most.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolConfig {
            dir: dir.into(),
            max_bytes: 256 << 20,
            segment_bytes: 8 << 20,
            sinks: None,
        }
    }

    /// Caps each sink's spool at this many bytes.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Starts a new segment file past this size.
    pub fn segment_bytes(mut self, segment_bytes: u64) -> Self {
        self.segment_bytes = segment_bytes;
        self
    }

    /// Spools only the sinks with these [names](crate::sink::Sink::name).
    pub fn only<I, S>(mut self, sinks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.sinks = Some(sinks.into_iter().map(Into::into).collect());
        self
    }

    /// Whether the sink with this name is spooled.
    pub fn applies_to(&self, sink: &str) -> bool {
        self.sinks
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == sink))
    }

    fn limits(&self) -> (u64, u64) {
        let max = self.max_bytes.max(2 * MIN_SEGMENT);
        let segment = self
            .segment_bytes
            .clamp(MIN_SEGMENT, (max / 4).max(MIN_SEGMENT));
        (max, segment)
    }
}

/// Opens the spool of every sink `config` applies to (`None` for the others).
pub(super) fn open_all(
    config: &SpoolConfig,
    sinks: &[Box<dyn crate::sink::Sink>],
) -> Vec<io::Result<Option<(Spool, Recovered)>>> {
    let dirs = sink_dirs(config, sinks.iter().map(|s| s.name()));
    sinks
        .iter()
        .zip(dirs)
        .map(|(sink, dir)| {
            if !config.applies_to(sink.name()) {
                return Ok(None);
            }
            Spool::open(&dir, config)
                .map(Some)
                .map_err(|e| io::Error::new(e.kind(), format!("spool {}: {e}", dir.display())))
        })
        .collect()
}

/// The directory of each sink's spool: `dir/<name>`, with unsafe characters replaced and
/// repeated names numbered (`jsonl`, `jsonl-2`, …).
pub(super) fn sink_dirs<'a>(
    config: &SpoolConfig,
    names: impl Iterator<Item = &'a str>,
) -> Vec<PathBuf> {
    let mut seen: Vec<String> = Vec::new();
    names
        .map(|name| {
            let mut clean: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if clean.is_empty() {
                clean.push_str("sink");
            }
            let base = clean.clone();
            let mut n = 1;
            while seen.contains(&clean) {
                n += 1;
                clean = format!("{base}-{n}");
            }
            seen.push(clean.clone());
            config.dir.join(clean)
        })
        .collect()
}

/// A record position: segment id and byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Pos {
    pub(super) segment: u64,
    pub(super) offset: u64,
}

/// What reopening found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Recovered {
    /// Readable records still to deliver.
    pub(super) records: u64,
    /// Unreadable regions skipped (each counted as one lost event).
    pub(super) corrupt: u64,
    /// Bytes cut off the end of the last segment (a torn write).
    pub(super) truncated: u64,
}

/// The outcome of appending one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Appended {
    /// Written; the record ends here.
    At(Pos),
    /// Past the size cap (or larger than any record may be).
    Full,
    /// Not written: the write failed.
    Failed,
}

/// Records taken from the head of the spool, not yet acknowledged.
#[derive(Debug, Default)]
pub(super) struct ReadBatch {
    pub(super) events: Vec<SharedEvent>,
    /// Where the batch ends.
    pub(super) end: Option<Pos>,
    /// Valid records consumed, including `undecodable` ones.
    pub(super) records: u64,
    /// Records whose checksum held but whose JSON did not decode (lost, counted as corrupt).
    pub(super) undecodable: u64,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    /// End of the last record written or found valid.
    len: u64,
    /// Readable records from where reading starts in this segment.
    records: u64,
}

/// Spool directories open in this process: a second pipeline on the same directory would
/// interleave its records with the first one's.
static OPEN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Holds a directory in [`OPEN`] until dropped.
#[derive(Debug)]
struct Claim(PathBuf);

impl Claim {
    fn take(dir: &Path) -> io::Result<Claim> {
        let dir = fs::canonicalize(dir)?;
        let mut open = OPEN.lock();
        if open.contains(&dir) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "spool directory already in use by another pipeline in this process",
            ));
        }
        open.push(dir.clone());
        Ok(Claim(dir))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        OPEN.lock().retain(|d| d != &self.0);
    }
}

/// One sink's spool. All methods do blocking file I/O.
#[derive(Debug)]
pub(super) struct Spool {
    _claim: Claim,
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Ordered by id; never empty: the last is the one appended to.
    segments: VecDeque<Segment>,
    writer: File,
    /// A write failed and its bytes could not be cut off: start a new segment next time.
    writer_broken: bool,
    reader: Option<(u64, BufReader<File>, u64)>,
    /// The first record not yet delivered.
    cursor: Pos,
    /// Records consumed from the head segment.
    head_consumed: u64,
    /// Records not yet consumed.
    pending: u64,
    /// Sum of the segments' lengths.
    bytes: u64,
    ack: File,
    ack_seq: u64,
    dirty_data: bool,
    dirty_dir: bool,
    dirty_ack: bool,
    buf: Vec<u8>,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}.{SEGMENT_EXT}"))
}

fn crc(len: &[u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(payload);
    h.finalize()
}

/// Parses the record at `at` in `data`: `Some(end)` when it is complete and its checksum holds.
fn record_at(data: &[u8], at: usize) -> Option<usize> {
    let header = data.get(at..at.checked_add(HEADER as usize)?)?;
    if header[..4] != MAGIC {
        return None;
    }
    let len: [u8; 4] = header[4..8].try_into().ok()?;
    let n = u32::from_le_bytes(len) as u64;
    if n > MAX_RECORD {
        return None;
    }
    let start = at + HEADER as usize;
    let end = start.checked_add(n as usize)?;
    let payload = data.get(start..end)?;
    let want = u32::from_le_bytes(header[8..12].try_into().ok()?);
    (crc(&len, payload) == want).then_some(end)
}

/// The next offset after `from` where a valid record starts.
fn resync(data: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = data.get(at..)?.windows(4).position(|w| w == MAGIC) {
        let cand = at + i;
        if record_at(data, cand).is_some() {
            return Some(cand);
        }
        at = cand + 1;
    }
    None
}

/// Scans a segment's bytes from `start`: readable records, unreadable regions, and where the
/// readable data ends (a trailing unreadable region is not counted; the caller decides).
fn scan(data: &[u8], start: usize) -> (u64, u64, usize, bool) {
    let (mut records, mut corrupt, mut at) = (0u64, 0u64, start);
    loop {
        if at >= data.len() {
            return (records, corrupt, at, false);
        }
        match record_at(data, at) {
            Some(end) => {
                records += 1;
                at = end;
            }
            None => match resync(data, at + 1) {
                Some(next) => {
                    corrupt += 1;
                    at = next;
                }
                // Unreadable to the end.
                None => return (records, corrupt, at, true),
            },
        }
    }
}

fn read_ack(file: &mut File) -> io::Result<Option<(u64, Pos)>> {
    let mut data = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut data)?;
    let mut best: Option<(u64, Pos)> = None;
    for slot in data.chunks_exact(ACK_SLOT as usize).take(2) {
        if slot[..4] != ACK_MAGIC {
            continue;
        }
        let body = &slot[8..32];
        let want = u32::from_le_bytes([slot[4], slot[5], slot[6], slot[7]]);
        if crc32fast::hash(body) != want {
            continue;
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        let (seq, pos) = (
            word(0),
            Pos {
                segment: word(1),
                offset: word(2),
            },
        );
        if best.is_none_or(|(s, _)| seq > s) {
            best = Some((seq, pos));
        }
    }
    Ok(best)
}

impl Spool {
    /// Opens (or creates) the spool in `dir`: scans it, truncates a torn tail, and positions
    /// reading at the first record not yet delivered.
    ///
    /// # Errors
    ///
    /// The directory or its files cannot be created, read or written.
    pub(super) fn open(dir: &Path, config: &SpoolConfig) -> io::Result<(Spool, Recovered)> {
        let (max_bytes, segment_bytes) = config.limits();
        fs::create_dir_all(dir)?;
        let claim = Claim::take(dir)?;
        let mut ack = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(ACK_FILE))?;
        let acked = read_ack(&mut ack)?;
        let mut ids: Vec<u64> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(SEGMENT_EXT) {
                continue;
            }
            if let Some(id) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| u64::from_str_radix(s, 16).ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut recovered = Recovered::default();
        let mut segments = VecDeque::new();
        let mut cursor = None;
        let last = ids.last().copied();
        for id in ids {
            let path = segment_path(dir, id);
            let start = match acked {
                // Delivered before the last run ended: a deletion that did not happen yet.
                Some((_, a)) if id < a.segment => {
                    fs::remove_file(&path)?;
                    continue;
                }
                Some((_, a)) if id == a.segment => a.offset,
                _ => 0,
            };
            let data = fs::read(&path)?;
            let start = usize::try_from(start).unwrap_or(usize::MAX).min(data.len());
            let (records, corrupt, end, trailing) = scan(&data, start);
            recovered.records += records;
            recovered.corrupt += corrupt;
            if trailing {
                if Some(id) == last {
                    // A write cut short: cut it off so appends continue after valid data.
                    recovered.truncated += (data.len() - end) as u64;
                    OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(end as u64)?;
                } else {
                    recovered.corrupt += 1;
                }
            }
            let len = if Some(id) == last { end } else { data.len() } as u64;
            cursor.get_or_insert(Pos {
                segment: id,
                offset: start as u64,
            });
            segments.push_back(Segment { id, len, records });
        }
        let mut dirty_dir = false;
        if segments.is_empty() {
            let id = acked.map_or(1, |(_, a)| a.segment + 1);
            File::create(segment_path(dir, id))?;
            dirty_dir = true;
            segments.push_back(Segment {
                id,
                len: 0,
                records: 0,
            });
            cursor = Some(Pos {
                segment: id,
                offset: 0,
            });
        }
        let active = segments.back().map_or(0, |s| s.id);
        let mut writer = OpenOptions::new()
            .read(true)
            .write(true)
            .open(segment_path(dir, active))?;
        let active_len = segments.back().map_or(0, |s| s.len);
        writer.seek(SeekFrom::Start(active_len))?;
        let bytes = segments.iter().map(|s| s.len).sum();
        let spool = Spool {
            _claim: claim,
            dir: dir.to_owned(),
            max_bytes,
            segment_bytes,
            segments,
            writer,
            writer_broken: false,
            reader: None,
            cursor: cursor.unwrap_or(Pos {
                segment: active,
                offset: 0,
            }),
            head_consumed: 0,
            pending: recovered.records,
            bytes,
            ack,
            ack_seq: acked.map_or(0, |(s, _)| s),
            dirty_data: false,
            dirty_dir,
            dirty_ack: false,
            buf: Vec::new(),
        };
        Ok((spool, recovered))
    }

    /// Records not yet delivered (nor found unreadable).
    pub(super) fn pending(&self) -> u64 {
        self.pending
    }

    /// Bytes of segment files.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends events in order. Each is either written or refused for want of space; the
    /// data is not synced until [`sync`](Self::sync).
    ///
    /// A write failure is returned beside the outcomes: the events it hit are
    /// [`Appended::Failed`] and not readable (their bytes are cut off, or the segment is sealed
    /// before them); events written before it stay.
    pub(super) fn append(&mut self, events: &[SharedEvent]) -> (Vec<Appended>, Option<io::Error>) {
        let mut out = Vec::with_capacity(events.len());
        match self.append_into(events, &mut out) {
            Ok(()) => (out, None),
            Err(e) => {
                out.resize(events.len(), Appended::Failed);
                (out, Some(e))
            }
        }
    }

    fn append_into(&mut self, events: &[SharedEvent], out: &mut Vec<Appended>) -> io::Result<()> {
        let mut staged = 0u64;
        self.buf.clear();
        for event in events {
            let start = self.buf.len();
            self.buf.extend_from_slice(&[0u8; HEADER as usize]);
            crate::event::json::write_event(&mut self.buf, event);
            let n = (self.buf.len() - start) as u64 - HEADER;
            let size = n + HEADER;
            if n > MAX_RECORD || self.bytes + staged + size > self.max_bytes {
                self.buf.truncate(start);
                out.push(Appended::Full);
                continue;
            }
            let active_len = self.segments.back().map_or(0, |s| s.len);
            if self.writer_broken
                || (active_len + staged > 0 && active_len + staged + size > self.segment_bytes)
            {
                // Write what belongs to the current segment, then start a new one.
                let record = self.buf.split_off(start);
                self.commit_staged(staged, out)?;
                self.roll()?;
                staged = 0;
                self.buf = record;
            }
            let len = (n as u32).to_le_bytes();
            let at = self.buf.len() - size as usize;
            let sum = crc(&len, &self.buf[at + HEADER as usize..]);
            self.buf[at..at + 4].copy_from_slice(&MAGIC);
            self.buf[at + 4..at + 8].copy_from_slice(&len);
            self.buf[at + 8..at + 12].copy_from_slice(&sum.to_le_bytes());
            staged += size;
            let base = self.segments.back().map_or(0, |s| s.len);
            out.push(Appended::At(Pos {
                segment: self.segments.back().map_or(0, |s| s.id),
                offset: base + staged,
            }));
        }
        self.commit_staged(staged, out)
    }

    /// Writes the staged buffer to the active segment and accounts for its records.
    fn commit_staged(&mut self, staged: u64, out: &mut [Appended]) -> io::Result<()> {
        if staged == 0 {
            self.buf.clear();
            return Ok(());
        }
        let Some(active) = self.segments.back() else {
            return Err(io::Error::other("spool has no segment"));
        };
        let (id, len) = (active.id, active.len);
        if let Err(e) = self.writer.write_all(&self.buf) {
            // Cut off what landed; failing that, never append to this segment again.
            let cut = self
                .writer
                .set_len(len)
                .and_then(|()| self.writer.seek(SeekFrom::Start(len)).map(drop));
            if cut.is_err() {
                self.writer_broken = true;
            }
            self.buf.clear();
            for a in out.iter_mut() {
                if matches!(a, Appended::At(p) if p.segment == id && p.offset > len) {
                    *a = Appended::Failed;
                }
            }
            return Err(e);
        }
        self.buf.clear();
        let written = out
            .iter()
            .filter(|a| matches!(a, Appended::At(p) if p.segment == id && p.offset > len))
            .count() as u64;
        if let Some(active) = self.segments.back_mut() {
            active.len += staged;
            active.records += written;
        }
        self.bytes += staged;
        self.pending += written;
        self.dirty_data = true;
        Ok(())
    }

    /// Starts a new active segment.
    fn roll(&mut self) -> io::Result<()> {
        if self.dirty_data {
            self.writer.sync_data()?;
            self.dirty_data = false;
        }
        let id = self.segments.back().map_or(1, |s| s.id + 1);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(segment_path(&self.dir, id))?;
        self.writer = file;
        self.writer_broken = false;
        self.dirty_dir = true;
        self.segments.push_back(Segment {
            id,
            len: 0,
            records: 0,
        });
        Ok(())
    }

    /// Makes appended data, new segment files and acknowledgements durable.
    ///
    /// # Errors
    ///
    /// `fdatasync` failed.
    pub(super) fn sync(&mut self) -> io::Result<()> {
        if self.dirty_data {
            self.writer.sync_data()?;
            self.dirty_data = false;
        }
        if self.dirty_ack {
            self.ack.sync_data()?;
            self.dirty_ack = false;
        }
        if self.dirty_dir {
            // Directories cannot be opened as files everywhere; where they cannot, there is
            // nothing more to do.
            if let Ok(dir) = File::open(&self.dir) {
                dir.sync_all()?;
            }
            self.dirty_dir = false;
        }
        Ok(())
    }

    /// Moves past head segments that are fully consumed: records their acknowledgement,
    /// deletes them, and returns how many of their records were never read (unreadable).
    fn advance(&mut self) -> io::Result<u64> {
        let mut lost = 0;
        while self.segments.len() > 1 {
            let Some(head) = self.segments.front() else {
                break;
            };
            if self.cursor.segment == head.id && self.cursor.offset < head.len {
                break;
            }
            let missing = head.records.saturating_sub(self.head_consumed);
            lost += missing;
            self.pending = self.pending.saturating_sub(missing);
            let id = head.id;
            self.bytes = self.bytes.saturating_sub(head.len);
            self.segments.pop_front();
            self.head_consumed = 0;
            let next = self.segments.front().map_or(id + 1, |s| s.id);
            self.cursor = Pos {
                segment: next,
                offset: 0,
            };
            self.write_ack()?;
            if self.reader.as_ref().is_some_and(|(r, _, _)| *r == id) {
                self.reader = None;
            }
            match fs::remove_file(segment_path(&self.dir, id)) {
                Ok(()) => self.dirty_dir = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(lost)
    }

    /// The head segment's id, once fully consumed heads are moved past; and records lost there.
    ///
    /// # Errors
    ///
    /// Recording the acknowledgement or deleting a segment failed.
    pub(super) fn head(&mut self) -> io::Result<(Pos, u64)> {
        let lost = self.advance()?;
        Ok((self.cursor, lost))
    }

    /// Reads up to `max` records from the head, within one segment, without consuming them.
    ///
    /// # Errors
    ///
    /// Reading the segment failed.
    pub(super) fn read(&mut self, max: usize) -> io::Result<ReadBatch> {
        let mut batch = ReadBatch::default();
        let Some(head) = self.segments.front() else {
            return Ok(batch);
        };
        let (id, len) = (head.id, head.len);
        if self.cursor.segment != id || self.cursor.offset >= len {
            return Ok(batch);
        }
        let reusable =
            matches!(&self.reader, Some((r, _, at)) if *r == id && *at == self.cursor.offset);
        if !reusable {
            let mut file = File::open(segment_path(&self.dir, id))?;
            file.seek(SeekFrom::Start(self.cursor.offset))?;
            self.reader = Some((
                id,
                BufReader::with_capacity(256 * 1024, file),
                self.cursor.offset,
            ));
        }
        let Some((_, reader, at)) = self.reader.as_mut() else {
            return Ok(batch);
        };
        let mut payload = Vec::new();
        while batch.records < max as u64 && *at < len {
            let mut header = [0u8; HEADER as usize];
            let ok = reader.read_exact(&mut header).is_ok() && header[..4] == MAGIC;
            let n = u64::from(u32::from_le_bytes([
                header[4], header[5], header[6], header[7],
            ]));
            let fits = ok && n <= MAX_RECORD && *at + HEADER + n <= len;
            let mut valid = false;
            if fits {
                payload.resize(n as usize, 0);
                if reader.read_exact(&mut payload).is_ok() {
                    let want = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
                    valid = crc(&[header[4], header[5], header[6], header[7]], &payload) == want;
                }
            }
            if !valid {
                // Skip to the next readable record (rare: found corrupt since it was written
                // or scanned); what is lost shows up when the segment is left.
                let mut file = File::open(segment_path(&self.dir, id))?;
                let mut data = Vec::new();
                file.seek(SeekFrom::Start(*at))?;
                (&mut file).take(len - *at).read_to_end(&mut data)?;
                let next = resync(&data, 1).map_or(len, |i| *at + i as u64);
                file.seek(SeekFrom::Start(next))?;
                *reader = BufReader::with_capacity(256 * 1024, file);
                *at = next;
                batch.end = Some(Pos {
                    segment: id,
                    offset: next,
                });
                continue;
            }
            *at += HEADER + n;
            batch.records += 1;
            batch.end = Some(Pos {
                segment: id,
                offset: *at,
            });
            match serde_json::from_slice::<Event>(&payload) {
                Ok(event) => batch.events.push(Arc::new(event)),
                Err(_) => batch.undecodable += 1,
            }
        }
        // The reader is ahead of the cursor until the batch is acknowledged.
        Ok(batch)
    }

    /// Consumes `records` records, up to `end`, and records the acknowledgement.
    ///
    /// # Errors
    ///
    /// Writing the acknowledgement failed (the records count as consumed in memory anyway).
    pub(super) fn ack(&mut self, end: Pos, records: u64) -> io::Result<u64> {
        if end > self.cursor {
            self.cursor = end;
        }
        self.head_consumed += records;
        self.pending = self.pending.saturating_sub(records);
        self.write_ack()?;
        self.advance()
    }

    fn write_ack(&mut self) -> io::Result<()> {
        self.ack_seq += 1;
        let mut slot = [0u8; ACK_SLOT as usize];
        slot[..4].copy_from_slice(&ACK_MAGIC);
        slot[8..16].copy_from_slice(&self.ack_seq.to_le_bytes());
        slot[16..24].copy_from_slice(&self.cursor.segment.to_le_bytes());
        slot[24..32].copy_from_slice(&self.cursor.offset.to_le_bytes());
        let sum = crc32fast::hash(&slot[8..32]);
        slot[4..8].copy_from_slice(&sum.to_le_bytes());
        self.ack
            .seek(SeekFrom::Start((self.ack_seq % 2) * ACK_SLOT))?;
        self.ack.write_all(&slot)?;
        self.dirty_ack = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(n: usize) -> Vec<SharedEvent> {
        (0..n)
            .map(|i| Arc::new(Event::new("auth.failure").user(format!("user{i}"))))
            .collect()
    }

    fn config(dir: &Path) -> SpoolConfig {
        SpoolConfig::new(dir).max_bytes(1 << 20).segment_bytes(4096)
    }

    fn drain(spool: &mut Spool) -> Vec<SharedEvent> {
        let mut out = Vec::new();
        loop {
            spool.head().unwrap();
            let b = spool.read(7).unwrap();
            let Some(end) = b.end else { break };
            spool.ack(end, b.records).unwrap();
            out.extend(b.events);
        }
        out
    }

    #[test]
    fn round_trips_across_segments_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let evs = events(100);
        {
            let (mut s, rec) = Spool::open(dir.path(), &config(dir.path())).unwrap();
            assert_eq!(rec, Recovered::default());
            assert!(s
                .append(&evs)
                .0
                .iter()
                .all(|a| matches!(a, Appended::At(_))));
            s.sync().unwrap();
            assert_eq!(s.pending(), 100);
            assert!(s.segments.len() > 2, "{} segments", s.segments.len());
            // Deliver 30, then "crash".
            let mut n = 0;
            while n < 30 {
                s.head().unwrap();
                let b = s.read(30 - n).unwrap();
                s.ack(b.end.unwrap(), b.records).unwrap();
                n += b.events.len();
            }
        }
        let (mut s, rec) = Spool::open(dir.path(), &config(dir.path())).unwrap();
        assert_eq!(rec.records, 70);
        assert_eq!(rec.corrupt, 0);
        let got: Vec<_> = drain(&mut s).iter().map(|e| e.id).collect();
        let want: Vec<_> = evs[30..].iter().map(|e| e.id).collect();
        assert_eq!(got, want);
        assert_eq!(s.pending(), 0);
        // Delivered segments are gone: one (the active one) is left.
        assert_eq!(s.segments.len(), 1);
    }

    #[test]
    fn torn_tail_is_truncated_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SpoolConfig::new(dir.path());
        let evs = events(3);
        {
            let (mut s, _) = Spool::open(dir.path(), &cfg).unwrap();
            assert!(s.append(&evs).1.is_none());
            s.sync().unwrap();
        }
        let seg = segment_path(dir.path(), 1);
        let full = fs::metadata(&seg).unwrap().len();
        // Cut the last record in half, as a crash mid-write would.
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(full - 20)
            .unwrap();
        let (mut s, rec) = Spool::open(dir.path(), &cfg).unwrap();
        assert_eq!((rec.records, rec.corrupt), (2, 0));
        assert!(rec.truncated > 0);
        let more = events(1);
        assert!(s.append(&more).1.is_none());
        let got: Vec<_> = drain(&mut s).iter().map(|e| e.id).collect();
        assert_eq!(got, vec![evs[0].id, evs[1].id, more[0].id]);
    }

    #[test]
    fn corrupt_record_in_the_middle_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SpoolConfig::new(dir.path());
        let evs = events(5);
        {
            let (mut s, _) = Spool::open(dir.path(), &cfg).unwrap();
            assert!(s.append(&evs).1.is_none());
            s.sync().unwrap();
        }
        let seg = segment_path(dir.path(), 1);
        let mut data = fs::read(&seg).unwrap();
        let second = record_at(&data, 0).unwrap();
        data[second + HEADER as usize + 3] ^= 0xFF;
        fs::write(&seg, &data).unwrap();
        let (mut s, rec) = Spool::open(dir.path(), &cfg).unwrap();
        assert_eq!((rec.records, rec.corrupt, rec.truncated), (4, 1, 0));
        let got: Vec<_> = drain(&mut s).iter().map(|e| e.id).collect();
        let want: Vec<_> = [0, 2, 3, 4].iter().map(|&i| evs[i].id).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn size_cap_refuses_new_events() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SpoolConfig::new(dir.path())
            .max_bytes(16 * 1024)
            .segment_bytes(4096);
        let (mut s, _) = Spool::open(dir.path(), &cfg).unwrap();
        let out = s.append(&events(1000)).0;
        let written = out.iter().filter(|a| matches!(a, Appended::At(_))).count();
        assert!(written > 10 && written < 1000, "{written}");
        assert!(s.bytes() <= 16 * 1024);
        assert_eq!(s.pending(), written as u64);
        // Delivering frees whole segments, and then there is room again.
        drain(&mut s);
        let again = s.append(&events(10)).0;
        assert!(again.iter().all(|a| matches!(a, Appended::At(_))));
    }

    #[test]
    fn garbage_files_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(ACK_FILE),
            b"not an ack at all, just some bytes....",
        )
        .unwrap();
        fs::write(
            segment_path(dir.path(), 7),
            b"TSP1\xff\xff\xff\xffgarbage TSP1",
        )
        .unwrap();
        let (mut s, rec) = Spool::open(dir.path(), &SpoolConfig::new(dir.path())).unwrap();
        assert_eq!(rec.records, 0);
        assert!(drain(&mut s).is_empty());
        assert!(s.append(&events(2)).1.is_none());
        assert_eq!(drain(&mut s).len(), 2);
    }

    #[test]
    fn events_come_back_from_disk_as_they_went_in() {
        use crate::engine::{Action, Verdict};
        use crate::event::HttpInfo;
        let dir = tempfile::tempdir().unwrap();
        let mut e = Event::new("http.request")
            .ip("2001:db8::7".parse().unwrap())
            .user("alice")
            .session("s-hash")
            .device("d-hash")
            .user_agent("curl/8.0 \u{2028}")
            .attr("k", "v\nw");
        e.http = Some(HttpInfo {
            method: "GET".into(),
            route: Some("/a/{id}".into()),
            path: "/a/1".into(),
            query: Some("q=1&password=[REDACTED]".into()),
            status: Some(404),
            latency_us: Some(12),
            bytes: Some(0),
            request_id: Some("r1".into()),
            headers: vec![("referer".into(), "x".into())],
        });
        e.verdict = Some(Verdict {
            action: Action::Throttle,
            score: 61.5,
            reasons: vec!["http.probe".into()],
            retry_after_secs: Some(30),
        });
        let original: SharedEvent = Arc::new(e);
        let (mut s, _) = Spool::open(dir.path(), &SpoolConfig::new(dir.path())).unwrap();
        assert!(s.append(std::slice::from_ref(&original)).1.is_none());
        let back = drain(&mut s);
        assert_eq!(back.len(), 1);
        assert_eq!(*back[0], *original);
    }

    #[test]
    fn a_directory_is_held_by_one_spool_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SpoolConfig::new(dir.path());
        let first = Spool::open(dir.path(), &cfg).unwrap();
        let err = Spool::open(dir.path(), &cfg).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        drop(first);
        Spool::open(dir.path(), &cfg).unwrap();
    }

    #[test]
    fn sink_dirs_are_safe_and_distinct() {
        let cfg = SpoolConfig::new("/spool");
        let dirs = sink_dirs(&cfg, ["jsonl", "jsonl", "../x", ""].into_iter());
        let names: Vec<_> = dirs
            .iter()
            .map(|d| d.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["jsonl", "jsonl-2", "___x", "sink"]);
    }
}
