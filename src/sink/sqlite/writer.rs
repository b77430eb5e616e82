//! The writer thread: one connection, batched inserts, retention, reopen after failures.

use std::fs;
use std::io::{self, Write as _};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, ErrorCode};
use tokio::sync::oneshot;

use super::schema::{self, TxGuard};
use super::Config;
use crate::event::SharedEvent;
use crate::sink::{SinkError, SinkErrorKind};

const INSERT: &str = "INSERT OR IGNORE INTO events \
    (id, time_ms, name, ip, ip_bucket, user, user_bucket, session, device, action, score, reasons, \
     method, route, path, status, json) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

const DELETE_OLDEST: &str =
    "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY time_ms LIMIT ?1)";

const DELETE_BEFORE: &str = "DELETE FROM events WHERE seq IN \
    (SELECT seq FROM events WHERE time_ms < ?1 ORDER BY time_ms LIMIT ?2)";

/// How often `flush` tries again while a background checkpoint holds the checkpoint lock
/// (1 ms apart).
const FLUSH_TRIES: u32 = 5_000;

/// Where the writer sends a command's outcome.
pub(crate) type Reply = oneshot::Sender<Result<(), SinkError>>;

/// Work for the writer thread.
pub(crate) enum Command {
    /// Insert a batch in one transaction.
    Write(Encoded, Reply),
    /// Checkpoint the WAL (with fsync).
    Flush(Reply),
}

impl Command {
    /// Answers the command with an error without running it.
    pub(crate) fn fail(self, error: SinkError) {
        let (Command::Write(_, reply) | Command::Flush(reply)) = self;
        let _ = reply.send(Err(error));
    }
}

/// The caller's side of a command.
pub(crate) struct Pending(oneshot::Receiver<Result<(), SinkError>>);

impl Pending {
    pub(crate) async fn wait(self) -> Result<(), SinkError> {
        self.0
            .await
            .unwrap_or_else(|_| Err(SinkError::other("the SQLite writer thread stopped")))
    }
}

pub(crate) fn reply() -> (Reply, Pending) {
    let (tx, rx) = oneshot::channel();
    (tx, Pending(rx))
}

/// A batch with the text of every row already written: the event JSON, the IP and the
/// verdict's reasons. [`encode`] runs on the sink's caller (the pipeline's worker thread), so
/// the writer thread spends its time in SQLite only.
pub(crate) struct Encoded {
    events: Vec<SharedEvent>,
    text: Vec<u8>,
    rows: Vec<Spans>,
}

/// Where one row's texts are in [`Encoded::text`].
struct Spans {
    json: Range<usize>,
    ip: Option<Range<usize>>,
    reasons: Option<Range<usize>>,
}

/// Encodes a batch for the writer.
pub(crate) fn encode(batch: &[SharedEvent]) -> Result<Encoded, SinkError> {
    let mut text = Vec::with_capacity(batch.len() * 768);
    let mut rows = Vec::with_capacity(batch.len());
    for event in batch {
        let start = text.len();
        crate::event::json::write_event(&mut text, event);
        let json = start..text.len();
        let ip = event.subject.ip.map(|ip| {
            let start = text.len();
            // Writing to a Vec cannot fail.
            let _ = write!(text, "{ip}");
            start..text.len()
        });
        let reasons = match event.verdict.as_ref() {
            Some(v) if !v.reasons.is_empty() => {
                let start = text.len();
                serde_json::to_writer(&mut text, &v.reasons).map_err(SinkError::encode)?;
                Some(start..text.len())
            }
            _ => None,
        };
        rows.push(Spans { json, ip, reasons });
    }
    Ok(Encoded {
        events: batch.to_vec(),
        text,
        rows,
    })
}

/// Starts a writer thread and its checkpointer; both run until every sender is dropped.
pub(crate) fn spawn(config: Arc<Config>) -> io::Result<mpsc::Sender<Command>> {
    let (tx, rx) = mpsc::channel();
    let checkpointer = Checkpointer::spawn(config.path.clone())?;
    thread::Builder::new()
        .name("tower-siem-sqlite".into())
        .spawn(move || Writer::new(config, Some(checkpointer)).run(rx))?;
    Ok(tx)
}

/// Rows written between two background checkpoints: about 16 MiB of WAL with typical events.
const CHECKPOINT_ROWS: u64 = 16_384;

/// The writer's side of the checkpoint thread.
///
/// A checkpoint copies the pages of the WAL into the database file and `fsync`s it: I/O that
/// took about a third of the writer's time when the writer did it itself. The thread
/// `tower-siem-ckpt` does it on a connection of its own (SQLite allows one
/// checkpoint beside a writer in WAL mode), woken every [`CHECKPOINT_ROWS`] rows. A checkpoint
/// that runs beside a writer cannot copy the frames committed meanwhile, and the WAL only
/// starts over from its beginning once every frame is copied, so after each background
/// checkpoint the writer copies that short tail itself, between two batches.
struct Checkpointer {
    wake: mpsc::SyncSender<()>,
    done: Arc<AtomicBool>,
    rows: u64,
}

impl Checkpointer {
    fn spawn(path: PathBuf) -> io::Result<Self> {
        let (wake, rx) = mpsc::sync_channel::<()>(1);
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        thread::Builder::new()
            .name("tower-siem-ckpt".into())
            .spawn(move || {
                let mut conn: Option<Connection> = None;
                while rx.recv().is_ok() {
                    if conn.is_none() {
                        conn = schema::open_checkpointer(&path).ok();
                    }
                    let Some(c) = conn.as_ref() else { continue };
                    match checkpoint(c) {
                        Ok(_) => flag.store(true, Ordering::Release),
                        Err(error) => {
                            // The writer's own checkpoints (on flush, and SQLite's automatic
                            // one past 64 MiB) still run; try afresh next time.
                            tracing::debug!(
                                target: "tower_siem::sink",
                                sink = "sqlite",
                                %error,
                                "background checkpoint failed"
                            );
                            conn = None;
                        }
                    }
                }
            })?;
        Ok(Checkpointer {
            wake,
            done,
            rows: 0,
        })
    }

    /// Counts committed rows; wakes the thread every [`CHECKPOINT_ROWS`].
    fn committed(&mut self, rows: u64) {
        self.rows += rows;
        if self.rows >= CHECKPOINT_ROWS && self.wake.try_send(()).is_ok() {
            self.rows = 0;
        }
    }

    /// Whether a background checkpoint finished since the last call.
    fn finished(&self) -> bool {
        self.done.swap(false, Ordering::Acquire)
    }
}

/// A passive checkpoint: it never waits for a lock, and copies what no reader still needs.
/// `Ok(false)` when another connection was checkpointing, so this one did nothing.
fn checkpoint(conn: &Connection) -> Result<bool, rusqlite::Error> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}

struct Writer {
    config: Arc<Config>,
    conn: Option<Connection>,
    checkpointer: Option<Checkpointer>,
    /// Rows in the table, counted on open and kept up to date by this writer.
    rows: u64,
    next_retention: Instant,
}

impl Writer {
    fn new(config: Arc<Config>, checkpointer: Option<Checkpointer>) -> Self {
        Writer {
            config,
            conn: None,
            checkpointer,
            rows: 0,
            next_retention: Instant::now(),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Command>) {
        loop {
            if self.conn.is_some() && Instant::now() >= self.next_retention {
                self.retention();
            }
            let command = if self.conn.is_some() && self.has_retention() {
                let wait = self
                    .next_retention
                    .saturating_duration_since(Instant::now());
                rx.recv_timeout(wait)
            } else {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            };
            match command {
                Ok(Command::Write(batch, reply)) => {
                    let result = self.write(&batch);
                    let _ = reply.send(result);
                }
                Ok(Command::Flush(reply)) => {
                    let result = self.flush();
                    let _ = reply.send(result);
                }
                Err(RecvTimeoutError::Timeout) => {}
                // The last sink handle is gone; dropping the connection checkpoints the WAL.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn has_retention(&self) -> bool {
        self.config.max_age.is_some() || self.config.max_rows.is_some()
    }

    fn connection(&mut self) -> Result<&Connection, SinkError> {
        if self.conn.is_none() {
            let path = &self.config.path;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)?;
            }
            let conn = schema::open_writer(path).map_err(sink_error)?;
            let rows: i64 = conn
                .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
                .map_err(sink_error)?;
            self.rows = u64::try_from(rows).unwrap_or(0);
            self.next_retention = Instant::now();
            self.conn = Some(conn);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| SinkError::other("no connection"))
    }

    fn write(&mut self, batch: &Encoded) -> Result<(), SinkError> {
        let tail = self
            .checkpointer
            .as_ref()
            .is_some_and(Checkpointer::finished);
        let result = self.connection().and_then(|conn| {
            if tail {
                // Copy what was committed during the background checkpoint, so the WAL can
                // start over at the next transaction. A failure here is the next one's problem.
                let _ = checkpoint(conn);
            }
            insert(conn, batch)
        });
        match result {
            Ok(inserted) => {
                if let Some(c) = self.checkpointer.as_mut() {
                    c.committed(batch.rows.len() as u64);
                }
                self.rows = self.rows.saturating_add(inserted);
                if self.config.max_rows.is_some_and(|max| self.rows > max) {
                    self.next_retention = Instant::now();
                }
                Ok(())
            }
            Err(e) => {
                // Reopen next time: the directory may come back, or the disk get space.
                self.conn = None;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let Some(conn) = self.conn.as_ref() else {
            return Ok(());
        };
        // A background checkpoint may hold the checkpoint lock for a moment: then this one
        // copies nothing, so try again until it runs.
        let mut tries = 0;
        let result = loop {
            match checkpoint(conn) {
                Ok(false) if tries < FLUSH_TRIES => {
                    tries += 1;
                    thread::sleep(Duration::from_millis(1));
                }
                other => break other.map(drop).map_err(sink_error),
            }
        };
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// Deletes at most one step's worth of rows past the age and row bounds.
    fn retention(&mut self) {
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        let budget = self.config.retention_batch;
        let result = delete_step(conn, &self.config, self.rows, budget);
        let now = Instant::now();
        match result {
            Ok(deleted) => {
                self.rows = self.rows.saturating_sub(deleted);
                self.next_retention = if deleted >= budget {
                    // More is due: the next step runs after the next command, or at once.
                    now
                } else {
                    now + self.config.retention_interval
                };
            }
            Err(error) => {
                tracing::warn!(
                    target: "tower_siem::sink",
                    sink = "sqlite",
                    %error,
                    "retention step failed"
                );
                self.conn = None;
                self.next_retention = now + self.config.retention_interval;
            }
        }
    }
}

fn delete_step(
    conn: &Connection,
    config: &Config,
    rows: u64,
    budget: u64,
) -> Result<u64, SinkError> {
    let tx = TxGuard::begin(conn).map_err(sink_error)?;
    let mut deleted = 0u64;
    if let Some(age) = config.max_age {
        let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        let cutoff = jiff::Timestamp::now()
            .as_millisecond()
            .saturating_sub(age_ms);
        let n = conn
            .execute(DELETE_BEFORE, params![cutoff, to_i64(budget)])
            .map_err(sink_error)?;
        deleted += n as u64;
    }
    if let Some(max) = config.max_rows {
        let excess = rows.saturating_sub(deleted).saturating_sub(max);
        let n = excess.min(budget.saturating_sub(deleted));
        if n > 0 {
            let n = conn
                .execute(DELETE_OLDEST, params![to_i64(n)])
                .map_err(sink_error)?;
            deleted += n as u64;
        }
    }
    tx.commit().map_err(sink_error)?;
    Ok(deleted)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Columns of one row in [`INSERT`].
const COLUMNS: usize = 17;

/// Rows per `INSERT` statement: one statement per 16 rows runs SQLite's statement machinery
/// (bind, step, reset) once for all of them.
const ROWS_PER_INSERT: usize = 16;

/// `INSERT` of [`ROWS_PER_INSERT`] rows.
fn insert_many_sql() -> String {
    let head = &INSERT[..INSERT.find("VALUES").unwrap_or(INSERT.len())];
    let row = format!("({})", vec!["?"; COLUMNS].join(", "));
    format!("{head}VALUES {}", vec![row; ROWS_PER_INSERT].join(", "))
}

/// Inserts a batch in one transaction; returns how many rows were new.
fn insert(conn: &Connection, batch: &Encoded) -> Result<u64, SinkError> {
    let tx = TxGuard::begin(conn).map_err(sink_error)?;
    let mut inserted = 0u64;
    {
        let n = batch.rows.len();
        let full = n - n % ROWS_PER_INSERT;
        if full > 0 {
            let mut many = conn.prepare(&insert_many_sql()).map_err(sink_error)?;
            for start in (0..full).step_by(ROWS_PER_INSERT) {
                for i in 0..ROWS_PER_INSERT {
                    bind_row(&mut many, i * COLUMNS, batch, start + i).map_err(sink_error)?;
                }
                inserted += many.raw_execute().map_err(sink_error)? as u64;
            }
        }
        if full < n {
            let mut one = conn.prepare(INSERT).map_err(sink_error)?;
            for i in full..n {
                bind_row(&mut one, 0, batch, i).map_err(sink_error)?;
                inserted += one.raw_execute().map_err(sink_error)? as u64;
            }
        }
    }
    tx.commit().map_err(sink_error)?;
    Ok(inserted)
}

/// Binds row `index` of the batch to parameters `base + 1 ..= base + COLUMNS`.
fn bind_row(
    stmt: &mut rusqlite::Statement<'_>,
    base: usize,
    batch: &Encoded,
    index: usize,
) -> Result<(), rusqlite::Error> {
    let (event, row) = (&batch.events[index], &batch.rows[index]);
    let text =
        |span: &Range<usize>| ToSqlOutput::Borrowed(ValueRef::Text(&batch.text[span.clone()]));
    let verdict = event.verdict.as_ref();
    let http = event.http.as_ref();
    // Written by `encode` from an `IpAddr`: ASCII.
    let ip = row
        .ip
        .as_ref()
        .and_then(|span| std::str::from_utf8(&batch.text[span.clone()]).ok());
    let user = event.subject.user.as_deref();
    stmt.raw_bind_parameter(base + 1, &event.id.as_bytes()[..])?;
    stmt.raw_bind_parameter(base + 2, event.millis())?;
    stmt.raw_bind_parameter(base + 3, event.name.as_str())?;
    stmt.raw_bind_parameter(base + 4, ip)?;
    stmt.raw_bind_parameter(base + 5, ip.map(schema::bucket))?;
    stmt.raw_bind_parameter(base + 6, user)?;
    stmt.raw_bind_parameter(base + 7, user.map(schema::bucket))?;
    stmt.raw_bind_parameter(base + 8, event.subject.session.as_deref())?;
    stmt.raw_bind_parameter(base + 9, event.subject.device.as_deref())?;
    stmt.raw_bind_parameter(base + 10, verdict.map(|v| action_code(v.action)))?;
    stmt.raw_bind_parameter(
        base + 11,
        verdict.map(|v| v.score).filter(|s| s.is_finite()),
    )?;
    stmt.raw_bind_parameter(base + 12, row.reasons.as_ref().map(text))?;
    stmt.raw_bind_parameter(base + 13, http.map(|h| h.method.as_str()))?;
    stmt.raw_bind_parameter(base + 14, http.and_then(|h| h.route.as_deref()))?;
    stmt.raw_bind_parameter(base + 15, http.map(|h| h.path.as_str()))?;
    stmt.raw_bind_parameter(base + 16, http.and_then(|h| h.status).map(i64::from))?;
    stmt.raw_bind_parameter(base + 17, text(&row.json))?;
    Ok(())
}

/// The `action` column's encoding.
pub(crate) fn action_code(action: crate::Action) -> i64 {
    match action {
        crate::Action::Allow => 0,
        crate::Action::StepUp => 1,
        crate::Action::Throttle => 2,
        crate::Action::Block => 3,
    }
}

/// A SQLite failure as a sink error of the right kind.
fn sink_error(error: rusqlite::Error) -> SinkError {
    let kind = match error.sqlite_error_code() {
        Some(
            ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::PermissionDenied,
        ) => SinkErrorKind::Io,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => SinkErrorKind::Unavailable,
        _ => SinkErrorKind::Other,
    };
    SinkError::new(kind, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Event, Verdict};
    use std::time::Duration;

    fn config(path: std::path::PathBuf) -> Arc<Config> {
        Arc::new(Config {
            path,
            max_age: None,
            max_rows: None,
            retention_interval: Duration::from_secs(3600),
            retention_batch: 10,
        })
    }

    fn event_at(ms: i64) -> SharedEvent {
        let time = jiff::Timestamp::from_millisecond(ms).unwrap();
        Arc::new(Event::new_at("auth.failure", time).user("alice"))
    }

    fn count(w: &Writer) -> i64 {
        w.conn
            .as_ref()
            .unwrap()
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_retried_batch_inserts_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::new(config(dir.path().join("e.db")), None);
        let mut e = Event::new("auth.failure").user("bob");
        e.verdict = Some(Verdict {
            action: Action::StepUp,
            score: 42.0,
            reasons: vec!["login-brute-force-user".into()],
            retry_after_secs: None,
        });
        let batch: Vec<SharedEvent> = vec![Arc::new(e), Arc::new(Event::new("x"))];
        w.write(&encode(&batch).unwrap()).unwrap();
        w.write(&encode(&batch).unwrap()).unwrap();
        assert_eq!(count(&w), 2);
        assert_eq!(w.rows, 2);
        let (action, reasons): (i64, String) = w
            .conn
            .as_ref()
            .unwrap()
            .query_row(
                "SELECT action, reasons FROM events WHERE user = 'bob'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(action, 1);
        assert_eq!(reasons, r#"["login-brute-force-user"]"#);
    }

    #[test]
    fn retention_deletes_the_oldest_in_bounded_steps() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = (*config(dir.path().join("e.db"))).clone();
        cfg.max_rows = Some(25);
        let mut w = Writer::new(Arc::new(cfg), None);
        let now = jiff::Timestamp::now().as_millisecond();
        let batch: Vec<SharedEvent> = (0..50).map(|i| event_at(now - 50 + i)).collect();
        w.write(&encode(&batch).unwrap()).unwrap();
        assert_eq!(count(&w), 50);
        // The bound is due at once after a write past it; each step deletes at most 10.
        assert!(w.next_retention <= Instant::now());
        w.retention();
        assert_eq!(count(&w), 40);
        assert!(w.next_retention <= Instant::now(), "more is due");
        w.retention();
        w.retention();
        assert_eq!(count(&w), 25);
        assert!(w.next_retention > Instant::now(), "nothing more due");
        w.retention();
        assert_eq!(count(&w), 25);
        let oldest: i64 = w
            .conn
            .as_ref()
            .unwrap()
            .query_row("SELECT min(time_ms) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(oldest, now - 25, "the newest rows are kept");
    }

    #[test]
    fn retention_by_age_uses_event_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = (*config(dir.path().join("e.db"))).clone();
        cfg.max_age = Some(Duration::from_secs(3600));
        cfg.retention_batch = 1000;
        let mut w = Writer::new(Arc::new(cfg), None);
        let now = jiff::Timestamp::now().as_millisecond();
        let batch: Vec<SharedEvent> = (0..10)
            .map(|i| event_at(now - 7_200_000 + i))
            .chain((0..5).map(|i| event_at(now - 60_000 + i)))
            .collect();
        w.write(&encode(&batch).unwrap()).unwrap();
        w.retention();
        assert_eq!(count(&w), 5);
        assert_eq!(w.rows, 5);
    }

    #[test]
    fn a_foreign_database_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
            .unwrap();
        drop(other);
        let mut w = Writer::new(config(path.clone()), None);
        let err = w.write(&encode(&[event_at(0)]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("another application"), "{err}");
        let other = Connection::open(&path).unwrap();
        let tables: i64 = other
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.db");
        let mut w = Writer::new(config(path.clone()), None);
        w.write(&encode(&[event_at(0)]).unwrap()).unwrap();
        w.conn
            .as_ref()
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        drop(w);
        let mut w = Writer::new(config(path), None);
        let err = w.write(&encode(&[event_at(1)]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
