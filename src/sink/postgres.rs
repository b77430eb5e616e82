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
/// With the feature `postgres-tls`, connections use TLS (rustls with the `ring` provider,
/// through tokio-postgres-rustls) as the URL's `sslmode` asks, with libpq's meanings:
///
/// | `sslmode` | TLS | certificate checked |
/// |---|---|---|
/// | `disable` | never | — |
/// | `allow`, `prefer` (the default) | when the server offers it, else plain | no |
/// | `require` | always | no; against the CA, as `verify-ca`, when one is given |
/// | `verify-ca` | always | signed by a trusted CA |
/// | `verify-full` | always | signed by a trusted CA and issued for the host name |
///
/// The trusted CAs are the system's (rustls-native-certs), or only the one given by
/// [`tls_root_certificate`](PostgresSink::tls_root_certificate) or the URL's
/// `sslrootcert=<file>` (`sslrootcert=system` names the system's). `allow` is treated as
/// `prefer` (TLS tried first). Client certificates (`sslcert`, `sslkey`) are not supported.
/// PostgreSQL offers no TLS on a Unix socket: use `prefer` or `disable` there (unlike libpq,
/// tokio-postgres does not skip `require` for sockets).
/// Passwords go over SCRAM with channel binding when the server supports it.
///
/// Without `postgres-tls`, connections are plain TCP or a Unix socket, and a URL asking for TLS
/// (`sslmode=require`, `verify-ca`, `verify-full`, or an `sslrootcert`) is refused at
/// construction, with the feature to enable, rather than silently downgraded; `prefer` (the
/// default) connects in plain.
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
    /// What the URL's `sslmode` asked for.
    tls: TlsMode,
    /// The CA certificates (PEM) to trust instead of the system's.
    root: Option<Arc<Vec<u8>>>,
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
            .field("sslmode", &c.tls.name())
            .field("private_ca", &c.root.is_some())
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
    /// When `url` cannot be parsed, names an `sslrootcert` file that cannot be read, or asks
    /// for TLS without the feature `postgres-tls` (see "Connection security").
    pub fn new(url: &str) -> Result<Self, SinkError> {
        let params = TlsParams::take(url)?;
        let mut pg: tokio_postgres::Config = params.rest.parse().map_err(|_| {
            // The parser's message may quote the URL, password and all.
            SinkError::other("invalid PostgreSQL connection string")
        })?;
        let tls = match params.sslmode.as_deref() {
            None => TlsMode::Prefer,
            Some("disable") => TlsMode::Disable,
            Some("allow" | "prefer") => TlsMode::Prefer,
            Some("require") => TlsMode::Require,
            Some("verify-ca") => TlsMode::VerifyCa,
            Some("verify-full") => TlsMode::VerifyFull,
            Some(other) => {
                return Err(SinkError::other(format!(
                    "invalid sslmode {other:?}: use disable, allow, prefer, require, verify-ca \
                     or verify-full"
                )))
            }
        };
        if cfg!(not(feature = "postgres-tls")) {
            let what = match tls {
                TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => {
                    Some(format!("sslmode={}", tls.name()))
                }
                _ if params.sslrootcert.is_some() => Some("sslrootcert".to_owned()),
                _ => None,
            };
            if let Some(what) = what {
                return Err(SinkError::other(format!(
                    "{what}: PostgresSink connects without TLS unless the feature \
                     `postgres-tls` is enabled; see \"Connection security\" in its docs"
                )));
            }
        }
        let root = match params.sslrootcert.as_deref() {
            None | Some("system") => None,
            Some(path) => Some(Arc::new(std::fs::read(path).map_err(|e| {
                SinkError::other(format!("cannot read sslrootcert {path:?}: {e}"))
            })?)),
        };
        pg.ssl_mode(match tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        if let Some(root) = &root {
            check_pem(root)?;
        }
        let config = Config {
            pg,
            tls,
            root,
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

    /// Trusts the certificate authority in `pem` (one or more PEM certificates, a private CA)
    /// instead of the system's roots, as the URL's `sslrootcert=<file>` does (feature
    /// `postgres-tls`). With `sslmode=require`, the server's certificate is then checked
    /// against it, as with `verify-ca`.
    ///
    /// # Errors
    ///
    /// When `pem` holds no certificate.
    #[cfg(feature = "postgres-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres-tls")))]
    pub fn tls_root_certificate(self, pem: impl Into<Vec<u8>>) -> Result<Self, SinkError> {
        let pem = pem.into();
        check_pem(&pem)?;
        Ok(self.set(|c| c.root = Some(Arc::new(pem))))
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
                let pool = state.pool_ref()?;
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
        let manager_config = || ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        #[cfg(feature = "postgres-tls")]
        let manager = match config.tls {
            TlsMode::Disable => Ok(Manager::from_config(
                config.pg.clone(),
                NoTls,
                manager_config(),
            )),
            mode => {
                tls::connector(mode, config.root.as_deref().map(Vec::as_slice)).map(|connector| {
                    Manager::from_config(config.pg.clone(), connector, manager_config())
                })
            }
        };
        #[cfg(not(feature = "postgres-tls"))]
        let manager: Result<Manager, String> = Ok(Manager::from_config(
            config.pg.clone(),
            NoTls,
            manager_config(),
        ));
        let pool = match manager {
            Ok(manager) => Self::pool(manager, config),
            Err(e) => Err(e),
        };
        State {
            pool,
            schema: tokio::sync::OnceCell::new(),
        }
    }

    fn pool(manager: Manager, config: &Config) -> Result<Pool, String> {
        Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.timeout))
            .create_timeout(Some(config.timeout))
            .recycle_timeout(Some(config.timeout))
            .build()
            .map_err(|e| format!("cannot set up the PostgreSQL pool: {e}"))
    }

    fn pool_ref(&self) -> Result<&Pool, SinkError> {
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
                    let pool = state.pool_ref()?;
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
        None => {
            // The causes (an I/O error, the TLS handshake's reason) hold no credentials.
            let mut detail = e.to_string();
            let mut source = StdError::source(&e);
            while let Some(cause) = source {
                detail.push_str(": ");
                detail.push_str(&cause.to_string());
                source = cause.source();
            }
            detail
        }
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

/// The URL's `sslmode`, in libpq's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn name(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }
}

/// Refuses PEM text without a certificate in it.
fn check_pem(pem: &[u8]) -> Result<(), SinkError> {
    let has_cert = pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----");
    if has_cert {
        Ok(())
    } else {
        Err(SinkError::other(
            "the PostgreSQL root certificate holds no PEM certificate",
        ))
    }
}

/// The connection string without `sslmode` and `sslrootcert`, which tokio-postgres either
/// does not know (`verify-ca`, `verify-full`, `sslrootcert`) or should not see, and their values.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsParams {
    rest: String,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

impl TlsParams {
    fn take(url: &str) -> Result<Self, SinkError> {
        let mut out = TlsParams::default();
        let mut keep = |key: &str, value: String| -> bool {
            match key {
                "sslmode" => out.sslmode = Some(value),
                "sslrootcert" => out.sslrootcert = Some(value),
                _ => return true,
            }
            false
        };
        let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            match url.split_once('?') {
                None => url.to_owned(),
                Some((base, query)) => {
                    let decode = |s: &str| {
                        percent_encoding::percent_decode_str(s)
                            .decode_utf8()
                            .map(Cow::into_owned)
                            .map_err(|_| SinkError::other("invalid PostgreSQL connection string"))
                    };
                    let mut kept = Vec::new();
                    for pair in query.split('&') {
                        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                        if keep(&decode(key)?, decode(value)?) {
                            kept.push(pair);
                        }
                    }
                    if kept.is_empty() {
                        base.to_owned()
                    } else {
                        format!("{base}?{}", kept.join("&"))
                    }
                }
            }
        } else {
            let mut rest = String::with_capacity(url.len());
            for (span, key, value) in key_values(url)? {
                if keep(key, value) {
                    rest.push_str(&url[span]);
                    rest.push(' ');
                }
            }
            rest
        };
        out.rest = rest;
        Ok(out)
    }
}

/// One `key=value` pair: its span in the string, its key and its unquoted value.
type KeyValue<'a> = (Range<usize>, &'a str, String);

/// The `key=value` pairs of a libpq key/value connection string: each pair's span, key and
/// unquoted value.
fn key_values(s: &str) -> Result<Vec<KeyValue<'_>>, SinkError> {
    let bad = || SinkError::other("invalid PostgreSQL connection string");
    let bytes = s.as_bytes();
    let mut pairs = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= bytes.len() {
            return Ok(pairs);
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &s[start..i];
        skip_ws(&mut i);
        if key.is_empty() || bytes.get(i) != Some(&b'=') {
            return Err(bad());
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = Vec::new();
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(bad()),
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        value.push(*bytes.get(i + 1).ok_or_else(bad)?);
                        i += 2;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(&b) = bytes.get(i) {
                if b.is_ascii_whitespace() {
                    break;
                }
                if b == b'\\' {
                    value.push(*bytes.get(i + 1).ok_or_else(bad)?);
                    i += 2;
                } else {
                    value.push(b);
                    i += 1;
                }
            }
        }
        let value = String::from_utf8(value).map_err(|_| bad())?;
        pairs.push((start..i, key, value));
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

/// The rustls connectors of `postgres-tls`, on the `ring` provider.
#[cfg(feature = "postgres-tls")]
mod tls {
    use std::sync::{Arc, OnceLock};

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
    use tokio_postgres_rustls::MakeRustlsConnect;

    use super::TlsMode;

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// The system's roots, loaded once per process.
    fn system_roots() -> Result<Arc<RootCertStore>, String> {
        static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
        ROOTS
            .get_or_init(|| {
                let found = rustls_native_certs::load_native_certs();
                let mut roots = RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    Err(format!(
                        "PostgreSQL TLS: no system root certificates found ({} errors); give \
                         the CA with tls_root_certificate or sslrootcert",
                        found.errors.len()
                    ))
                } else {
                    Ok(Arc::new(roots))
                }
            })
            .clone()
    }

    fn roots(pem: Option<&[u8]>) -> Result<Arc<RootCertStore>, String> {
        let Some(pem) = pem else {
            return system_roots();
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert =
                cert.map_err(|e| format!("PostgreSQL TLS: invalid root certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("PostgreSQL TLS: unusable root certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("PostgreSQL TLS: the root certificate holds no certificate".to_owned());
        }
        Ok(Arc::new(roots))
    }

    /// The connector for `mode` (not `Disable`), trusting `root` or the system's roots.
    pub(super) fn connector(
        mode: TlsMode,
        root: Option<&[u8]>,
    ) -> Result<MakeRustlsConnect, String> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("PostgreSQL TLS: {e}"))?;
        // libpq: `require` with a CA given checks the chain, as `verify-ca`.
        let mode = match (mode, root) {
            (TlsMode::Require, Some(_)) => TlsMode::VerifyCa,
            (mode, _) => mode,
        };
        let config = match mode {
            TlsMode::VerifyFull => builder
                .with_root_certificates(roots(root)?)
                .with_no_client_auth(),
            TlsMode::VerifyCa => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly {
                    roots: roots(root)?,
                    provider,
                }))
                .with_no_client_auth(),
            TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified { provider }))
                .with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }

    /// `verify-ca`: the chain must lead to a trusted root; the name is not checked.
    #[derive(Debug)]
    struct ChainOnly {
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
    }

    /// `prefer` and `require` without a CA: encrypted, the certificate not checked (libpq's
    /// meaning); the handshake's signatures still are.
    #[derive(Debug)]
    struct Unverified {
        provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for ChainOnly {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                &self.roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    impl ServerCertVerifier for Unverified {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
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
    fn tls_params_are_taken_out_of_both_forms() {
        let p =
            TlsParams::take("postgres://u:p@h/db?sslmode=verify-full&application_name=x").unwrap();
        assert_eq!(p.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(p.rest, "postgres://u:p@h/db?application_name=x");
        let p = TlsParams::take("postgresql://h/db?sslrootcert=%2Ftmp%2Fca.pem&sslmode=require")
            .unwrap();
        assert_eq!(p.sslrootcert.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(p.rest, "postgresql://h/db");
        let p = TlsParams::take("host=h user=u sslmode = 'verify-ca' password='a b\\'c'").unwrap();
        assert_eq!(p.sslmode.as_deref(), Some("verify-ca"));
        let pg: tokio_postgres::Config = p.rest.parse().unwrap();
        assert_eq!(pg.get_password(), Some(&b"a b'c"[..]));
        for bad in ["host", "host=h x", "password='open", "k=v\\"] {
            assert!(TlsParams::take(bad).is_err(), "{bad:?}");
        }
        assert!(PostgresSink::new("postgres://h/db?sslmode=bogus").is_err());
        let sink = PostgresSink::new("host=h sslmode=disable").unwrap();
        assert_eq!(sink.config.tls, TlsMode::Disable);
        // Never a panic, whatever the bytes.
        for s in [
            "é=\\é",
            "a='\\é'",
            "=",
            "'",
            "a=\\",
            "postgres://h?%ff=1",
            "postgres://h?&&",
        ] {
            let _ = PostgresSink::new(s);
        }
    }

    #[cfg(not(feature = "postgres-tls"))]
    #[test]
    fn tls_without_the_feature_is_refused_naming_it() {
        for url in [
            "postgres://u@h/db?sslmode=require",
            "postgres://u@h/db?sslmode=verify-full",
            "host=h sslmode=verify-ca",
            "postgres://u@h/db?sslrootcert=/x.pem",
        ] {
            let err = PostgresSink::new(url).unwrap_err();
            assert!(err.to_string().contains("postgres-tls"), "{err}");
        }
        assert!(PostgresSink::new("postgres://u@h/db?sslmode=prefer").is_ok());
    }

    #[cfg(feature = "postgres-tls")]
    #[test]
    fn tls_modes_are_accepted_and_a_bad_ca_refused() {
        for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            let sink = PostgresSink::new(&format!("postgres://u@h/db?sslmode={mode}")).unwrap();
            assert_eq!(sink.config.tls.name(), mode);
        }
        let sink = PostgresSink::new("postgres://u@h/db?sslmode=verify-full").unwrap();
        assert!(sink
            .clone()
            .tls_root_certificate(b"not pem".to_vec())
            .is_err());
        let err =
            PostgresSink::new("postgres://u@h/db?sslrootcert=/nonexistent/ca.pem").unwrap_err();
        assert!(err.to_string().contains("sslrootcert"), "{err}");
    }

    #[test]
    fn tls_is_refused_and_debug_hides_the_password() {
        #[cfg(not(feature = "postgres-tls"))]
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
