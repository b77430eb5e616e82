//! The admin API (feature `dashboard`): JSON endpoints over a [`Siem`] behind a bearer token,
//! as an axum [`Router`] the application mounts where it chooses.
//!
//! ```
//! use axum::Router;
//! use tower_siem::Siem;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let siem = Siem::builder().build()?;
//! let token = "a long random token, from a secret store".replace(' ', "-");
//! let app: Router = Router::new()
//!     // … the application's routes, then `.layer(siem.layer())` …
//!     .nest("/_siem", siem.admin_router(token)?);
//! # Ok(()) }
//! ```
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /api/offenders` | entities stepped up, throttled or blocked now, highest score first |
//! | `GET /api/entities/{entity}` | one entity (`ip:203.0.113.7`, `user:alice`, `net:203.0.113.0%2F24`); 404 when unknown |
//! | `POST /api/entities/{entity}/block` | blocks it for `{"for": "10m"}` (1 s to 365 d) |
//! | `POST /api/entities/{entity}/unblock` | lifts its block and clears its score |
//! | `POST /api/entities/{entity}/allow` | allow-lists it for `{"for": "1h"}` (1 s to 365 d) |
//! | `GET /api/stats` | [`Siem::stats`] |
//! | `GET /metrics` | [`Siem::stats`] in the Prometheus text format ([`exposition`]) |
//! | `GET /api/allowlist` | `{"networks": [{"cidr": "10.0.0.0/8", "source": "config", "until": null}]}`: [`Siem::allowed_networks`]; `source` is `config` or `admin`, `until` Unix ms or `null` |
//! | `POST /api/allowlist` | allow-lists `{"cidr": "198.51.100.0/24", "for": "1h"}` (`for` optional: until removed); answers the entry |
//! | `DELETE /api/allowlist?cidr=198.51.100.0/24` | removes a network added at run time; `{"removed": "198.51.100.0/24"}` |
//! | `GET /api/events?name=&entity=&action=&since=&until=&limit=` | stored events, newest first, as `{"events": […]}` (needs [`AdminBuilder::events`]; 501 without) |
//! | `GET /api/feed?name=&entity=&action=` | events as they are recorded, over Server-Sent Events |
//! | `GET /api/rules` | `{"rules": [{"id", "kind", "shadow"}], "file", "last_reload"}`: [`Siem::rules_status`] |
//! | `POST /api/rules/reload` | reloads the rules file the SIEM knows ([`Siem::reload_rules_file`]); `{"outcome": "success", "file", "report"}`, 422 with the error when the file is refused (the rules in force stay), 409 when it knows no file |
//! | `GET /` | the dashboard: an HTML page over these endpoints (its files under `/assets/`) |
//! | `POST /login`, `POST /logout` | the dashboard's session: the token from a form, traded for a cookie |
//!
//! Every route, the unknown ones included, wants `Authorization: Bearer <token>`; the token
//! is compared in constant time, and a missing or wrong one gets `401` with
//! `WWW-Authenticate: Bearer` (and, for a browser's `GET` that accepts HTML, a login form).
//! The exceptions are the dashboard's browser session and its open doors: `POST /login`
//! takes the token form-encoded (`token=…`) and, when it is right, sets a session cookie
//! (`HttpOnly; SameSite=Strict`, `Path` the mount path, 12 hours, at most 1,024 sessions held
//! in memory); a request with that cookie is let through like one with the token, except that
//! one other than `GET` or `HEAD` must also send `X-Siem-Request: 1` (which a form on another
//! site cannot), else `403`. The page's static files (`/assets/…`) need no credentials.
//! Logins are recorded as `admin.login` events (`outcome` `success` or `failure`, `client`).
//! Answers are JSON (`Cache-Control: no-store`), errors `{"error": "…"}`: 400 for an entity,
//! duration, network or filter that does not parse, 404 for an unknown entity or path.
//!
//! Every block, unblock and allow is itself recorded as an event (`admin.block`,
//! `admin.unblock`, `admin.allow`) about the entity (its subject: the address, user, session
//! or device, in stored form; none for a network) with attributes `entity` (its display
//! form; a hashed id in it is masked by the redactor like any token), `for` (block and allow),
//! `client` (the admin request's socket address, when the server provides axum's
//! `ConnectInfo<SocketAddr>` or a [`PeerAddr`]) and `operator`: the token's
//! [fingerprint](token_fingerprint), never the token. No built-in rule reads these names.
//! A rules reload is an `admin.rules.reload` event (no subject) with `file`, `outcome`,
//! `error` (when refused), `client` and `operator`, next to the SIEM's own
//! `siem.rules.reload` (see [`crate::reload`]).
//!
//! An entity is named in its display form, percent-encoded in the path; a user is given as
//! the application names it, even when the SIEM stores user ids hashed.
//!
//! **Allow-list.** Networks added with `POST /api/allowlist` are honoured by the gate from the
//! next request, as the builder's [`allow_networks`](crate::SiemBuilder::allow_networks) are.
//! Refused: a public network broader than IPv4 /8 or IPv6 /24 or a list covering every address
//! (400, the rules applied to trusted proxies), more than
//! [`MAX_ADDED_NETWORKS`](crate::engine::MAX_ADDED_NETWORKS) added networks (409), replacing or
//! removing a configured network (409); removing one not listed is 404. Each change is an
//! `admin.allowlist.add` or `admin.allowlist.remove` event (no subject) with attributes `cidr`,
//! `for` (when given), `client` and `operator`.
//!
//! **Events.** With an event store (`siem.admin(token).events("events.db").router()`, see
//! [`AdminBuilder`]), `GET /api/events` answers from the SQLite file a
//! [`SqliteSink`](crate::sink::SqliteSink) writes, each event as the sink stored it (redacted):
//! filters `name`, `entity` (`ip:…` or `user:…`), `action` (`allow`, `step_up`, `throttle`,
//! `block`), `since` and `until` (RFC 3339 or Unix ms; `until` exclusive), `limit`
//! ([`DEFAULT_EVENTS`], at most [`MAX_EVENTS`]). `GET /api/entities/{entity}` then also lists
//! an address's or a user's [`ENTITY_EVENTS`] most recent events as `events`. The file is
//! opened read-only on first use, and every query runs on a blocking thread.
//!
//! **Feed.** `GET /api/feed` streams every event handed to the sinks, after redaction, as
//! `event: siem` with the event's JSON on one `data:` line, filtered like the events
//! endpoint; a comment every [`FEED_KEEP_ALIVE`] keeps it open. It needs a sink (501 without).
//! At most [`MAX_FEED_SUBSCRIBERS`](crate::pipeline::MAX_FEED_SUBSCRIBERS) feeds are open at
//! once (503 beyond); one that falls [`FEED_CAPACITY`](crate::pipeline::FEED_CAPACITY) events
//! behind skips the oldest and gets `event: lagged`, `data: {"skipped": n}`.

use std::fmt;
use std::hash::Hasher;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

mod allowlist;
mod events;
mod rules;

use self::allowlist::{allowlist, allowlist_add, allowlist_remove};
use self::events::{events, feed};
pub use self::events::{DEFAULT_EVENTS, ENTITY_EVENTS, FEED_KEEP_ALIVE, MAX_EVENTS};
use self::rules::{rules, rules_reload};
use crate::engine::{Dur, EntityKey, Offender};
use crate::event::{Event, Subject};
use crate::{PeerAddr, Siem};

mod page;

/// The shortest token [`Siem::admin_router`] accepts, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;

/// The shortest block or allow the API sets.
pub const MIN_DURATION: Duration = Duration::from_secs(1);

/// The longest block or allow the API sets (365 days).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Why [`Siem::admin_router`] refused its token. The message never holds the token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminError {
    /// Shorter than [`MIN_TOKEN_LEN`] bytes.
    TokenTooShort {
        /// Its length in bytes.
        len: usize,
    },
    /// It holds whitespace (a stray newline from a file, say).
    TokenWhitespace,
    /// It holds a byte that cannot be sent in an `Authorization` header as is (a control
    /// character or non-ASCII text).
    TokenNotVisibleAscii,
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::TokenTooShort { len } => write!(
                f,
                "admin token too short: {len} bytes, at least {MIN_TOKEN_LEN} required (use a \
                 random one, such as the output of `openssl rand -hex 32`)"
            ),
            AdminError::TokenWhitespace => f.write_str(
                "admin token holds whitespace (a trailing newline read from a file?); remove it",
            ),
            AdminError::TokenNotVisibleAscii => f.write_str(
                "admin token holds a control character or non-ASCII text; use visible ASCII \
                 only",
            ),
        }
    }
}

impl std::error::Error for AdminError {}

impl Siem {
    /// The admin API as an axum [`Router`], to mount where the application chooses:
    /// `app.nest("/_siem", siem.admin_router(token)?)`. See the [`admin`](crate::admin)
    /// module for its endpoints. The same as `siem.admin(token).router()`: without an event
    /// store (see [`Siem::admin`]), `GET /api/events` answers 501.
    ///
    /// Mounted behind [`Siem::layer`], admin requests are gated like any other (a blocked
    /// address cannot reach the API) and scored: its 404s (one per unknown entity looked up)
    /// count towards the probing rule like any others, so an operator could step up or block
    /// their own address. Mount it after the layer (`.layer(siem.layer()).nest("/_siem", …)`)
    /// to keep it out of the SIEM's sight.
    ///
    /// The router has its state already: nest it into the application's after that one's
    /// `.with_state(…)`, or with `nest_service`.
    ///
    /// # Errors
    /// A token shorter than [`MIN_TOKEN_LEN`] bytes, or with whitespace, control characters or
    /// non-ASCII text.
    #[cfg_attr(docsrs, doc(cfg(feature = "dashboard")))]
    pub fn admin_router(&self, token: impl Into<String>) -> Result<Router, AdminError> {
        self.admin(token).router()
    }

    /// The admin API with options: `siem.admin(token).events(path).router()?` also answers
    /// `GET /api/events` from the SQLite file a [`SqliteSink`](crate::sink::SqliteSink)
    /// writes, and lists an entity's recent events in `GET /api/entities/{entity}`.
    ///
    /// ```
    /// use axum::Router;
    /// use tower_siem::sink::SqliteSink;
    /// use tower_siem::Siem;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let db = dir.path().join("events.db");
    /// let siem = Siem::builder().sink(SqliteSink::new(&db)).build()?;
    /// let token = "a long random token, from a secret store".replace(' ', "-");
    /// let app: Router = Router::new()
    ///     .nest("/_siem", siem.admin(token).events(&db).router()?);
    /// # Ok(()) }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "dashboard")))]
    pub fn admin(&self, token: impl Into<String>) -> AdminBuilder {
        AdminBuilder {
            siem: self.clone(),
            token: token.into(),
            #[cfg(feature = "sqlite")]
            events: None,
        }
    }
}

/// Options of the admin API; from [`Siem::admin`].
#[must_use]
pub struct AdminBuilder {
    siem: Siem,
    token: String,
    #[cfg(feature = "sqlite")]
    events: Option<Arc<EventStore>>,
}

impl fmt::Debug for AdminBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token.
        f.debug_struct("AdminBuilder").finish_non_exhaustive()
    }
}

impl AdminBuilder {
    /// Answers `GET /api/events` (and an entity's recent events) from the SQLite events file
    /// at `path`, as written by a [`SqliteSink`](crate::sink::SqliteSink). The file is opened
    /// read-only on first use, on a blocking thread; it need not exist yet.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn events(mut self, path: impl AsRef<std::path::Path>) -> Self {
        self.events = Some(Arc::new(EventStore {
            path: path.as_ref().to_owned(),
            store: parking_lot::Mutex::new(None),
        }));
        self
    }

    /// [`events`](Self::events) from a store the application opened already.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn event_store(mut self, store: Arc<crate::sink::sqlite::SqliteStore>) -> Self {
        self.events = Some(Arc::new(EventStore {
            path: store.path().to_owned(),
            store: parking_lot::Mutex::new(Some(store)),
        }));
        self
    }

    /// The router. See [`Siem::admin_router`].
    ///
    /// # Errors
    /// A token shorter than [`MIN_TOKEN_LEN`] bytes, or with whitespace, control characters or
    /// non-ASCII text.
    pub fn router(self) -> Result<Router, AdminError> {
        let token = self.token;
        check_token(&token)?;
        let admin = Admin {
            siem: self.siem,
            operator: token_fingerprint(&token).into(),
            token: token.into_bytes().into(),
            #[cfg(feature = "sqlite")]
            events: self.events,
            sessions: Arc::default(),
        };
        Ok(Router::new()
            .route("/api/offenders", get(offenders))
            .route("/api/stats", get(stats))
            .route("/metrics", get(prometheus))
            .route("/api/entities/{entity}", get(entity))
            .route("/api/entities/{entity}/block", post(block))
            .route("/api/entities/{entity}/unblock", post(unblock))
            .route("/api/entities/{entity}/allow", post(allow))
            .route(
                "/api/allowlist",
                get(allowlist).post(allowlist_add).delete(allowlist_remove),
            )
            .route("/api/events", get(events))
            .route("/api/feed", get(feed))
            .route("/api/rules", get(rules))
            .route("/api/rules/reload", post(rules_reload))
            .merge(page::routes())
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(middleware::from_fn_with_state(admin.clone(), authorize))
            .with_state(admin))
    }
}

/// The events file, opened on first use.
#[cfg(feature = "sqlite")]
struct EventStore {
    path: std::path::PathBuf,
    store: parking_lot::Mutex<Option<Arc<crate::sink::sqlite::SqliteStore>>>,
}

#[cfg(feature = "sqlite")]
impl EventStore {
    /// The store, opened now if not yet. Blocking: call from `spawn_blocking`.
    fn get(&self) -> Result<Arc<crate::sink::sqlite::SqliteStore>, String> {
        let mut slot = self.store.lock();
        if let Some(s) = &*slot {
            return Ok(Arc::clone(s));
        }
        let opened = Arc::new(
            crate::sink::sqlite::SqliteStore::open(&self.path).map_err(|e| e.to_string())?,
        );
        *slot = Some(Arc::clone(&opened));
        Ok(opened)
    }
}

fn check_token(token: &str) -> Result<(), AdminError> {
    if token.len() < MIN_TOKEN_LEN {
        return Err(AdminError::TokenTooShort { len: token.len() });
    }
    if token.chars().any(char::is_whitespace) {
        return Err(AdminError::TokenWhitespace);
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AdminError::TokenNotVisibleAscii);
    }
    Ok(())
}

/// Whether `a` and `b` are equal, in time that depends on `a`'s length only: every byte of
/// `a` is compared whatever the content, and lengths that differ give `false` without an
/// early exit. `a` is the secret, `b` what a client sent.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, &x) in a.iter().enumerate() {
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Names a token without revealing it: the first 8 hex digits of its SipHash-2-4 under a
/// fixed key. Admin events carry it as `operator`, so that actions taken with different
/// tokens can be told apart.
///
/// ```
/// let fp = tower_siem::admin::token_fingerprint("correct-horse-battery-staple");
/// assert_eq!(fp.len(), 8);
/// assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
/// ```
pub fn token_fingerprint(token: &str) -> String {
    // "tower-siem admin" in ASCII: a fixed key, so a fingerprint means the same everywhere.
    let mut h =
        siphasher::sip::SipHasher24::new_with_keys(0x746f_7765_722d_7369, 0x656d_2061_646d_696e);
    h.write(token.as_bytes());
    format!("{:08x}", h.finish() >> 32)
}

#[derive(Clone)]
struct Admin {
    siem: Siem,
    token: Arc<[u8]>,
    operator: Arc<str>,
    #[cfg(feature = "sqlite")]
    events: Option<Arc<EventStore>>,
    /// The dashboard's browser sessions.
    sessions: Arc<page::Sessions>,
}

/// Who made an admin request, set by [`authorize`] for the handlers.
#[derive(Clone, Copy)]
struct Caller {
    client: Option<SocketAddr>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError::new(status, message).into_response()
}

/// An answer other than success: its status and `{"error": message}`.
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(body),
        )
            .into_response()
    }
}

fn ok(body: impl Serialize) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn unauthorized() -> Response {
    let mut res = error(
        StatusCode::UNAUTHORIZED,
        "missing or invalid bearer token (send `Authorization: Bearer <token>`)",
    );
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tower-siem\""),
    );
    res
}

/// The token of an `Authorization: Bearer <token>` header value, if it has that form.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    if value.len() <= SCHEME.len()
        || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME)
        || value[SCHEME.len()] != b' '
    {
        return None;
    }
    let rest = &value[SCHEME.len()..];
    let start = rest.iter().position(|&b| b != b' ')?;
    let end = rest.iter().rposition(|&b| b != b' ' && b != b'\t')? + 1;
    Some(&rest[start..end])
}

async fn authorize(State(admin): State<Admin>, mut req: Request, next: Next) -> Response {
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let authorized = match (values.next(), values.next()) {
        (Some(v), None) => bearer(v.as_bytes()).is_some_and(|t| constant_time_eq(&admin.token, t)),
        // None, or two headers: which one counts would be a guess.
        _ => false,
    };
    if !authorized {
        // No bearer token: a browser's session cookie, the public assets and login, or 401.
        match page::access(&admin, &req) {
            page::Access::Session | page::Access::Public => {}
            page::Access::Refused(res) => return res,
        }
    }
    let ext = req.extensions();
    let client = ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| ext.get::<PeerAddr>().map(|p| p.0));
    req.extensions_mut().insert(Caller { client });
    next.run(req).await
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such admin endpoint")
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this admin endpoint",
    )
}

/// An offender as the API shows it: the [`Offender`] fields, and where it stands now.
#[derive(Serialize)]
struct View<'a> {
    #[serde(flatten)]
    offender: &'a Offender,
    /// `blocked`, `allowed` (allow-listed) or `scored`.
    state: &'static str,
    /// Milliseconds left of the block, or of the allow-listing.
    #[serde(skip_serializing_if = "Option::is_none")]
    time_left_ms: Option<i64>,
}

impl Admin {
    fn view<'a>(&self, offender: &'a Offender) -> View<'a> {
        let now = self.siem.now_millis();
        if let Some(until) = offender.blocked_until {
            return View {
                offender,
                state: "blocked",
                time_left_ms: Some((until.as_millisecond() - now).max(0)),
            };
        }
        // The offender's entity is in stored form already (masked address, hashed user).
        let allow_until = self
            .siem
            .engine()
            .store()
            .get(&offender.entity)
            .map_or(0, |s| s.allow_until);
        if allow_until > now {
            return View {
                offender,
                state: "allowed",
                time_left_ms: Some(allow_until - now),
            };
        }
        View {
            offender,
            state: "scored",
            time_left_ms: None,
        }
    }

    /// The entity's explanation, or `{"entity": …, "state": "none"}` when nothing is held.
    fn explain(&self, key: &EntityKey) -> Response {
        match self.siem.explain(key) {
            Some(o) => ok(self.view(&o)),
            None => ok(serde_json::json!({
                "entity": self.siem.normalize(key),
                "state": "none",
            })),
        }
    }

    /// Records an admin action as an event about the entity (its subject, in stored form).
    fn record(&self, name: &'static str, key: &EntityKey, dur: Option<Dur>, caller: Caller) {
        let key = self.siem.normalize(key);
        let subject = match &key {
            EntityKey::Ip(ip) => Subject::ip(*ip),
            EntityKey::User(u) => Subject::user(&**u),
            EntityKey::Session(s) => Subject::default().with_session(&**s),
            EntityKey::Device(d) => Subject::default().with_device(&**d),
            EntityKey::Net(_) => Subject::default(),
        };
        let mut event = Event::new(name)
            .subject(subject)
            .attr("entity", key.to_string());
        if let Some(d) = dur {
            event = event.attr("for", d.to_string());
        }
        if let Some(addr) = caller.client {
            event = event.attr("client", addr.to_string());
        }
        event = event.attr("operator", &*self.operator);
        // The user id is in stored form already: not hashed a second time.
        self.siem.fire_prepared(event);
    }
}

fn parse_entity(path: Result<Path<String>, PathRejection>) -> Result<EntityKey, ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "not an entity: expected ip:203.0.113.7, user:alice, session:…, device:… or \
             net:203.0.113.0%2F24",
        )
    };
    let Ok(Path(text)) = path else {
        return Err(bad());
    };
    match EntityKey::parse(&text) {
        Some(EntityKey::User(v) | EntityKey::Session(v) | EntityKey::Device(v))
            if v.trim().is_empty() =>
        {
            Err(bad())
        }
        Some(key) => Ok(key),
        None => Err(bad()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForBody {
    #[serde(rename = "for")]
    dur: Dur,
}

/// The `{"for": "10m"}` body of a block or allow, within [`MIN_DURATION`] and [`MAX_DURATION`].
fn parse_for(body: Result<Bytes, BytesRejection>) -> Result<Dur, ApiError> {
    let body = body.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    let parsed: ForBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("expected a JSON body such as {{\"for\": \"10m\"}}: {e}"),
        )
    })?;
    let d = parsed.dur;
    if d.0 < MIN_DURATION || d.0 > MAX_DURATION {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("duration {d} out of range: from 1s to 365d"),
        ));
    }
    Ok(d)
}

async fn offenders(State(admin): State<Admin>) -> Response {
    let all = admin.siem.offenders();
    ok(all.iter().map(|o| admin.view(o)).collect::<Vec<_>>())
}

async fn stats(State(admin): State<Admin>) -> Response {
    ok(admin.siem.stats())
}

async fn prometheus(State(admin): State<Admin>) -> Response {
    let text = exposition(&admin.siem.stats());
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// [`Siem::stats`] in the Prometheus text format, under the names the `metrics` feature uses
/// for the same figures (so a dashboard reads either).
pub fn exposition(stats: &crate::SiemStats) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(4096);
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let label = |pairs: &[(&str, &str)]| {
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| {
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                format!("{k}=\"{v}\"")
            })
            .collect();
        format!("{{{}}}", body.join(","))
    };
    let e = &stats.engine;
    family(
        "tower_siem_engine_events_total",
        "counter",
        "Events the engine has seen.",
        &[(String::new(), e.events)],
    );
    let mut hits = Vec::new();
    for r in &e.rules {
        hits.push((label(&[("rule", &r.id), ("shadow", "false")]), r.hits));
        hits.push((label(&[("rule", &r.id), ("shadow", "true")]), r.shadow_hits));
    }
    family(
        "tower_siem_rule_hits_total",
        "counter",
        "Times each rule fired (in shadow mode: would have).",
        &hits,
    );
    for (name, kind, help, v) in [
        ("tower_siem_entities", "gauge", "Entities with risk state in the store.", e.entities),
        ("tower_siem_entity_capacity", "gauge", "The store's capacity.", e.entity_capacity),
        ("tower_siem_sessions", "gauge", "Sessions bound to a user.", e.sessions),
        ("tower_siem_window_keys_max", "gauge", "Most keys any one rule keeps a window for.", e.max_window_keys),
        ("tower_siem_window_evictions_total", "counter", "Window entries evicted to stay within capacity.", e.window_evictions),
        ("tower_siem_decisions_held", "gauge", "Entities blocked, allow-listed, throttled or with an offence history, out of reach of eviction.", e.decisions.held),
        ("tower_siem_decisions_capacity", "gauge", "The most decisions the store holds.", e.decisions.capacity),
        ("tower_siem_decisions_evicted_total", "counter", "Decisions dropped to stay within that bound.", e.decisions.evicted),
        ("tower_siem_entities_blocked", "gauge", "Entities blocked now.", e.decisions.blocked),
    ] {
        family(name, kind, help, &[(String::new(), v)]);
    }
    let verdicts: Vec<(String, u64)> = e
        .verdicts
        .by_action()
        .iter()
        .map(|(a, v)| (label(&[("action", a)]), *v))
        .collect();
    family(
        "tower_siem_verdicts_total",
        "counter",
        "Verdicts given, by action: one per request the layer saw, one per application event fired.",
        &verdicts,
    );
    let sinks = &stats.pipeline.sinks;
    let per_sink = |f: &dyn Fn(&crate::pipeline::SinkStats) -> u64| -> Vec<(String, u64)> {
        sinks
            .iter()
            .enumerate()
            .map(|(i, s)| (label(&[("sink", &s.name), ("index", &i.to_string())]), f(s)))
            .collect()
    };
    family(
        "tower_siem_sink_events_emitted_total",
        "counter",
        "Events handed to the sink's queue.",
        &per_sink(&|s| s.emitted),
    );
    family(
        "tower_siem_sink_events_delivered_total",
        "counter",
        "Events the sink accepted.",
        &per_sink(&|s| s.delivered),
    );
    family(
        "tower_siem_sink_events_buffered",
        "gauge",
        "Events queued or in flight.",
        &per_sink(&|s| s.buffered),
    );
    family(
        "tower_siem_sink_retries_total",
        "counter",
        "Batch retries.",
        &per_sink(&|s| s.retries),
    );
    family(
        "tower_siem_sink_write_errors_total",
        "counter",
        "Failed writes and flushes.",
        &per_sink(&|s| s.write_errors),
    );
    let mut dropped = Vec::new();
    for (i, s) in sinks.iter().enumerate() {
        let index = i.to_string();
        for (reason, v) in s.dropped.by_reason() {
            dropped.push((
                label(&[("sink", &s.name), ("index", &index), ("reason", reason)]),
                v,
            ));
        }
    }
    family(
        "tower_siem_sink_events_dropped_total",
        "counter",
        "Events lost, by cause.",
        &dropped,
    );
    // Batch write durations, per sink, as a Prometheus histogram (cumulative buckets); added
    // after the other families.
    let mut hist = String::new();
    let _ = writeln!(
        hist,
        "# HELP tower_siem_sink_write_seconds Time of each batch write (successful or failed)."
    );
    let _ = writeln!(hist, "# TYPE tower_siem_sink_write_seconds histogram");
    for (i, s) in sinks.iter().enumerate() {
        let index = i.to_string();
        let mut cumulative = 0u64;
        let w = &s.write_seconds;
        for (k, n) in w.counts.iter().enumerate() {
            cumulative += n;
            let le = crate::pipeline::WRITE_BUCKETS
                .get(k)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let labels = label(&[("sink", &s.name), ("index", &index), ("le", &le)]);
            let _ = writeln!(
                hist,
                "tower_siem_sink_write_seconds_bucket{labels} {cumulative}"
            );
        }
        let labels = label(&[("sink", &s.name), ("index", &index)]);
        let _ = writeln!(
            hist,
            "tower_siem_sink_write_seconds_sum{labels} {}",
            w.sum_micros as f64 / 1e6
        );
        let _ = writeln!(
            hist,
            "tower_siem_sink_write_seconds_count{labels} {}",
            w.count()
        );
    }
    if let Some(shared) = &e.shared {
        family(
            "tower_siem_shared_connected",
            "gauge",
            "1 while the sharing store is connected to Redis.",
            &[(String::new(), u64::from(shared.connected))],
        );
        let ways: Vec<(String, u64)> = shared
            .by_way()
            .iter()
            .map(|(w, v)| (label(&[("way", w)]), *v))
            .collect();
        family(
            "tower_siem_shared_decisions_total",
            "counter",
            "Decisions shared with other replicas, by way.",
            &ways,
        );
        let ways: Vec<(String, u64)> = shared
            .observations_by_way()
            .iter()
            .map(|(w, v)| (label(&[("way", w)]), *v))
            .collect();
        family(
            "tower_siem_shared_observations_total",
            "counter",
            "Rule-window observations shared with other replicas, by way.",
            &ways,
        );
        family(
            "tower_siem_shared_errors_total",
            "counter",
            "Failed connections and commands of the sharing store.",
            &[(String::new(), shared.errors)],
        );
        family(
            "tower_siem_shared_lookups_alone_total",
            "counter",
            "Gate lookups made while Redis was away.",
            &[
                (label(&[("mode", "open")]), shared.failed_open),
                (label(&[("mode", "closed")]), shared.failed_closed),
            ],
        );
    }
    out.push_str(&hist);
    out
}

async fn entity(
    State(admin): State<Admin>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let key = parse_entity(path)?;
    match admin.siem.explain(&key) {
        Some(o) => Ok(events::with_events(&admin, &key, admin.view(&o)).await),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "nothing is known about this entity",
        )),
    }
}

async fn block(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = parse_entity(path)?;
    let dur = parse_for(body)?;
    admin.siem.block(&key, dur.0);
    admin.record("admin.block", &key, Some(dur), caller);
    Ok(admin.explain(&key))
}

async fn unblock(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let key = parse_entity(path)?;
    admin.siem.unblock(&key);
    admin.record("admin.unblock", &key, None, caller);
    Ok(admin.explain(&key))
}

async fn allow(
    State(admin): State<Admin>,
    Extension(caller): Extension<Caller>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = parse_entity(path)?;
    let dur = parse_for(body)?;
    admin.siem.allow(&key, dur.0);
    admin.record("admin.allow", &key, Some(dur), caller);
    Ok(admin.explain(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!constant_time_eq(b"0123456789abcdef", b"0123456789abcdeF"));
        assert!(!constant_time_eq(b"0123456789abcdef", b"1123456789abcdef"));
        // Different lengths, a prefix either way.
        assert!(!constant_time_eq(b"0123456789abcdef", b"0123456789abcde"));
        assert!(!constant_time_eq(b"0123456789abcde", b"0123456789abcdef"));
        // Trailing NULs must not pass for missing bytes.
        assert!(!constant_time_eq(b"abc\0", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abc\0"));
        // Empty.
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(!constant_time_eq(b"a", b""));
    }

    #[test]
    fn tokens_are_checked() {
        assert_eq!(
            check_token("short"),
            Err(AdminError::TokenTooShort { len: 5 })
        );
        assert_eq!(
            check_token("0123456789abcdef\n"),
            Err(AdminError::TokenWhitespace)
        );
        assert_eq!(
            check_token("0123456789 abcdef"),
            Err(AdminError::TokenWhitespace)
        );
        assert_eq!(
            check_token("0123456789abcdef\u{7f}"),
            Err(AdminError::TokenNotVisibleAscii)
        );
        assert_eq!(
            check_token("0123456789abcdéf"),
            Err(AdminError::TokenNotVisibleAscii)
        );
        assert_eq!(check_token("0123456789abcdef"), Ok(()));
        // The message names the length, never the token.
        let msg = check_token("hunter2").unwrap_err().to_string();
        assert!(msg.contains("7 bytes") && !msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn bearer_values_are_parsed() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer   abc  "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"BEARER abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bearerabc"), None);
        assert_eq!(bearer(b"Basic abc"), None);
    }

    #[test]
    fn fingerprints_are_short_stable_and_distinct() {
        let a = token_fingerprint("0123456789abcdef");
        assert_eq!(a, token_fingerprint("0123456789abcdef"));
        assert_ne!(a, token_fingerprint("0123456789abcdeg"));
        assert_eq!(a.len(), 8);
    }
}
