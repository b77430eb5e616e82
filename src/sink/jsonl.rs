//! A JSON-lines file sink with size-capped rotation.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{BoxFuture, Sink, SinkError};
use crate::event::SharedEvent;
use crate::format::Format;

const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_MAX_FILES: usize = 5;
/// Encoding buffers larger than this are not kept between batches.
const KEEP_BUFFER: usize = 1024 * 1024;

/// Writes one JSON object per line to a local file, rotating it by size.
///
/// - **One event, one line.** Events are encoded with `serde_json`, which escapes control
///   characters; this sink also escapes U+2028, U+2029 and U+0085 (`\u2028`, …), which some
///   readers treat as line breaks.
/// - **Format.** Lines are the event's own JSON by default; [`format`](Self::format) switches
///   to Elastic Common Schema or OCSF field names (see [`crate::format`]).
/// - **Rotation.** Before a line would push the file past [`max_bytes`](Self::max_bytes)
///   (default 64 MiB), `events.jsonl` becomes `events.jsonl.1`, `.1` becomes `.2`, … and the
///   oldest beyond [`max_files`](Self::max_files) (default 5) is deleted. A file therefore stays
///   under `max_bytes` unless a single line is larger than that.
/// - **Failures heal.** The file (and its parent directories) are opened lazily: an unwritable
///   path is not an error at construction, but at write time, and the next write tries again,
///   so writing resumes once the directory is writable or the disk has space. A line torn by a
///   failed write is cut off (or, failing that, terminated on reopen) so it never swallows the
///   next one, and a retried batch skips the lines that already landed.
/// - **Batching.** A batch is encoded into one memory buffer and handed to the OS with one
///   `write` (two around a rotation): the buffer is flushed at the end of every batch.
///   [`Sink::flush`] additionally calls `sync_data`, so `Pipeline::flush` means "on disk".
///
/// File I/O is blocking, so it runs on tokio's blocking pool (`spawn_blocking`, or inline when
/// no runtime is current): a slow disk then delays only this sink, not the other sinks that
/// share the pipeline's worker thread.
///
/// ```
/// use tower_siem::sink::JsonlSink;
///
/// let dir = tempfile::tempdir().unwrap();
/// let sink = JsonlSink::new(dir.path().join("events.jsonl"))
///     .max_bytes(16 * 1024 * 1024)
///     .max_files(3);
/// assert_eq!(sink.path(), dir.path().join("events.jsonl"));
/// ```
#[derive(Clone)]
pub struct JsonlSink {
    config: Arc<Config>,
    state: Arc<Mutex<State>>,
}

#[derive(Clone, Debug)]
struct Config {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    format: Format,
}

#[derive(Default)]
struct State {
    file: Option<File>,
    /// Bytes in the open file.
    size: u64,
    /// A batch that failed part-way: its first event's id and how many of its lines landed.
    partial: Option<(uuid::Uuid, usize)>,
    buf: Vec<u8>,
    /// Where each encoded line ends in `buf`.
    ends: Vec<usize>,
}

impl fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlSink")
            .field("path", &self.config.path)
            .field("max_bytes", &self.config.max_bytes)
            .field("max_files", &self.config.max_files)
            .field("format", &self.config.format)
            .finish()
    }
}

impl JsonlSink {
    /// A sink writing to `path`. Never fails: problems with the path show up at write time.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonlSink {
            config: Arc::new(Config {
                path: path.into(),
                max_bytes: DEFAULT_MAX_BYTES,
                max_files: DEFAULT_MAX_FILES,
                format: Format::Native,
            }),
            state: Arc::default(),
        }
    }

    /// Rotates before a file would grow past this many bytes (default 64 MiB; at least 1).
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        Arc::make_mut(&mut self.config).max_bytes = max_bytes.max(1);
        self
    }

    /// Keeps this many rotated files besides the current one (default 5). With 0, rotation
    /// starts the file afresh.
    pub fn max_files(mut self, max_files: usize) -> Self {
        Arc::make_mut(&mut self.config).max_files = max_files;
        self
    }

    /// Writes each line in this format (default [`Format::Native`]): the event's own JSON,
    /// Elastic Common Schema or OCSF. See [`crate::format`] for the field tables.
    pub fn format(mut self, format: Format) -> Self {
        Arc::make_mut(&mut self.config).format = format;
        self
    }

    /// The path of the current file.
    pub fn path(&self) -> &Path {
        &self.config.path
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &str {
        "jsonl"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        let config = Arc::clone(&self.config);
        let state = Arc::clone(&self.state);
        let batch = batch.to_vec();
        Box::pin(blocking(move || {
            write_batch(&config, &mut state.lock(), &batch)
        }))
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        let state = Arc::clone(&self.state);
        Box::pin(blocking(move || match state.lock().file.as_ref() {
            Some(file) => file.sync_data().map_err(SinkError::io),
            None => Ok(()),
        }))
    }
}

/// Runs blocking file work off the async thread when a runtime is current.
async fn blocking<T, F>(f: F) -> Result<T, SinkError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, SinkError> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(f)
            .await
            .unwrap_or_else(|e| Err(SinkError::other(format!("blocking file task failed: {e}")))),
        Err(_) => f(),
    }
}

fn write_batch(config: &Config, st: &mut State, batch: &[SharedEvent]) -> Result<(), SinkError> {
    let Some(first) = batch.first().map(|e| e.id) else {
        return Ok(());
    };
    // The pipeline retries a failed batch as a whole; lines that landed last time stay.
    let skip = match st.partial.take() {
        Some((id, landed)) if id == first => landed.min(batch.len()),
        _ => 0,
    };
    let mut landed = skip;
    let mut buf = std::mem::take(&mut st.buf);
    let mut ends = std::mem::take(&mut st.ends);
    buf.clear();
    ends.clear();
    let result = write_lines(config, st, &batch[skip..], &mut buf, &mut ends, &mut landed);
    if buf.capacity() <= KEEP_BUFFER {
        st.buf = buf;
        st.ends = ends;
    }
    if result.is_err() {
        st.partial = Some((first, landed));
        // Reopen next time: the directory may have come back, or the file been rotated away.
        st.file = None;
    }
    result
}

fn write_lines(
    config: &Config,
    st: &mut State,
    events: &[SharedEvent],
    buf: &mut Vec<u8>,
    ends: &mut Vec<usize>,
    landed: &mut usize,
) -> Result<(), SinkError> {
    if st.file.is_none() {
        open(config, st)?;
    }
    for event in events {
        let start = buf.len();
        encode_line(buf, config.format, event);
        let pending = st.size + start as u64;
        if pending > 0 && st.size + buf.len() as u64 > config.max_bytes {
            write_out(st, &buf[..start], ends, landed)?;
            buf.drain(..start);
            ends.clear();
            rotate(config, st)?;
        }
        ends.push(buf.len());
    }
    write_out(st, buf, ends, landed)
}

/// Encodes one event as one line, newline included.
fn encode_line(buf: &mut Vec<u8>, format: Format, event: &SharedEvent) {
    format.write_json(event, buf);
    buf.push(b'\n');
}

/// Hands `bytes` (whole lines ending at `ends`) to the open file, tracking what landed.
fn write_out(
    st: &mut State,
    bytes: &[u8],
    ends: &[usize],
    landed: &mut usize,
) -> Result<(), SinkError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let file = st
        .file
        .as_mut()
        .ok_or_else(|| SinkError::other("file not open"))?;
    let mut written = 0;
    let error = loop {
        if written == bytes.len() {
            st.size += written as u64;
            *landed += ends.len();
            return Ok(());
        }
        match file.write(&bytes[written..]) {
            Ok(0) => break io::Error::from(io::ErrorKind::WriteZero),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break e,
        }
    };
    let whole = ends.iter().take_while(|&&end| end <= written).count();
    let keep = if whole == 0 { 0 } else { ends[whole - 1] };
    *landed += whole;
    if keep < written {
        // Cut the torn line off; if even that fails, `open` terminates it on the next write.
        let _ = file.set_len(st.size + keep as u64);
    }
    st.size += keep as u64;
    Err(SinkError::io(error))
}

fn open(config: &Config, st: &mut State) -> Result<(), SinkError> {
    if let Some(parent) = config.path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&config.path)?;
    let mut size = file.metadata()?.len();
    if size > 0 {
        // A line torn by a crash must not swallow the next one.
        let mut last = [0u8];
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
            size += 1;
        }
    }
    st.file = Some(file);
    st.size = size;
    Ok(())
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn rotate(config: &Config, st: &mut State) -> Result<(), SinkError> {
    st.file = None;
    let path = &config.path;
    if config.max_files == 0 {
        ignore_missing(fs::remove_file(path))?;
    } else {
        ignore_missing(fs::remove_file(numbered(path, config.max_files)))?;
        for n in (1..config.max_files).rev() {
            ignore_missing(fs::rename(numbered(path, n), numbered(path, n + 1)))?;
        }
        ignore_missing(fs::rename(path, numbered(path, 1)))?;
    }
    open(config, st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    #[test]
    fn line_separators_are_escaped() {
        let event: SharedEvent =
            Arc::new(Event::new("x").attr("v", "a\u{2028}b\u{2029}c\u{85}d\né"));
        let mut buf = Vec::new();
        encode_line(&mut buf, Format::Native, &event);
        let line = std::str::from_utf8(&buf).unwrap();
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with('\n'));
        assert!(
            !line.contains('\u{2028}') && !line.contains('\u{2029}') && !line.contains('\u{85}')
        );
        assert!(line.contains(r"a\u2028b\u2029c\u0085d\né"), "{line}");
        let back: Event = serde_json::from_str(line).unwrap();
        assert_eq!(back.get_attr("v"), Some("a\u{2028}b\u{2029}c\u{85}d\né"));
    }

    #[test]
    fn retried_batch_skips_lines_that_landed() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            path: dir.path().join("e.jsonl"),
            max_bytes: u64::MAX,
            max_files: 1,
            format: Format::Native,
        };
        let mut st = State::default();
        let batch: Vec<SharedEvent> = (0..3)
            .map(|i| Arc::new(Event::new("x").attr("i", i.to_string())))
            .collect();
        // As if the first line had landed before a failure.
        st.partial = Some((batch[0].id, 1));
        write_batch(&config, &mut st, &batch[..1]).unwrap();
        assert_eq!(fs::read_to_string(&config.path).unwrap().lines().count(), 0);
        st.partial = Some((batch[0].id, 1));
        write_batch(&config, &mut st, &batch).unwrap();
        let text = fs::read_to_string(&config.path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(st.partial.is_none());
    }

    #[test]
    fn torn_line_is_terminated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        fs::write(&path, b"{\"torn\":").unwrap();
        let config = Config {
            path: path.clone(),
            max_bytes: u64::MAX,
            max_files: 1,
            format: Format::Native,
        };
        let mut st = State::default();
        write_batch(&config, &mut st, &[Arc::new(Event::new("x"))]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(serde_json::from_str::<Event>(lines[1]).is_ok());
    }
}
