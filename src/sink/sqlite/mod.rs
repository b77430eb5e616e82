//! The embedded event store: a SQLite file (feature `sqlite`, on by default).
//!
//! [`SqliteSink`] writes events into a local SQLite database through the
//! [`Pipeline`](crate::pipeline::Pipeline); [`SqliteStore`] reads them back, from the same
//! process or another one (the `tower-siem events` command, a dashboard).
//!
//! - **A writer of its own.** All SQLite work of a sink runs on one thread of its own,
//!   `tower-siem-sqlite` (and its checkpoints on a second one, `tower-siem-ckpt`), started on
//!   the first write; the pipeline's async task encodes the batch and awaits a
//!   reply, so neither the request path nor the other sinks ever wait on the disk.
//! - **WAL, batched, idempotent.** The database runs in WAL mode with `synchronous = NORMAL`.
//!   Each batch is one transaction of `INSERT OR IGNORE` keyed by the event's UUID v7, so a
//!   batch the pipeline retries never duplicates a row. A committed batch survives a crash of
//!   the process (it is in the WAL); [`Sink::flush`] (called by
//!   `Pipeline::flush` and at shutdown) also checkpoints the WAL into the file with `fsync`,
//!   so what was flushed survives a power loss too (a reader holding an old snapshot can hold
//!   part of the checkpoint back until the next one).
//! - **Failures heal.** The file (and its directory) are opened lazily. If the directory is
//!   missing or read-only, or the disk is full, the write fails, the pipeline counts it
//!   (`write_errors`, then `dropped.sink_error` after its retries) and the connection is
//!   dropped; the next batch opens it again, so writing resumes by itself once the problem
//!   clears. Requests never wait for any of this.
//! - **Bounded.** Rows older than [`max_age`](SqliteSink::max_age) (default 30 days, by event
//!   time) and the oldest rows beyond [`max_rows`](SqliteSink::max_rows) (default 1,000,000)
//!   are deleted by the writer every [`retention_interval`](SqliteSink::retention_interval)
//!   (default 60 s), at most [`retention_batch`](SqliteSink::retention_batch) rows per step
//!   (default 10,000) so a step never holds the write lock for long; while more is due, steps
//!   run between batches until the bound holds. SQLite reuses the freed pages, so the file
//!   stops growing once the bound is reached (it does not shrink).
//!
//! # Schema
//!
//! One table, `events`, versioned with `PRAGMA user_version` (currently 2) and marked with
//! `PRAGMA application_id` so a reader can tell it from other SQLite files. It is created or
//! migrated when the writer opens the file; a file from a newer version is refused, not
//! changed.
//!
//! | column | what |
//! |---|---|
//! | `seq` | `INTEGER PRIMARY KEY`: insertion order |
//! | `id` | the event id, UUID v7 as 16 bytes, `UNIQUE` |
//! | `time_ms` | event time, milliseconds since the Unix epoch (UTC) |
//! | `name` | event name (`http.request`, `auth.failure`, …) |
//! | `ip`, `user`, `session`, `device` | the subject; session and device are keyed hashes |
//! | `ip_bucket`, `user_bucket` | a stable hash of `ip` / `user` (FNV-1a of the text, mod 4; mod 32 in version 1), for the indexes |
//! | `action` | verdict action: 0 allow, 1 step-up, 2 throttle, 3 block; `NULL` without a verdict |
//! | `score`, `reasons` | verdict score, and its rule ids as a JSON array |
//! | `method`, `route`, `path`, `status` | the HTTP exchange, when the event has one |
//! | `json` | the whole event, as the native JSON that [`JsonlSink`](crate::sink::JsonlSink) writes |
//!
//! Indexes: `time_ms`; `(name, time_ms)`; `(ip_bucket, time_ms, seq, ip)`;
//! `(user_bucket, time_ms, seq, user)`; and `time_ms` for flagged rows only (`action > 0`), for
//! the offender queries. The IP and user indexes lead with a hash bucket rather than the value:
//! new rows then land at the end of one of 4 regions instead of at a random place per client,
//! which keeps the pages a batch dirties (each written to the WAL and again at checkpoint) to a
//! few dozen; a lookup walks its bucket newest first and matches the value in the index. In
//! plain SQL, filter on both: `WHERE ip_bucket = ? AND ip = ?`.
//!
//! # Throughput
//!
//! The writer thread does SQLite work only: the event JSON and the other texts of a row are
//! written by the pipeline's worker before the batch is handed over, and the WAL is copied
//! into the file by the checkpoint thread every 16,384 rows or so. What is left is SQLite
//! inserting the rows (16 per `INSERT` statement) into the table and its indexes and writing
//! the dirty pages to the WAL.
//! New files use 8 KiB pages. `cargo bench --bench sqlite` measures the sustained rate; the
//! README has the figures.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tower_siem::sink::sqlite::{EventQuery, SqliteSink, SqliteStore};
//! use tower_siem::{Event, Siem};
//!
//! let dir = tempfile::tempdir()?;
//! let db = dir.path().join("events.db");
//! let siem = Siem::builder()
//!     .sink(SqliteSink::new(&db).max_age(Duration::from_secs(7 * 86_400)))
//!     .build()?;
//! siem.fire(Event::new("auth.failure").user("alice").ip("203.0.113.9".parse()?));
//! assert!(siem.flush(Duration::from_secs(5)));
//!
//! // Any process can read the file while the application writes it.
//! let store = SqliteStore::open(&db)?;
//! let events = store.events(&EventQuery::new().user("alice"))?;
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].name, "auth.failure");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod schema;
mod store;
mod writer;

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{BoxFuture, Sink, SinkError};
use crate::event::SharedEvent;

pub use self::store::{ActionCounts, EventQuery, Offender, OffenderKey, SqliteStore};

const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);
const DEFAULT_MAX_ROWS: u64 = 1_000_000;
const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_RETENTION_BATCH: u64 = 10_000;

/// Writes events into a SQLite file. See the [module docs](self) for the guarantees.
///
/// Cheap to clone; clones share one writer thread and one connection. The thread stops when
/// the last clone is dropped.
///
/// ```
/// use std::time::Duration;
/// use tower_siem::sink::SqliteSink;
///
/// let sink = SqliteSink::new("/var/lib/myapp/security-events.db")
///     .max_rows(5_000_000)
///     .max_age(Duration::from_secs(90 * 86_400));
/// assert_eq!(sink.path().file_name().unwrap(), "security-events.db");
/// ```
#[derive(Clone)]
pub struct SqliteSink {
    config: Arc<Config>,
    writer: Arc<WriterHandle>,
}

/// Settings of a [`SqliteSink`].
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) path: PathBuf,
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_rows: Option<u64>,
    pub(crate) retention_interval: Duration,
    pub(crate) retention_batch: u64,
}

/// The channel to the writer thread, started on first use.
#[derive(Default)]
struct WriterHandle {
    tx: Mutex<Option<mpsc::Sender<writer::Command>>>,
}

impl fmt::Debug for SqliteSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteSink")
            .field("path", &self.config.path)
            .field("max_age", &self.config.max_age)
            .field("max_rows", &self.config.max_rows)
            .field("retention_interval", &self.config.retention_interval)
            .field("retention_batch", &self.config.retention_batch)
            .finish()
    }
}

impl SqliteSink {
    /// A sink writing to the database file at `path` (created with its directory if absent).
    ///
    /// Never fails and touches nothing yet: the file is opened by the first write, so an
    /// unwritable path shows up as counted write errors, and heals when the path does.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteSink {
            config: Arc::new(Config {
                path: path.into(),
                max_age: Some(DEFAULT_MAX_AGE),
                max_rows: Some(DEFAULT_MAX_ROWS),
                retention_interval: DEFAULT_RETENTION_INTERVAL,
                retention_batch: DEFAULT_RETENTION_BATCH,
            }),
            writer: Arc::default(),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        // A clone that already wrote keeps its own writer: settings only apply to new sinks.
        self.writer = Arc::default();
        Arc::make_mut(&mut self.config)
    }

    /// Deletes events whose event time is older than this (default 30 days).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.config_mut().max_age = Some(age);
        self
    }

    /// Keeps at most about this many rows, deleting the oldest by event time beyond it
    /// (default 1,000,000; at least 1). As soon as a batch takes the table past the bound,
    /// retention steps run between batches until it holds again.
    ///
    /// The writer counts the rows when it opens the file and keeps the count itself; if
    /// several processes write one file, each counts only its own inserts after that, so the
    /// file can exceed the bound until a writer reopens it.
    pub fn max_rows(mut self, rows: u64) -> Self {
        self.config_mut().max_rows = Some(rows.max(1));
        self
    }

    /// Never deletes anything: no age bound and no row bound.
    ///
    /// # Deployment caveat
    ///
    /// The file then grows without limit; an attacker who can make requests can make it
    /// fill the disk. Prefer a large [`max_rows`](Self::max_rows).
    pub fn with_unbounded_retention(mut self) -> Self {
        let config = self.config_mut();
        config.max_age = None;
        config.max_rows = None;
        self
    }

    /// How often the writer checks the retention bounds when nothing is overdue (default
    /// 60 s; at least 10 ms).
    pub fn retention_interval(mut self, interval: Duration) -> Self {
        self.config_mut().retention_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Most rows one retention step deletes (default 10,000; at least 1).
    pub fn retention_batch(mut self, rows: u64) -> Self {
        self.config_mut().retention_batch = rows.max(1);
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Sends a command to the writer thread, starting it if needed.
    fn send(&self, make: impl FnOnce(writer::Reply) -> writer::Command) -> writer::Pending {
        let (reply, pending) = writer::reply();
        let mut tx = self.writer.tx.lock();
        if tx.is_none() {
            match writer::spawn(Arc::clone(&self.config)) {
                Ok(sender) => *tx = Some(sender),
                Err(e) => {
                    let _ = reply.send(Err(SinkError::other(format!(
                        "cannot start the SQLite writer thread: {e}"
                    ))));
                    return pending;
                }
            }
        }
        if let Some(sender) = tx.as_ref() {
            if let Err(mpsc::SendError(command)) = sender.send(make(reply)) {
                // The thread is gone (it panicked): start a new one next time.
                *tx = None;
                command.fail(SinkError::other("the SQLite writer thread stopped"));
            }
        }
        pending
    }
}

impl Sink for SqliteSink {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        if batch.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let encoded = match writer::encode(batch) {
            Ok(encoded) => encoded,
            Err(e) => return Box::pin(async { Err(e) }),
        };
        let pending = self.send(|reply| writer::Command::Write(encoded, reply));
        Box::pin(pending.wait())
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        let pending = self.send(writer::Command::Flush);
        Box::pin(pending.wait())
    }

    /// Two: the pipeline's worker encodes the next batch while the writer thread inserts this
    /// one. Rows are read back by time, and a retried batch is deduplicated by event id, so the
    /// order batches land in does not matter.
    fn max_in_flight(&self) -> usize {
        2
    }
}

/// A failure to open or query an events database. Keeps its source.
///
/// ```
/// use tower_siem::sink::sqlite::SqliteStore;
/// let err = SqliteStore::open("/nonexistent/dir/events.db").unwrap_err();
/// assert!(err.to_string().contains("/nonexistent/dir/events.db"), "{err}");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct SqliteError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl SqliteError {
    pub(crate) fn msg(message: impl Into<String>) -> Self {
        SqliteError {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        SqliteError {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl StdError for SqliteError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn types_are_send_sync() {
        assert_send_sync::<SqliteSink>();
        assert_send_sync::<SqliteStore>();
        assert_send_sync::<SqliteError>();
    }

    #[test]
    fn settings_are_clamped() {
        let sink = SqliteSink::new("x.db")
            .max_rows(0)
            .retention_batch(0)
            .retention_interval(Duration::ZERO);
        assert_eq!(sink.config.max_rows, Some(1));
        assert_eq!(sink.config.retention_batch, 1);
        assert_eq!(sink.config.retention_interval, Duration::from_millis(10));
        let unbounded = sink.with_unbounded_retention();
        assert_eq!(
            (unbounded.config.max_age, unbounded.config.max_rows),
            (None, None)
        );
    }
}
