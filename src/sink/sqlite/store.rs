//! Reading the events database: queries for the CLI and dashboards.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection};
use serde::Serialize;

use super::schema;
use super::SqliteError;
use crate::{Action, Event};

/// Most buckets one [`SqliteStore::action_counts`] call returns.
const MAX_BUCKETS: i64 = 100_000;

/// A read-only handle on an events database written by a [`SqliteSink`](super::SqliteSink).
///
/// Works from any process while the writer runs (WAL readers never block the writer, nor the
/// writer them). Each call sees everything committed before it. Cheap to share: one
/// connection behind a mutex.
///
/// ```
/// use std::time::Duration;
/// use tower_siem::sink::sqlite::{EventQuery, OffenderKey, SqliteSink, SqliteStore};
/// use tower_siem::{Event, Siem};
///
/// let dir = tempfile::tempdir()?;
/// let db = dir.path().join("events.db");
/// let siem = Siem::builder().sink(SqliteSink::new(&db)).build()?;
/// let start = jiff::Timestamp::now();
/// for _ in 0..30 {
///     siem.fire(Event::new("auth.failure").user("alice").ip("198.51.100.7".parse()?));
/// }
/// assert!(siem.flush(Duration::from_secs(5)));
///
/// let store = SqliteStore::open(&db)?;
/// let failures = store.events(&EventQuery::new().name("auth.failure").limit(100))?;
/// assert_eq!(failures.len(), 30);
/// // Besides the 30 failures: one `siem.alert` per escalation of the IP and of the user.
/// let alerts = store.events(&EventQuery::new().name("siem.alert").limit(100))?;
/// assert_eq!(store.count()?, 30 + alerts.len() as u64);
/// assert!(!alerts.is_empty());
/// let top = store.offenders(OffenderKey::Ip, start, 10)?;
/// assert_eq!(top[0].key, "198.51.100.7");
/// assert!(top[0].flagged > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Which events [`SqliteStore::events`] returns: every filter set must match.
///
/// ```
/// use tower_siem::sink::sqlite::EventQuery;
/// let since = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
/// let query = EventQuery::new().name("auth.failure").since(since).limit(20);
/// assert_eq!(query.get_limit(), 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventQuery {
    ip: Option<IpAddr>,
    user: Option<String>,
    name: Option<String>,
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
    action: Option<Action>,
    limit: usize,
}

impl Default for EventQuery {
    fn default() -> Self {
        EventQuery::new()
    }
}

impl EventQuery {
    /// Every event, newest first, at most 100.
    pub fn new() -> Self {
        EventQuery {
            ip: None,
            user: None,
            name: None,
            since: None,
            until: None,
            action: None,
            limit: 100,
        }
    }

    /// Only events from this client IP.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Only events about this user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Only events with this name (`auth.failure`, …).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only events at or after this time.
    pub fn since(mut self, since: jiff::Timestamp) -> Self {
        self.since = Some(since);
        self
    }

    /// Only events before this time.
    pub fn until(mut self, until: jiff::Timestamp) -> Self {
        self.until = Some(until);
        self
    }

    /// Only events whose verdict was this action (`allow` includes events without one).
    pub fn action(mut self, action: Action) -> Self {
        self.action = Some(action);
        self
    }

    /// At most this many events, the newest (default 100).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The limit.
    pub fn get_limit(&self) -> usize {
        self.limit
    }
}

/// What [`SqliteStore::offenders`] groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OffenderKey {
    /// The client IP.
    Ip,
    /// The user.
    User,
}

impl OffenderKey {
    fn column(self) -> &'static str {
        match self {
            OffenderKey::Ip => "ip",
            OffenderKey::User => "user",
        }
    }
}

/// A client or user that was flagged: its events with a verdict above `allow`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Offender {
    /// The IP address or user name.
    pub key: String,
    /// Events whose verdict was step-up, throttle or block.
    pub flagged: u64,
    /// The most severe action among them.
    pub worst: Action,
    /// The highest score among them.
    pub max_score: f64,
    /// The first flagged event's time.
    pub first_seen: jiff::Timestamp,
    /// The last flagged event's time.
    pub last_seen: jiff::Timestamp,
    /// The rule ids of the last flagged event's verdict.
    pub reasons: Vec<String>,
}

/// Events per verdict action in one time bucket; see [`SqliteStore::action_counts`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ActionCounts {
    /// Start of the bucket (inclusive).
    pub start: jiff::Timestamp,
    /// Events allowed, or without a verdict.
    pub allow: u64,
    /// Events with a step-up verdict.
    pub step_up: u64,
    /// Events with a throttle verdict.
    pub throttle: u64,
    /// Events with a block verdict.
    pub block: u64,
}

impl ActionCounts {
    /// All events in the bucket.
    pub fn total(&self) -> u64 {
        self.allow + self.step_up + self.throttle + self.block
    }
}

fn query_error(e: rusqlite::Error) -> SqliteError {
    SqliteError::with_source("events query failed", e)
}

fn timestamp(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

fn action_of(code: i64) -> Action {
    match code {
        1 => Action::StepUp,
        2 => Action::Throttle,
        c if c >= 3 => Action::Block,
        _ => Action::Allow,
    }
}

fn clamp_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens an existing events database read-only.
    ///
    /// # Errors
    ///
    /// When the file does not exist, cannot be read, is not a tower-siem events database,
    /// or was written by a newer version; the message names the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SqliteError> {
        let path = path.as_ref();
        let conn = schema::open_reader(path)?;
        Ok(SqliteStore {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events matching `query`, newest first.
    ///
    /// # Errors
    ///
    /// When the query fails (an I/O error, a locked or damaged file), or a stored event is
    /// not valid JSON.
    pub fn events(&self, query: &EventQuery) -> Result<Vec<Event>, SqliteError> {
        let conn = self.conn.lock();
        // Read each time: a writer may migrate the file while this store has it open.
        let version = schema::user_version(&conn).map_err(query_error)?;
        let (sql, args) = events_sql(query, version);
        let mut stmt = conn.prepare(&sql).map_err(query_error)?;
        let mut rows = stmt.query(params_from_iter(args)).map_err(query_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(query_error)? {
            let seq: i64 = row.get(0).map_err(query_error)?;
            let json: String = row.get(1).map_err(query_error)?;
            out.push(parse_event(seq, &json)?);
        }
        Ok(out)
    }

    /// Events matching `query`, newest first, each as stored: the JSON a sink wrote.
    #[cfg(feature = "dashboard")]
    pub(crate) fn events_json(&self, query: &EventQuery) -> Result<Vec<String>, SqliteError> {
        let conn = self.conn.lock();
        let version = schema::user_version(&conn).map_err(query_error)?;
        let (sql, args) = events_sql(query, version);
        let mut stmt = conn.prepare(&sql).map_err(query_error)?;
        let mut rows = stmt.query(params_from_iter(args)).map_err(query_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(query_error)? {
            out.push(row.get(1).map_err(query_error)?);
        }
        Ok(out)
    }

    /// The event with this id, if stored.
    ///
    /// # Errors
    ///
    /// As for [`events`](Self::events).
    pub fn get(&self, id: uuid::Uuid) -> Result<Option<Event>, SqliteError> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare("SELECT seq, json FROM events WHERE id = ?1")
            .map_err(query_error)?;
        let mut rows = stmt
            .query(params![&id.as_bytes()[..]])
            .map_err(query_error)?;
        match rows.next().map_err(query_error)? {
            Some(row) => {
                let seq: i64 = row.get(0).map_err(query_error)?;
                let json: String = row.get(1).map_err(query_error)?;
                parse_event(seq, &json).map(Some)
            }
            None => Ok(None),
        }
    }

    /// How many events the file holds.
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub fn count(&self) -> Result<u64, SqliteError> {
        let n: i64 = self
            .conn
            .lock()
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .map_err(query_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The top offenders since `since`: the IPs (or users) with flagged events, that is
    /// events whose verdict was step-up, throttle or block, ranked by their most severe
    /// action, then by how many flagged events they have, then by their highest score.
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub fn offenders(
        &self,
        by: OffenderKey,
        since: jiff::Timestamp,
        limit: usize,
    ) -> Result<Vec<Offender>, SqliteError> {
        let col = by.column();
        let sql = format!(
            "SELECT {col}, count(*), max(action), max(score), min(time_ms), max(time_ms),
                    (SELECT reasons FROM events AS last
                      WHERE last.{col}_bucket = f.{col}_bucket AND last.{col} = f.{col}
                        AND last.action > 0
                      ORDER BY last.time_ms DESC LIMIT 1)
               FROM events AS f
              WHERE action > 0 AND time_ms >= ?1 AND {col} IS NOT NULL
              GROUP BY {col}
              ORDER BY max(action) DESC, count(*) DESC, max(score) DESC
              LIMIT ?2"
        );
        let conn = self.conn.lock();
        let mut stmt = conn.prepare(&sql).map_err(query_error)?;
        let rows = stmt
            .query_map(params![since.as_millisecond(), clamp_limit(limit)], |r| {
                let reasons: Option<String> = r.get(6)?;
                Ok(Offender {
                    key: r.get(0)?,
                    flagged: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    worst: action_of(r.get(2)?),
                    max_score: r.get::<_, Option<f64>>(3)?.unwrap_or(0.0),
                    first_seen: timestamp(r.get(4)?),
                    last_seen: timestamp(r.get(5)?),
                    reasons: reasons
                        .and_then(|text| serde_json::from_str(&text).ok())
                        .unwrap_or_default(),
                })
            })
            .map_err(query_error)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(query_error)
    }

    /// Events per verdict action in buckets of `bucket` from `since` (inclusive) to `until`
    /// (exclusive), oldest first, empty buckets included: a timeline of verdicts.
    ///
    /// # Errors
    ///
    /// When `bucket` is under a millisecond, `until` is not after `since`, the range holds
    /// more than 100,000 buckets, or the query fails.
    pub fn action_counts(
        &self,
        since: jiff::Timestamp,
        until: jiff::Timestamp,
        bucket: Duration,
    ) -> Result<Vec<ActionCounts>, SqliteError> {
        let width = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX);
        if width < 1 {
            return Err(SqliteError::msg("bucket must be at least 1 ms"));
        }
        let (from, to) = (since.as_millisecond(), until.as_millisecond());
        if to <= from {
            return Err(SqliteError::msg("`until` must be after `since`"));
        }
        let buckets = (to - from - 1) / width + 1;
        if buckets > MAX_BUCKETS {
            return Err(SqliteError::msg(format!(
                "{buckets} buckets requested; at most {MAX_BUCKETS}: use a wider bucket"
            )));
        }
        let mut out: Vec<ActionCounts> = (0..buckets)
            .map(|i| ActionCounts {
                start: timestamp(from + i * width),
                ..ActionCounts::default()
            })
            .collect();
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare(
                "SELECT (time_ms - ?1) / ?3, coalesce(action, 0), count(*)
                   FROM events WHERE time_ms >= ?1 AND time_ms < ?2
                  GROUP BY 1, 2",
            )
            .map_err(query_error)?;
        let mut rows = stmt.query(params![from, to, width]).map_err(query_error)?;
        while let Some(row) = rows.next().map_err(query_error)? {
            let index: i64 = row.get(0).map_err(query_error)?;
            let action: i64 = row.get(1).map_err(query_error)?;
            let n = u64::try_from(row.get::<_, i64>(2).map_err(query_error)?).unwrap_or(0);
            let Some(slot) = usize::try_from(index).ok().and_then(|i| out.get_mut(i)) else {
                continue;
            };
            match action_of(action) {
                Action::Allow => slot.allow += n,
                Action::StepUp => slot.step_up += n,
                Action::Throttle => slot.throttle += n,
                Action::Block => slot.block += n,
            }
        }
        Ok(out)
    }

    /// Runs SQLite's `PRAGMA integrity_check` on the file.
    ///
    /// # Errors
    ///
    /// When the file is damaged (the message lists the first problems) or the check fails.
    pub fn integrity_check(&self) -> Result<(), SqliteError> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare("PRAGMA integrity_check(20)")
            .map_err(query_error)?;
        let problems = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(query_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(query_error)?;
        if problems.len() == 1 && problems[0] == "ok" {
            Ok(())
        } else {
            Err(SqliteError::msg(format!(
                "{}: integrity check failed: {}",
                self.path.display(),
                problems.join("; ")
            )))
        }
    }
}

/// The SQL and arguments of [`SqliteStore::events`].
fn events_sql(query: &EventQuery, version: i64) -> (String, Vec<Value>) {
    let mut sql = String::from("SELECT seq, json FROM events WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(ip) = query.ip {
        let ip = ip.to_string();
        sql.push_str(" AND ip_bucket = ? AND ip = ?");
        args.push(Value::Integer(schema::bucket_in(version, &ip)));
        args.push(Value::Text(ip));
    }
    if let Some(user) = &query.user {
        sql.push_str(" AND user_bucket = ? AND user = ?");
        args.push(Value::Integer(schema::bucket_in(version, user)));
        args.push(Value::Text(user.clone()));
    }
    if let Some(name) = &query.name {
        sql.push_str(" AND name = ?");
        args.push(Value::Text(name.clone()));
    }
    if let Some(since) = query.since {
        sql.push_str(" AND time_ms >= ?");
        args.push(Value::Integer(since.as_millisecond()));
    }
    if let Some(until) = query.until {
        sql.push_str(" AND time_ms < ?");
        args.push(Value::Integer(until.as_millisecond()));
    }
    if let Some(action) = query.action {
        sql.push_str(" AND coalesce(action, 0) = ?");
        args.push(Value::Integer(super::writer::action_code(action)));
    }
    sql.push_str(" ORDER BY time_ms DESC, seq DESC LIMIT ?");
    args.push(Value::Integer(clamp_limit(query.limit)));
    (sql, args)
}

fn parse_event(seq: i64, json: &str) -> Result<Event, SqliteError> {
    serde_json::from_str(json)
        .map_err(|e| SqliteError::with_source(format!("stored event (row {seq}) is not valid"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SharedEvent;
    use crate::sink::sqlite::writer::action_code;
    use crate::sink::{Sink, SqliteSink};
    use crate::Verdict;
    use std::sync::Arc;

    fn at(ms: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(ms).unwrap()
    }

    fn flagged(ms: i64, ip: &str, user: &str, action: Action, score: f64) -> SharedEvent {
        let mut e = Event::new_at("auth.failure", at(ms))
            .ip(ip.parse().unwrap())
            .user(user);
        e.verdict = Some(Verdict {
            action,
            score,
            reasons: if action > Action::Allow {
                vec![format!("rule-{}", action_code(action))]
            } else {
                vec![]
            },
            retry_after_secs: None,
        });
        Arc::new(e)
    }

    async fn fill(path: &Path, events: Vec<SharedEvent>) {
        let sink = SqliteSink::new(path).with_unbounded_retention();
        sink.write(&events).await.unwrap();
        sink.flush().await.unwrap();
    }

    #[tokio::test]
    async fn filters_limits_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("e.db");
        let base = 1_700_000_000_000;
        let mut events = Vec::new();
        for i in 0..10 {
            events.push(flagged(base + i, "192.0.2.1", "alice", Action::Allow, 0.0));
            events.push(flagged(base + i, "192.0.2.2", "bob", Action::Allow, 0.0));
        }
        events.push(Arc::new(
            Event::new_at("auth.success", at(base + 100)).user("alice"),
        ));
        fill(&db, events).await;

        let store = SqliteStore::open(&db).unwrap();
        assert_eq!(store.count().unwrap(), 21);
        let q = EventQuery::new().ip("192.0.2.1".parse().unwrap());
        let got = store.events(&q).unwrap();
        assert_eq!(got.len(), 10);
        assert!(
            got.windows(2).all(|w| w[0].time >= w[1].time),
            "newest first"
        );
        assert_eq!(got[0].time, at(base + 9));

        let got = store.events(&EventQuery::new().user("alice")).unwrap();
        assert_eq!(got.len(), 11);
        assert_eq!(got[0].name, "auth.success");

        let got = store
            .events(
                &EventQuery::new()
                    .name("auth.failure")
                    .since(at(base + 5))
                    .until(at(base + 7)),
            )
            .unwrap();
        assert_eq!(got.len(), 4);
        assert!(got
            .iter()
            .all(|e| e.time >= at(base + 5) && e.time < at(base + 7)));

        assert_eq!(store.events(&EventQuery::new().limit(3)).unwrap().len(), 3);
        assert!(store
            .events(&EventQuery::new().limit(0))
            .unwrap()
            .is_empty());
        let one = &store.events(&EventQuery::new().limit(1)).unwrap()[0];
        assert_eq!(store.get(one.id).unwrap().as_ref(), Some(one));
        assert_eq!(store.get(uuid::Uuid::now_v7()).unwrap(), None);
        store.integrity_check().unwrap();
    }

    #[tokio::test]
    async fn offenders_rank_by_action_then_count() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("e.db");
        let base = 1_700_000_000_000;
        let mut events = Vec::new();
        for i in 0..5 {
            events.push(flagged(
                base + i,
                "192.0.2.1",
                "alice",
                Action::StepUp,
                40.0 + i as f64,
            ));
        }
        events.push(flagged(base + 10, "192.0.2.2", "bob", Action::Block, 90.0));
        events.push(flagged(base + 11, "192.0.2.3", "carol", Action::Allow, 5.0));
        // Before `since`: not counted.
        events.push(flagged(
            base - 1000,
            "192.0.2.4",
            "dave",
            Action::Block,
            99.0,
        ));
        fill(&db, events).await;

        let store = SqliteStore::open(&db).unwrap();
        let top = store.offenders(OffenderKey::Ip, at(base), 10).unwrap();
        let keys: Vec<&str> = top.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["192.0.2.2", "192.0.2.1"]);
        assert_eq!(top[0].worst, Action::Block);
        assert_eq!(top[0].reasons, ["rule-3"]);
        assert_eq!((top[1].flagged, top[1].max_score), (5, 44.0));
        assert_eq!(
            (top[1].first_seen, top[1].last_seen),
            (at(base), at(base + 4))
        );
        let users = store.offenders(OffenderKey::User, at(base), 1).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].key, "bob");
    }

    #[tokio::test]
    async fn action_counts_fill_every_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("e.db");
        let base = 1_700_000_000_000;
        fill(
            &db,
            vec![
                flagged(base, "192.0.2.1", "a", Action::Allow, 0.0),
                flagged(base + 999, "192.0.2.1", "a", Action::Block, 80.0),
                flagged(base + 2500, "192.0.2.1", "a", Action::StepUp, 30.0),
                Arc::new(Event::new_at("x", at(base + 2600))),
                flagged(base + 3000, "192.0.2.1", "a", Action::Throttle, 60.0),
            ],
        )
        .await;
        let store = SqliteStore::open(&db).unwrap();
        let counts = store
            .action_counts(at(base), at(base + 3000), Duration::from_secs(1))
            .unwrap();
        assert_eq!(counts.len(), 3);
        assert_eq!(
            (counts[0].allow, counts[0].block, counts[0].total()),
            (1, 1, 2)
        );
        assert_eq!(counts[1].total(), 0);
        assert_eq!((counts[2].step_up, counts[2].allow), (1, 1));
        assert_eq!(counts[2].start, at(base + 2000));
        assert!(store
            .action_counts(at(base), at(base), Duration::from_secs(1))
            .is_err());
        assert!(store
            .action_counts(at(0), at(base), Duration::from_millis(1))
            .is_err());
    }

    /// The query plan of `events(query)`: which index, and whether it sorts.
    fn plan(store: &SqliteStore, query: &EventQuery) -> String {
        let (sql, args) = events_sql(query, schema::VERSION);
        let conn = store.conn.lock();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    #[tokio::test]
    async fn every_filter_is_served_by_an_index_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("e.db");
        fill(&db, vec![flagged(1, "192.0.2.1", "a", Action::Allow, 0.0)]).await;
        let store = SqliteStore::open(&db).unwrap();
        let since = at(0);
        let cases = [
            (
                EventQuery::new().ip("192.0.2.1".parse().unwrap()),
                "events_ip",
            ),
            (
                EventQuery::new()
                    .ip("2001:db8::1".parse().unwrap())
                    .since(since),
                "events_ip",
            ),
            (EventQuery::new().user("alice").since(since), "events_user"),
            (EventQuery::new().name("auth.failure"), "events_name"),
            (EventQuery::new().since(since), "events_time"),
        ];
        for (query, index) in cases {
            let plan = plan(&store, &query);
            assert!(plan.contains(index), "{query:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{query:?} sorts: {plan}");
        }
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        // Stored in files: a change would make old rows unfindable.
        assert_eq!(schema::bucket("192.0.2.1"), schema::bucket("192.0.2.1"));
        assert_eq!(
            schema::bucket(""),
            (0xcbf2_9ce4_8422_2325u64 % schema::BUCKETS) as i64
        );
        let used: std::collections::HashSet<i64> = (0..1000)
            .map(|i| schema::bucket(&format!("10.0.{}.{}", i / 256, i % 256)))
            .collect();
        assert_eq!(used.len() as u64, schema::BUCKETS);
    }

    #[test]
    fn version_1_buckets_are_found_and_migrated() {
        // A file as version 1 wrote it: 32 buckets.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("v1.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        let v1 = super::super::schema::test_v1_sql();
        conn.execute_batch(v1).unwrap();
        let ips: Vec<String> = (0..200)
            .map(|i| format!("10.9.{}.{}", i / 100, i % 100))
            .collect();
        for (i, ip) in ips.iter().enumerate() {
            let e = Event::new("auth.failure")
                .ip(ip.parse().unwrap())
                .user(format!("u{i}"));
            conn.execute(
                "INSERT INTO events (id, time_ms, name, ip, ip_bucket, user, user_bucket, json)
                 VALUES (?1, ?2, 'auth.failure', ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    &e.id.as_bytes()[..],
                    i as i64,
                    ip,
                    schema::bucket_in(1, ip),
                    format!("u{i}"),
                    schema::bucket_in(1, &format!("u{i}")),
                    serde_json::to_string(&e).unwrap()
                ],
            )
            .unwrap();
        }
        conn.execute_batch(&format!(
            "PRAGMA application_id = {}; PRAGMA user_version = 1;",
            schema::APPLICATION_ID
        ))
        .unwrap();
        drop(conn);
        let find_all = |store: &SqliteStore| {
            for (i, ip) in ips.iter().enumerate() {
                let by_ip = store
                    .events(&EventQuery::new().ip(ip.parse().unwrap()))
                    .unwrap();
                assert_eq!(by_ip.len(), 1, "{ip}");
                let by_user = store
                    .events(&EventQuery::new().user(format!("u{i}")))
                    .unwrap();
                assert_eq!(by_user.len(), 1, "u{i}");
            }
        };
        // Read as version 1, by this build.
        find_all(&SqliteStore::open(&db).unwrap());
        // Migrated by the writer, then read as version 2.
        let conn = schema::open_writer(&db).unwrap();
        assert_eq!(schema::user_version(&conn).unwrap(), schema::VERSION);
        let max: i64 = conn
            .query_row(
                "SELECT max(max(ip_bucket), max(user_bucket)) FROM events",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(max < schema::BUCKETS as i64, "{max}");
        drop(conn);
        find_all(&SqliteStore::open(&db).unwrap());
    }

    #[test]
    fn open_refuses_missing_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.db");
        let err = SqliteStore::open(&missing).unwrap_err();
        assert!(err.to_string().contains("missing.db"), "{err}");
        assert!(!missing.exists(), "a reader never creates the file");

        let text = dir.path().join("notes.txt");
        std::fs::write(
            &text,
            "hello, this is not a database at all, not even close",
        )
        .unwrap();
        assert!(SqliteStore::open(&text).is_err());

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let err = SqliteStore::open(&other).unwrap_err();
        assert!(err.to_string().contains("not a tower-siem"), "{err}");
    }
}
