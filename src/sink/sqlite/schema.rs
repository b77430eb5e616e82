//! The `events` table: creation, migration and opening for writing or reading.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::SqliteError;

/// The schema version this build writes and reads (`PRAGMA user_version`).
pub(crate) const VERSION: i64 = 2;
/// `PRAGMA application_id`: "TSIE" in ASCII, so a reader can tell our files from others.
pub(crate) const APPLICATION_ID: i64 = 0x5453_4945;
/// How long a connection waits for another one's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Version 1: one row per event, the main fields as columns and the whole event as JSON.
const V1: &str = "
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY,
    id       BLOB    NOT NULL UNIQUE,
    time_ms  INTEGER NOT NULL,
    name     TEXT    NOT NULL,
    ip       TEXT,
    ip_bucket   INTEGER,
    user     TEXT,
    user_bucket INTEGER,
    session  TEXT,
    device   TEXT,
    action   INTEGER,
    score    REAL,
    reasons  TEXT,
    method   TEXT,
    route    TEXT,
    path     TEXT,
    status   INTEGER,
    json     TEXT    NOT NULL
);
CREATE INDEX events_time ON events(time_ms);
CREATE INDEX events_ip ON events(ip_bucket, time_ms, seq, ip) WHERE ip IS NOT NULL;
CREATE INDEX events_user ON events(user_bucket, time_ms, seq, user) WHERE user IS NOT NULL;
CREATE INDEX events_name ON events(name, time_ms);
CREATE INDEX events_flagged ON events(time_ms) WHERE action > 0;
";

/// How many hash buckets the IP and user indexes have (schema version 2 on).
///
/// An index keyed by the IP itself takes each new row at a random place, so a batch of 512
/// events from 512 clients dirties about 512 index pages, each written to the WAL at commit
/// and to the file at checkpoint: that was most of the writer's cost. Keyed by
/// `(bucket, time_ms, seq)` instead, new rows go to the end of one of a few regions (one hot
/// page each), and a query for one IP walks its bucket newest first, matching the IP from the
/// index itself, without touching the table for rows of other IPs. Version 1 had 32 buckets;
/// with 4 the writer spends about a fifth less time per event (`cargo bench --bench sqlite`),
/// and a lookup reads a quarter of the index instead of a thirty-second.
pub(crate) const BUCKETS: u64 = 4;

/// The bucket count of files of schema `version`.
pub(crate) fn buckets(version: i64) -> u64 {
    if version <= 1 {
        32
    } else {
        BUCKETS
    }
}

/// The bucket of an IP (as text) or a user in a file of schema `version`: FNV-1a modulo the
/// bucket count, stable across versions and platforms.
pub(crate) fn bucket_in(version: i64, key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % buckets(version)) as i64
}

/// The bucket of an IP (as text) or a user in files this build writes.
pub(crate) fn bucket(key: &str) -> i64 {
    bucket_in(VERSION, key)
}

/// Version 2: 4 buckets instead of 32. 32 is a multiple of 4, so a row's new bucket is its
/// old one modulo 4; the indexes are rebuilt by the update.
const V2: &str = "
UPDATE events SET ip_bucket = ip_bucket % 4 WHERE ip_bucket >= 4;
UPDATE events SET user_bucket = user_bucket % 4 WHERE user_bucket >= 4;
";

/// The SQL that created a version-1 file, for migration tests.
#[cfg(test)]
pub(crate) fn test_v1_sql() -> &'static str {
    V1
}

/// Steps from version `n` to `n + 1`, in order; `MIGRATIONS[0]` creates the schema.
const MIGRATIONS: &[&str] = &[V1, V2];

/// Opens (creating if needed) the database for writing: WAL, schema created or migrated.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // 8 KiB pages (SQLite's default is 4 KiB): a row of a typical request event is about
    // 800 bytes, and with fewer, larger pages each insert walks and splits fewer of them; the
    // writer spent about 15 % less CPU per event in our measurements. Only a new, empty file
    // takes this; an existing file keeps its page size.
    conn.execute_batch("PRAGMA page_size = 8192")?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(failure(format!(
            "could not switch the database to WAL mode (it is in {mode:?} mode)"
        )));
    }
    // Committed transactions survive a process crash; `flush` checkpoints with fsync.
    // Checkpoints run on a thread of their own (see `writer::Checkpointer`); SQLite's
    // automatic one, in the writer, only steps in past 64 MiB of WAL (its default is 4 MiB),
    // should that thread fall behind. The WAL file is truncated back to 64 MiB after a
    // checkpoint. A 16 MiB page cache (default 2 MiB) keeps the hot index pages in memory as
    // the file grows.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -16384;
         PRAGMA wal_autocheckpoint = 16384;
         PRAGMA journal_size_limit = 67108864;",
    )?;
    migrate(&conn)?;
    Ok(conn)
}

/// Opens the database the writer created, for the background checkpoints only.
pub(crate) fn open_checkpointer(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The mode is recorded in the file; this checks it, and reads the schema once.
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(failure(format!(
            "the database is in {mode:?} mode, not WAL"
        )));
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = 67108864;")?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), rusqlite::Error> {
    if user_version(conn)? == VERSION && application_id(conn)? == APPLICATION_ID {
        return Ok(());
    }
    // Re-read under the write lock: another process may be creating the schema right now.
    let tx = TxGuard::begin(conn)?;
    let version = user_version(conn)?;
    let app = application_id(conn)?;
    if version == 0 {
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        if tables > 0 && app != APPLICATION_ID {
            return Err(failure(
                "the file is a SQLite database of another application, not a tower-siem events database"
                    .into(),
            ));
        }
    } else if app != APPLICATION_ID {
        return Err(failure(
            "the file is a SQLite database of another application, not a tower-siem events database"
                .into(),
        ));
    }
    if version > VERSION {
        return Err(failure(format!(
            "the events database has schema version {version}, newer than this build's {VERSION}; \
             upgrade tower-siem or use another file"
        )));
    }
    for step in &MIGRATIONS[usize::try_from(version).unwrap_or(0)..] {
        conn.execute_batch(step)?;
    }
    conn.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {VERSION};"
    ))?;
    tx.commit()
}

/// `BEGIN IMMEDIATE` … `COMMIT`, rolled back if dropped before the commit.
pub(crate) struct TxGuard<'c> {
    conn: &'c Connection,
    done: bool,
}

impl<'c> TxGuard<'c> {
    pub(crate) fn begin(conn: &'c Connection) -> Result<Self, rusqlite::Error> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(TxGuard { conn, done: false })
    }

    pub(crate) fn commit(mut self) -> Result<(), rusqlite::Error> {
        self.done = true;
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for TxGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Opens an existing events database for reading only.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, SqliteError> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(SqliteError::msg(format!("{shown}: not a file"))),
        Err(e) => return Err(SqliteError::with_source(format!("{shown}"), e)),
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| SqliteError::with_source(format!("{shown}: cannot open"), e))?;
    let check = |e: rusqlite::Error| {
        SqliteError::with_source(format!("{shown}: not a readable SQLite database"), e)
    };
    conn.busy_timeout(BUSY_TIMEOUT).map_err(check)?;
    let version = user_version(&conn).map_err(check)?;
    let app = application_id(&conn).map_err(check)?;
    if app != APPLICATION_ID || version == 0 {
        return Err(SqliteError::msg(format!(
            "{shown}: not a tower-siem events database (or nothing was written to it yet)"
        )));
    }
    if version > VERSION {
        return Err(SqliteError::msg(format!(
            "{shown}: schema version {version} is newer than this build's {VERSION}; upgrade tower-siem"
        )));
    }
    Ok(conn)
}

pub(crate) fn user_version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

fn application_id(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("PRAGMA application_id", [], |r| r.get(0))
}

/// An error of our own in rusqlite's type, so the writer handles every failure alike.
fn failure(message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
        Some(message),
    )
}
