//! A PostgreSQL sink: [`PostgresSink`].

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{BufMut, BytesMut};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::SslMode;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::NoTls;

use super::{runtime, BoxFuture, Sink, SinkError};
use crate::event::{Event, SharedEvent};

const DEFAULT_TABLE: &str = "tower_siem_events";
const DEFAULT_POOL_SIZE: usize = 4;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The table layout this build writes.
const SCHEMA_VERSION: i32 = 1;
/// Table names are kept short enough that `<table>_user_name_idx` fits PostgreSQL's 63 bytes.
const MAX_TABLE_NAME: usize = 48;
/// Serialises schema changes across processes (`pg_advisory_xact_lock`).
const SCHEMA_LOCK: i64 = 0x7473_6965_6d5f_7363; // "tsiem_sc"

/// Inserts events into a PostgreSQL table, idempotently by event id.
///
/// [`PostgresSink`] inserts events into one table, a whole batch per statement.
///
/// - **Idempotent.** The event id (a UUID v7) is the table's primary key and every insert says
///   `ON CONFLICT (id) DO NOTHING`, so a batch the pipeline retries after a lost reply (the
///   insert committed, the acknowledgement never arrived) adds nothing the second time.
/// - **Batched.** A batch is one `INSERT … SELECT * FROM UNNEST($1::uuid[], …)` with one array
///   per column: one round trip and one prepared statement (cached per connection) for up to
///   `batch_max` events, in one implicit transaction, so a batch lands whole or not at all.
/// - **Schema created or migrated on start.** Before its first insert the sink creates the
///   table and its indexes if absent, under a transaction-scoped advisory lock so several
///   replicas starting together do not race, and records the schema version in
///   `tower_siem_schema (table_name, version, migrated_at)`. A table whose recorded version is
///   newer than this build knows is refused rather than written to blindly.
/// - **Pooled.** Connections come from a `deadpool-postgres` pool (default 4); a connection
///   that broke is discarded and the retried batch gets a fresh one. Each write, connection
///   included, is bounded by [`timeout`](PostgresSink::timeout) (default 30 s).
///
/// # The table
///
/// | column | type | what |
/// |---|---|---|
/// | `id` | `uuid PRIMARY KEY` | [`Event::id`](crate::Event::id) |
/// | `time` | `timestamptz NOT NULL` | event time, to the microsecond (indexed) |
/// | `name` | `text NOT NULL` | event name (indexed with `time`) |
/// | `ip` | `inet` | client IP (indexed) |
/// | `user_name` | `text` | user (indexed) |
/// | `session`, `device` | `text` | keyed hashes, never raw ids |
/// | `user_agent`, `method`, `path`, `route` | `text` | |
/// | `status` | `integer` | HTTP status |
/// | `action`, `score` | `text`, `double precision` | the verdict in force after the event |
/// | `attrs` | `jsonb NOT NULL` | application attributes as an object (a repeated key keeps its last value) |
/// | `event` | `jsonb NOT NULL` | the whole event, as the other sinks write it |
///
/// PostgreSQL cannot store the character U+0000 in `text` or `jsonb`; the sink writes U+FFFD
/// in its place rather than lose the event.
///
/// # Connection security
///
/// Connections are plain TCP or a Unix socket (`NoTls`); a URL asking for `sslmode=require` is
/// refused at construction rather than silently downgraded. Use it on loopback, a Unix socket
/// or a private network; to reach a database across an untrusted network, put a TLS tunnel
/// (for example a local PgBouncer or stunnel with TLS to the server) in front of it. TLS inside
/// the sink (tokio-postgres with a rustls connector) is not built in yet.
///
/// The sink runs its connections on a small I/O runtime of its own (thread `tower-siem-io`), so
/// it works from the pipeline's worker as well as from any application runtime.
///
/// ```no_run
/// use tower_siem::sink::PostgresSink;
/// use tower_siem::Siem;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let sink = PostgresSink::new("postgres://siem@127.0.0.1:5432/app")?
///     .table("security_events")?
///     .pool_size(4);
/// // Optional: create or migrate the table now, failing early if the database is unreachable.
/// sink.migrate().await?;
/// let siem = Siem::builder().sink(sink).build()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresSink {
    config: Arc<Config>,
    state: Arc<State>,
}

#[derive(Clone)]
struct Config {
    pg: tokio_postgres::Config,
    table: String,
    pool_size: usize,
    timeout: Duration,
    insert: String,
}

struct State {
    pool: Result<Pool, String>,
    schema: tokio::sync::OnceCell<()>,
}

impl fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("PostgresSink")
            .field("server", &server(&c.pg))
            .field("dbname", &c.pg.get_dbname())
            .field("table", &c.table)
            .field("pool_size", &c.pool_size)
            .field("timeout", &c.timeout)
            .finish()
    }
}

impl PostgresSink {
    /// A sink writing to the database at `url`: a `postgres://user@host:port/db` URL or a
    /// `host=… user=… dbname=…` string. Does not connect yet.
    ///
    /// # Errors
    ///
    /// When `url` cannot be parsed, or asks for TLS (`sslmode=require`), which this sink does
    /// not provide.
    pub fn new(url: &str) -> Result<Self, SinkError> {
        let pg: tokio_postgres::Config = url.parse().map_err(|_| {
            // The parser's message may quote the URL, password and all.
            SinkError::other("invalid PostgreSQL connection string")
        })?;
        if pg.get_ssl_mode() == SslMode::Require {
            return Err(SinkError::other(
                "sslmode=require: PostgresSink connects without TLS; see \"Connection security\" \
                 in its docs",
            ));
        }
        let config = Config {
            pg,
            table: DEFAULT_TABLE.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            timeout: DEFAULT_TIMEOUT,
            insert: insert_sql(DEFAULT_TABLE),
        };
        let state = Arc::new(State::new(&config));
        Ok(PostgresSink {
            config: Arc::new(config),
            state,
        })
    }

    fn set(mut self, f: impl FnOnce(&mut Config)) -> Self {
        let config = Arc::make_mut(&mut self.config);
        f(config);
        // A changed configuration gets its own pool and schema check.
        self.state = Arc::new(State::new(config));
        self
    }

    /// The table to write to (default `tower_siem_events`), in the connection's `search_path`.
    ///
    /// # Errors
    ///
    /// When `name` is not a plain identifier: ASCII letters, digits and `_`, not starting with
    /// a digit, at most 48 bytes.
    pub fn table(self, name: impl Into<String>) -> Result<Self, SinkError> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= MAX_TABLE_NAME
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(SinkError::other(format!(
                "invalid table name {name:?}: use ASCII letters, digits and _, at most \
                 {MAX_TABLE_NAME} bytes, not starting with a digit"
            )));
        }
        Ok(self.set(|c| {
            c.insert = insert_sql(&name);
            c.table = name;
        }))
    }

    /// Most connections kept open (default 4; at least 1).
    pub fn pool_size(self, size: usize) -> Self {
        self.set(|c| c.pool_size = size.max(1))
    }

    /// Longest time one write (or [`migrate`](Self::migrate)) may take, connecting included
    /// (default 30 s). A write that times out fails and is retried by the pipeline; since
    /// inserts are idempotent, one that landed after all is not stored twice.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.set(|c| c.timeout = timeout)
    }

    /// The table this sink writes to.
    pub fn table_name(&self) -> &str {
        &self.config.table
    }

    /// Creates or migrates the table now, if this sink has not done so yet. Writing does this
    /// by itself; call it at startup to fail early on a wrong address or missing rights.
    ///
    /// # Errors
    ///
    /// When the database is unreachable, refuses the statements, or holds a table whose schema
    /// version is newer than this build of tower-siem knows.
    pub async fn migrate(&self) -> Result<(), SinkError> {
        let config = Arc::clone(&self.config);
        let state = Arc::clone(&self.state);
        runtime::run(async move {
            within(config.timeout, "migrating the schema", async {
                let pool = state.pool()?;
                state
                    .schema
                    .get_or_try_init(|| migrate(pool, &config.table))
                    .await
                    .map(|_| ())
            })
            .await
        })
        .await
    }
}

impl State {
    fn new(config: &Config) -> Self {
        let manager = Manager::from_config(
            config.pg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.timeout))
            .create_timeout(Some(config.timeout))
            .recycle_timeout(Some(config.timeout))
            .build()
            .map_err(|e| format!("cannot set up the PostgreSQL pool: {e}"));
        State {
            pool,
            schema: tokio::sync::OnceCell::new(),
        }
    }

    fn pool(&self) -> Result<&Pool, SinkError> {
        self.pool.as_ref().map_err(|e| SinkError::other(e.clone()))
    }
}

impl Sink for PostgresSink {
    fn name(&self) -> &str {
        "postgres"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(());
            }
            // Encode here, on the caller's thread; the I/O runtime only moves bytes.
            let encoded = Encoded::new(batch)?;
            let events = batch.to_vec();
            let config = Arc::clone(&self.config);
            let state = Arc::clone(&self.state);
            runtime::run(async move {
                within(config.timeout, "writing a batch", async {
                    let pool = state.pool()?;
                    state
                        .schema
                        .get_or_try_init(|| migrate(pool, &config.table))
                        .await?;
                    insert(pool, &config.insert, &events, &encoded).await
                })
                .await
            })
            .await
        })
    }
}

async fn within<T>(
    timeout: Duration,
    what: &str,
    work: impl std::future::Future<Output = Result<T, SinkError>>,
) -> Result<T, SinkError> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(SinkError::unavailable(format!(
                "PostgreSQL: {what} took longer than {timeout:?}"
            )))
        })
}

fn server(pg: &tokio_postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    match pg.get_ports().first() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

fn db_error(what: &str, e: tokio_postgres::Error) -> SinkError {
    let detail = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    };
    let message = format!("PostgreSQL: {what}: {detail}");
    if e.as_db_error().is_some() {
        SinkError::other(message)
    } else {
        SinkError::unavailable(message)
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> SinkError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db_error("connecting", e),
        other => SinkError::unavailable(format!("PostgreSQL: no connection: {other}")),
    }
}

fn insert_sql(table: &str) -> String {
    format!(
        "INSERT INTO \"{table}\" (id, time, name, ip, user_name, session, device, user_agent, \
         method, path, route, status, action, score, attrs, event) \
         SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::inet[], \
         $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
         $12::int4[], $13::text[], $14::float8[], $15::jsonb[], $16::jsonb[]) \
         ON CONFLICT (id) DO NOTHING"
    )
}

/// The statements that bring a table from `version` to the next one.
fn migration(table: &str, version: i32) -> Option<String> {
    match version {
        0 => Some(format!(
            "CREATE TABLE IF NOT EXISTS \"{table}\" (
                 id uuid PRIMARY KEY,
                 time timestamptz NOT NULL,
                 name text NOT NULL,
                 ip inet,
                 user_name text,
                 session text,
                 device text,
                 user_agent text,
                 method text,
                 path text,
                 route text,
                 status integer,
                 action text,
                 score double precision,
                 attrs jsonb NOT NULL DEFAULT '{{}}',
                 event jsonb NOT NULL
             );
             CREATE INDEX IF NOT EXISTS \"{table}_time_idx\" ON \"{table}\" (time);
             CREATE INDEX IF NOT EXISTS \"{table}_ip_idx\" ON \"{table}\" (ip, time);
             CREATE INDEX IF NOT EXISTS \"{table}_user_name_idx\" ON \"{table}\" (user_name, time);
             CREATE INDEX IF NOT EXISTS \"{table}_name_idx\" ON \"{table}\" (name, time);"
        )),
        _ => None,
    }
}

async fn migrate(pool: &Pool, table: &str) -> Result<(), SinkError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| db_error("migrating", e))?;
    let step = |e| db_error("migrating", e);
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(step)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tower_siem_schema (
             table_name text PRIMARY KEY,
             version integer NOT NULL,
             migrated_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(step)?;
    let row = tx
        .query_opt(
            "SELECT version FROM tower_siem_schema WHERE table_name = $1",
            &[&table],
        )
        .await
        .map_err(step)?;
    let mut version: i32 = row.map(|r| r.get(0)).unwrap_or(0);
    if version > SCHEMA_VERSION {
        return Err(SinkError::other(format!(
            "PostgreSQL table {table:?} has schema version {version}, newer than this build \
             of tower-siem writes ({SCHEMA_VERSION}); upgrade tower-siem or use another table"
        )));
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    while version < SCHEMA_VERSION {
        let Some(sql) = migration(table, version) else {
            return Err(SinkError::other(format!(
                "no migration from schema version {version}"
            )));
        };
        tx.batch_execute(&sql).await.map_err(step)?;
        version += 1;
    }
    tx.execute(
        "INSERT INTO tower_siem_schema (table_name, version) VALUES ($1, $2)
         ON CONFLICT (table_name) DO UPDATE SET version = EXCLUDED.version, migrated_at = now()",
        &[&table, &version],
    )
    .await
    .map_err(step)?;
    tx.commit().await.map_err(step)
}

/// The JSON columns of a batch, encoded into one buffer.
struct Encoded {
    buf: Vec<u8>,
    /// Per event: where its `attrs` object and its whole-event object are in `buf`.
    spans: Vec<(Range<usize>, Range<usize>)>,
}

impl Encoded {
    fn new(batch: &[SharedEvent]) -> Result<Self, SinkError> {
        let mut buf = Vec::with_capacity(batch.len() * 512);
        let mut spans = Vec::with_capacity(batch.len());
        for event in batch {
            let attrs = push_json(&mut buf, &Attrs(&event.attrs))?;
            let whole = push_event(&mut buf, event)?;
            spans.push((attrs, whole));
        }
        Ok(Encoded { buf, spans })
    }
}

/// Appends the event in its native JSON form, as [`push_json`] does.
fn push_event(buf: &mut Vec<u8>, event: &Event) -> Result<Range<usize>, SinkError> {
    let start = buf.len();
    crate::event::json::write_event(buf, event);
    without_nul(buf, start)
}

/// Appends `value` as JSON, with any U+0000 (which `jsonb` refuses) replaced by U+FFFD.
fn push_json(buf: &mut Vec<u8>, value: &impl serde::Serialize) -> Result<Range<usize>, SinkError> {
    let start = buf.len();
    serde_json::to_writer(&mut *buf, value).map_err(SinkError::encode)?;
    without_nul(buf, start)
}

/// Replaces any escaped U+0000 in the JSON written since `start` by U+FFFD.
fn without_nul(buf: &mut Vec<u8>, start: usize) -> Result<Range<usize>, SinkError> {
    if buf[start..].windows(6).any(|w| w == b"\\u0000") {
        // Rare: take the slow, exact path rather than guess at escapes in the text.
        let mut tree: serde_json::Value =
            serde_json::from_slice(&buf[start..]).map_err(SinkError::encode)?;
        replace_nul(&mut tree);
        buf.truncate(start);
        serde_json::to_writer(&mut *buf, &tree).map_err(SinkError::encode)?;
    }
    Ok(start..buf.len())
}

fn replace_nul(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{FFFD}"),
        Value::Array(items) => items.iter_mut().for_each(replace_nul),
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (key, mut v) in old {
                replace_nul(&mut v);
                map.insert(key.replace('\0', "\u{FFFD}"), v);
            }
        }
        _ => {}
    }
}

/// Attributes as one JSON object.
struct Attrs<'a>(&'a [(String, String)]);

impl serde::Serialize for Attrs<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Already-encoded JSON text, sent as `jsonb` (or `json`) in the binary protocol.
#[derive(Debug)]
struct Jsonb<'a>(&'a [u8]);

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        if *ty == Type::JSONB {
            // jsonb binary format version.
            out.put_u8(1);
        }
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::JSON
    }

    to_sql_checked!();
}

/// Text without U+0000, which PostgreSQL cannot store.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

async fn insert(
    pool: &Pool,
    sql: &str,
    events: &[SharedEvent],
    encoded: &Encoded,
) -> Result<(), SinkError> {
    let n = events.len();
    let mut ids = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut ips: Vec<Option<IpAddr>> = Vec::with_capacity(n);
    let mut users = Vec::with_capacity(n);
    let mut sessions = Vec::with_capacity(n);
    let mut devices = Vec::with_capacity(n);
    let mut agents = Vec::with_capacity(n);
    let mut methods = Vec::with_capacity(n);
    let mut paths = Vec::with_capacity(n);
    let mut routes = Vec::with_capacity(n);
    let mut statuses: Vec<Option<i32>> = Vec::with_capacity(n);
    let mut actions: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut scores: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut attrs = Vec::with_capacity(n);
    let mut wholes = Vec::with_capacity(n);
    for (event, (a, w)) in events.iter().zip(&encoded.spans) {
        let event: &Event = event;
        ids.push(event.id);
        times.push(SystemTime::from(event.time));
        names.push(text(event.name.as_str()));
        ips.push(event.subject.ip);
        users.push(event.subject.user.as_deref().map(text));
        sessions.push(event.subject.session.as_deref().map(text));
        devices.push(event.subject.device.as_deref().map(text));
        agents.push(event.user_agent.as_deref().map(text));
        let http = event.http.as_ref();
        methods.push(http.map(|h| text(&h.method)));
        paths.push(http.map(|h| text(&h.path)));
        routes.push(http.and_then(|h| h.route.as_deref()).map(text));
        statuses.push(http.and_then(|h| h.status).map(i32::from));
        actions.push(event.verdict.as_ref().map(|v| action_name(v.action)));
        scores.push(event.verdict.as_ref().map(|v| v.score));
        attrs.push(Jsonb(&encoded.buf[a.clone()]));
        wholes.push(Jsonb(&encoded.buf[w.clone()]));
    }
    let client = pool.get().await.map_err(pool_error)?;
    let statement = client
        .prepare_cached(sql)
        .await
        .map_err(|e| db_error("preparing the insert", e))?;
    client
        .execute(
            &statement,
            &[
                &ids, &times, &names, &ips, &users, &sessions, &devices, &agents, &methods, &paths,
                &routes, &statuses, &actions, &scores, &attrs, &wholes,
            ],
        )
        .await
        .map_err(|e| db_error("inserting a batch", e))?;
    Ok(())
}

fn action_name(action: crate::Action) -> &'static str {
    match action {
        crate::Action::Allow => "allow",
        crate::Action::StepUp => "step_up",
        crate::Action::Throttle => "throttle",
        crate::Action::Block => "block",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers() {
        let sink = PostgresSink::new("postgres://postgres@127.0.0.1:5432/test").unwrap();
        for bad in [
            "",
            "1abc",
            "a-b",
            "a b",
            "a\"b",
            "s.t",
            "é",
            &"x".repeat(49),
        ] {
            assert!(sink.clone().table(bad).is_err(), "{bad:?}");
        }
        let sink = sink.table("Events_2026").unwrap();
        assert_eq!(sink.table_name(), "Events_2026");
        assert!(sink.config.insert.contains("INSERT INTO \"Events_2026\""));
    }

    #[test]
    fn tls_is_refused_and_debug_hides_the_password() {
        assert!(PostgresSink::new("postgres://u@h/db?sslmode=require").is_err());
        let err = PostgresSink::new("postgres://u:pw-123@h:bad/db").unwrap_err();
        assert!(!err.to_string().contains("pw-123"), "{err}");
        let sink = PostgresSink::new("postgres://siem:s3cr3t-pw@db.internal:6543/app").unwrap();
        let debug = format!("{sink:?}");
        assert!(!debug.contains("s3cr3t-pw"), "{debug}");
        assert!(debug.contains("db.internal:6543"), "{debug}");
    }

    #[test]
    fn nul_characters_are_replaced_in_json_and_text() {
        let event: SharedEvent = Arc::new(
            Event::new("x")
                .user("a\0b")
                .attr("k\0", "v\0w")
                .attr("plain", r"a literal \u0000 stays"),
        );
        let enc = Encoded::new(std::slice::from_ref(&event)).unwrap();
        let (a, w) = &enc.spans[0];
        let attrs: serde_json::Value = serde_json::from_slice(&enc.buf[a.clone()]).unwrap();
        assert_eq!(attrs["k\u{FFFD}"], "v\u{FFFD}w");
        assert_eq!(attrs["plain"], r"a literal \u0000 stays");
        let whole: serde_json::Value = serde_json::from_slice(&enc.buf[w.clone()]).unwrap();
        assert_eq!(whole["user"], "a\u{FFFD}b");
        assert_eq!(text("a\0b"), "a\u{FFFD}b");
        assert!(matches!(text("ab"), Cow::Borrowed(_)));
    }
}
