//! Security events: what happened, to whom, and when.
//!
//! An [`Event`] is one fact the SIEM reasons about: an HTTP request the layer saw, or an
//! action the application reported (`auth.failure`, `account.password_change`, …). Rules read
//! events; sinks store them. Everything an event carries has been through redaction already:
//! no `Authorization`, cookie or configured query secret ever lands in one.

pub(crate) mod id;
pub(crate) mod json;
mod redact;

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use redact::{escape_control, is_secret_name, Redactor};

use crate::engine::Verdict;

/// The dotted name of an event, such as `auth.failure`.
///
/// The well-known names are associated constants; any other name the application wants is
/// accepted too (`EventName::new("billing.card_added")`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventName(Cow<'static, str>);

impl EventName {
    /// One request seen by the layer, emitted after its response.
    pub const HTTP_REQUEST: EventName = EventName::from_static("http.request");
    /// A successful login.
    pub const AUTH_SUCCESS: EventName = EventName::from_static("auth.success");
    /// A failed login.
    pub const AUTH_FAILURE: EventName = EventName::from_static("auth.failure");
    /// A logout.
    pub const AUTH_LOGOUT: EventName = EventName::from_static("auth.logout");
    /// A signup.
    pub const ACCOUNT_CREATE: EventName = EventName::from_static("account.create");
    /// A profile change.
    pub const ACCOUNT_UPDATE: EventName = EventName::from_static("account.update");
    /// A password change by a logged-in user.
    pub const ACCOUNT_PASSWORD_CHANGE: EventName =
        EventName::from_static("account.password_change");
    /// A password reset request.
    pub const ACCOUNT_PASSWORD_RESET: EventName = EventName::from_static("account.password_reset");
    /// A passed second factor.
    pub const MFA_SUCCESS: EventName = EventName::from_static("mfa.success");
    /// A failed second factor.
    pub const MFA_FAILURE: EventName = EventName::from_static("mfa.failure");
    /// An entity's action rose (allow → step-up, → throttle, → block): emitted by the engine,
    /// with the entity as subject and `action`, `previous_action`, `score`, `rules` attributes.
    pub const SIEM_ALERT: EventName = EventName::from_static("siem.alert");

    /// A name known at compile time.
    pub const fn from_static(name: &'static str) -> Self {
        EventName(Cow::Borrowed(name))
    }

    /// Any name.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        EventName(name.into())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&'static str> for EventName {
    fn from(s: &'static str) -> Self {
        EventName::from_static(s)
    }
}

impl From<String> for EventName {
    fn from(s: String) -> Self {
        EventName(Cow::Owned(s))
    }
}

impl PartialEq<str> for EventName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EventName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Who an event or a verdict is about: any of client IP, user, session and device.
///
/// Session and device identifiers are secrets in their own right; the layer stores them as keyed
/// hashes (see [`Redactor`]) before they reach a `Subject`.
#[derive(Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subject {
    /// Client IP address (already resolved through trusted proxies and normalised).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Application user name or id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Session key (a keyed hash of the session id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Device key (a keyed hash of a device cookie or header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl Clone for Subject {
    fn clone(&self) -> Self {
        Subject {
            ip: self.ip,
            user: self.user.clone(),
            session: self.session.clone(),
            device: self.device.clone(),
        }
    }

    /// Keeps the buffers of `self`'s strings (the layer refills pooled events this way).
    fn clone_from(&mut self, source: &Self) {
        let Subject {
            ip,
            user,
            session,
            device,
        } = self;
        *ip = source.ip;
        user.clone_from(&source.user);
        session.clone_from(&source.session);
        device.clone_from(&source.device);
    }
}

impl Subject {
    /// A subject known by its IP address.
    pub fn ip(ip: IpAddr) -> Self {
        Subject {
            ip: Some(ip),
            ..Subject::default()
        }
    }

    /// A subject known by its user name.
    pub fn user(user: impl Into<String>) -> Self {
        Subject {
            user: Some(user.into()),
            ..Subject::default()
        }
    }

    /// Sets the IP address.
    pub fn with_ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Sets the user.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the session key.
    pub fn with_session(mut self, session: impl Into<String>) -> Self {
        self.session = Some(session.into());
        self
    }

    /// Sets the device key.
    pub fn with_device(mut self, device: impl Into<String>) -> Self {
        self.device = Some(device.into());
        self
    }

    /// Whether no identity is known at all.
    pub fn is_empty(&self) -> bool {
        self.ip.is_none() && self.user.is_none() && self.session.is_none() && self.device.is_none()
    }
}

/// What the layer records of an HTTP exchange.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpInfo {
    /// Request method.
    pub method: String,
    /// Matched route template (axum `MatchedPath`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Request path, as sent (percent-encoded).
    pub path: String,
    /// Query string with configured secret keys' values replaced by `[REDACTED]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Response status; absent for events fired before the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Time from the request reaching the layer to the response head, in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// Response body size when known (from `Content-Length` or the body's exact size hint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Request id (`X-Request-Id`, or one the layer generated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Allow-listed request headers, lower-case names.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub headers: Vec<(String, String)>,
}

/// One security event.
///
/// Build one with [`Event::new`] and the chained setters, then hand it to
/// [`Siem::fire`](crate::Siem::fire):
///
/// ```
/// use tower_siem::Event;
/// let e = Event::new("auth.failure").user("alice").attr("reason", "bad_password");
/// assert_eq!(e.name, "auth.failure");
/// assert_eq!(e.subject.user.as_deref(), Some("alice"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique, time-ordered id (UUID v7); sinks use it to make inserts idempotent.
    pub id: uuid::Uuid,
    /// Dotted name.
    pub name: EventName,
    /// When it happened (UTC). Rules run on this time, not on the wall clock.
    pub time: jiff::Timestamp,
    /// Who it is about.
    #[serde(flatten)]
    pub subject: Subject,
    /// Client user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The HTTP exchange, for events the layer saw or that a handler fired inside a request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpInfo>,
    /// The verdict in force for this event's subject once the event was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Application-defined attributes (free text, escaped on output).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attrs: Vec<(String, String)>,
    /// Whether `time` was set explicitly (replays); otherwise the SIEM stamps its own clock.
    #[serde(skip)]
    explicit_time: bool,
}

impl Event {
    /// A new event with the given name, a fresh id and the current time.
    pub fn new(name: impl Into<EventName>) -> Self {
        let mut e = Event::new_at(name, jiff::Timestamp::now());
        e.explicit_time = false;
        e
    }

    /// A new event at a given time (one clock read for the layer's per-request event).
    pub fn new_at(name: impl Into<EventName>, time: jiff::Timestamp) -> Self {
        Event {
            id: id::new_v7(time.as_millisecond()),
            name: name.into(),
            time,
            subject: Subject::default(),
            user_agent: None,
            http: None,
            verdict: None,
            attrs: Vec::new(),
            explicit_time: true,
        }
    }

    /// Sets the user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.subject.user = Some(user.into());
        self
    }

    /// Sets the client IP.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.subject.ip = Some(ip);
        self
    }

    /// Sets the session key (already hashed; see [`Redactor::hash_id`]).
    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.subject.session = Some(session.into());
        self
    }

    /// Sets the device key.
    pub fn device(mut self, device: impl Into<String>) -> Self {
        self.subject.device = Some(device.into());
        self
    }

    /// Sets the whole subject.
    pub fn subject(mut self, subject: Subject) -> Self {
        self.subject = subject;
        self
    }

    /// Sets the user agent.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }

    /// Sets the event time (for replays and tests).
    pub fn at(mut self, time: jiff::Timestamp) -> Self {
        self.time = time;
        self.explicit_time = true;
        self
    }

    /// Whether the time was set with [`Event::at`].
    pub fn has_explicit_time(&self) -> bool {
        self.explicit_time
    }

    /// Adds an attribute.
    pub fn attr(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attrs.push((key.into(), value.into()));
        self
    }

    /// Event time as milliseconds since the Unix epoch.
    pub fn millis(&self) -> i64 {
        self.time.as_millisecond()
    }

    /// The HTTP status, if this event carries one.
    pub fn status(&self) -> Option<u16> {
        self.http.as_ref().and_then(|h| h.status)
    }

    /// Looks up an attribute.
    pub fn get_attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An empty event for [`reuse_as`](Self::reuse_as) to turn into a real one (no clock
    /// read: `reuse_as` sets name, time and id).
    pub(crate) fn unfilled() -> Self {
        Event::new_at(EventName::from_static(""), jiff::Timestamp::UNIX_EPOCH)
    }

    /// Makes a spent event a new one named `name` at `time`, with a fresh id and no attributes,
    /// keeping its heap buffers for reuse. Returns the new id and the fields the caller must
    /// set: every other field is reset here, so nothing of the earlier event survives once
    /// those four are set.
    pub(crate) fn reuse_as(
        &mut self,
        name: EventName,
        time: jiff::Timestamp,
    ) -> (
        uuid::Uuid,
        &mut Subject,
        &mut Option<String>,
        &mut Option<HttpInfo>,
        &mut Option<Verdict>,
    ) {
        // Every field named, so a new one cannot be forgotten here.
        let Event {
            id,
            name: n,
            time: t,
            subject,
            user_agent,
            http,
            verdict,
            attrs,
            explicit_time,
        } = self;
        *id = self::id::new_v7(time.as_millisecond());
        *n = name;
        *t = time;
        attrs.clear();
        *explicit_time = true;
        (*id, subject, user_agent, http, verdict)
    }

    /// Whether the event is small enough to keep in the pipeline's pool of spent events (see
    /// [`reuse_as`](Self::reuse_as)): the pool must not pin large buffers.
    pub(crate) fn reusable(&self) -> bool {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        let http = self.http.as_ref().map_or(0, |h| {
            h.method.capacity()
                + opt(&h.route)
                + h.path.capacity()
                + opt(&h.query)
                + opt(&h.request_id)
                + h.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()
        });
        let s = &self.subject;
        let total = http
            + opt(&self.user_agent)
            + opt(&s.user)
            + opt(&s.session)
            + opt(&s.device)
            + self
                .attrs
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        total <= REUSABLE_BYTES
    }
}

/// The most heap a pooled event may keep (see [`Event::reusable`]).
const REUSABLE_BYTES: usize = 2048;

/// Sets `slot` to `value`, reusing the `String` already there.
#[inline]
pub(crate) fn assign(slot: &mut String, value: &str) {
    slot.clear();
    slot.push_str(value);
}

/// Sets `slot` to `value`, reusing the `String` already there.
#[inline]
pub(crate) fn assign_opt(slot: &mut Option<String>, value: Option<&str>) {
    match (slot.as_mut(), value) {
        (Some(s), Some(v)) => assign(s, v),
        (_, v) => *slot = v.map(str::to_owned),
    }
}

/// A shared, immutable event as it travels to sinks.
pub type SharedEvent = Arc<Event>;
