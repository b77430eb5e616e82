//! `GET /api/events` (recent events from the SQLite store) and `GET /api/feed` (events as
//! they are recorded, over Server-Sent Events).

use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Admin, ApiError};
use crate::engine::EntityKey;
use crate::event::Event;
use crate::pipeline::{FeedItem, MAX_FEED_SUBSCRIBERS};
use crate::Action;

/// The most events one `GET /api/events` returns.
pub const MAX_EVENTS: usize = 1000;

/// Events `GET /api/events` returns without a `limit`.
pub const DEFAULT_EVENTS: usize = 100;

/// The most recent events `GET /api/entities/{entity}` lists.
pub const ENTITY_EVENTS: usize = 50;

/// How often the feed sends a keep-alive comment.
pub const FEED_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The query of `GET /api/events`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    name: Option<String>,
    entity: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
}

/// The query of `GET /api/feed`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FeedQuery {
    name: Option<String>,
    entity: Option<String>,
    action: Option<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// The entity an event filter names: its client IP or its user (in stored form).
#[derive(Clone, Debug)]
enum Who {
    Ip(IpAddr),
    User(String),
}

/// What the feed passes on.
#[derive(Clone, Debug, Default)]
struct Filter {
    name: Option<String>,
    who: Option<Who>,
    action: Option<Action>,
}

impl Filter {
    fn matches(&self, e: &Event) -> bool {
        if self.name.as_deref().is_some_and(|n| e.name.as_str() != n) {
            return false;
        }
        if let Some(a) = self.action {
            if e.verdict.as_ref().map_or(Action::Allow, |v| v.action) != a {
                return false;
            }
        }
        match &self.who {
            None => true,
            Some(Who::Ip(ip)) => e.subject.ip.map(crate::identify::normalize) == Some(*ip),
            Some(Who::User(u)) => e.subject.user.as_deref() == Some(u.as_str()),
        }
    }
}

fn parse_action(text: &str) -> Result<Action, ApiError> {
    [
        Action::Allow,
        Action::StepUp,
        Action::Throttle,
        Action::Block,
    ]
    .into_iter()
    .find(|a| a.as_str() == text)
    .ok_or_else(|| bad("unknown action: expected allow, step_up, throttle or block"))
}

/// An RFC 3339 time (`2026-01-02T03:04:05Z`) or milliseconds since the Unix epoch.
fn parse_time(field: &str, text: &str) -> Result<jiff::Timestamp, ApiError> {
    let text = text.trim();
    let parsed = match text.parse::<i64>() {
        Ok(ms) => jiff::Timestamp::from_millisecond(ms).ok(),
        Err(_) => text.parse::<jiff::Timestamp>().ok(),
    };
    parsed.ok_or_else(|| {
        bad(format!(
            "{field}: expected an RFC 3339 time such as 2026-01-02T03:04:05Z, or milliseconds \
             since the Unix epoch"
        ))
    })
}

impl Admin {
    fn filter(
        &self,
        name: Option<String>,
        entity: Option<String>,
        action: Option<String>,
    ) -> Result<Filter, ApiError> {
        let who =
            match entity.as_deref() {
                None => None,
                Some(text) => Some(match EntityKey::parse(text) {
                    Some(EntityKey::Ip(ip)) => Who::Ip(crate::identify::normalize(ip)),
                    Some(EntityKey::User(u)) if !u.trim().is_empty() => {
                        match self.siem.normalize(&EntityKey::User(u)) {
                            EntityKey::User(stored) => Who::User(stored.to_string()),
                            _ => return Err(bad("entity: expected ip:… or user:…")),
                        }
                    }
                    _ => return Err(bad(
                        "entity: expected ip:203.0.113.7 or user:alice (events are filtered by \
                         client address or user)",
                    )),
                }),
            };
        Ok(Filter {
            name: name.filter(|n| !n.is_empty()),
            who,
            action: action.as_deref().map(parse_action).transpose()?,
        })
    }
}

/// `{"events":[…]}` around events as stored (each the JSON a sink wrote).
fn events_body(rows: &[String]) -> String {
    let mut out = String::with_capacity(16 + rows.iter().map(|r| r.len() + 1).sum::<usize>());
    out.push_str("{\"events\":[");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r);
    }
    out.push_str("]}");
    out
}

fn json_response(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[cfg(feature = "sqlite")]
fn no_store() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "no event store configured; build the router with \
         `siem.admin(token).events(\"events.db\").router()` to query a SqliteSink's file",
    )
}

#[cfg(not(feature = "sqlite"))]
fn no_store() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "no event store configured; querying events needs the `sqlite` feature and \
         `siem.admin(token).events(\"events.db\")`",
    )
}

#[cfg(feature = "sqlite")]
impl Admin {
    /// Stored events matching `filter` and the time range, newest first, on a blocking thread.
    /// `None` without a store.
    async fn stored_events(
        &self,
        filter: &Filter,
        since: Option<jiff::Timestamp>,
        until: Option<jiff::Timestamp>,
        limit: usize,
    ) -> Option<Result<Vec<String>, ApiError>> {
        let store = self.events.clone()?;
        let mut q = crate::sink::sqlite::EventQuery::new().limit(limit);
        if let Some(n) = &filter.name {
            q = q.name(n.clone());
        }
        match &filter.who {
            Some(Who::Ip(ip)) => q = q.ip(*ip),
            Some(Who::User(u)) => q = q.user(u.clone()),
            None => {}
        }
        if let Some(a) = filter.action {
            q = q.action(a);
        }
        if let Some(t) = since {
            q = q.since(t);
        }
        if let Some(t) = until {
            q = q.until(t);
        }
        let run = tokio::task::spawn_blocking(move || {
            store.get()?.events_json(&q).map_err(|e| e.to_string())
        });
        Some(match run.await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("event store: {e}"),
            )),
            Err(_) => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "event store query failed",
            )),
        })
    }
}

#[cfg(not(feature = "sqlite"))]
impl Admin {
    async fn stored_events(
        &self,
        _filter: &Filter,
        _since: Option<jiff::Timestamp>,
        _until: Option<jiff::Timestamp>,
        _limit: usize,
    ) -> Option<Result<Vec<String>, ApiError>> {
        None
    }
}

pub(super) async fn events(
    State(admin): State<Admin>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| {
        bad(format!(
            "expected name, entity, action, since, until and limit parameters: {e}"
        ))
    })?;
    let filter = admin.filter(q.name, q.entity, q.action)?;
    let since = q
        .since
        .as_deref()
        .map(|t| parse_time("since", t))
        .transpose()?;
    let until = q
        .until
        .as_deref()
        .map(|t| parse_time("until", t))
        .transpose()?;
    let limit = match q.limit.as_deref() {
        None => DEFAULT_EVENTS,
        Some(t) => match t.trim().parse::<usize>() {
            Ok(n @ 1..=MAX_EVENTS) => n,
            _ => return Err(bad(format!("limit: expected 1 to {MAX_EVENTS}"))),
        },
    };
    match admin.stored_events(&filter, since, until, limit).await {
        None => Err(no_store()),
        Some(rows) => Ok(json_response(events_body(&rows?))),
    }
}

/// An entity's answer with its recent stored events as `events`, when there is a store and
/// the entity is an address or a user.
pub(super) async fn with_events(
    admin: &Admin,
    key: &EntityKey,
    answer: impl serde::Serialize,
) -> Response {
    let who = match key {
        EntityKey::Ip(ip) => Some(Who::Ip(crate::identify::normalize(*ip))),
        EntityKey::User(_) => match admin.siem.normalize(key) {
            EntityKey::User(u) => Some(Who::User(u.to_string())),
            _ => None,
        },
        _ => None,
    };
    let Ok(mut body) = serde_json::to_string(&answer) else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not encode the answer",
        )
        .into_response();
    };
    if let Some(who) = who {
        let filter = Filter {
            who: Some(who),
            ..Filter::default()
        };
        if let Some(Ok(rows)) = admin
            .stored_events(&filter, None, None, ENTITY_EVENTS)
            .await
        {
            if body.ends_with('}') {
                body.pop();
                if !body.ends_with('{') {
                    body.push(',');
                }
                body.push_str("\"events\":");
                body.push_str(&events_body(&rows)["{\"events\":".len()..]);
            }
        }
    }
    json_response(body)
}

pub(super) async fn feed(
    State(admin): State<Admin>,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) =
        query.map_err(|e| bad(format!("expected name, entity and action parameters: {e}")))?;
    let filter = admin.filter(q.name, q.entity, q.action)?;
    if !admin.siem.records_events() {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "no sinks configured: the feed carries the events the sinks receive, and nothing \
             is recorded",
        ));
    }
    let Some(sub) = admin.siem.subscribe() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("too many feed subscribers (at most {MAX_FEED_SUBSCRIBERS}); try again later"),
        ));
    };
    let stream = futures_util::stream::unfold((sub, filter), |(mut sub, filter)| async move {
        loop {
            match sub.recv().await? {
                FeedItem::Event(e) => {
                    if filter.matches(&e) {
                        let mut json = Vec::with_capacity(512);
                        crate::event::json::write_event(&mut json, &e);
                        let text = String::from_utf8_lossy(&json).into_owned();
                        let item = SseEvent::default().event("siem").data(text);
                        return Some((Ok::<_, Infallible>(item), (sub, filter)));
                    }
                }
                FeedItem::Lagged(n) => {
                    let item = SseEvent::default()
                        .event("lagged")
                        .data(format!("{{\"skipped\":{n}}}"));
                    return Some((Ok(item), (sub, filter)));
                }
            }
        }
    });
    let mut res = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(FEED_KEEP_ALIVE))
        .into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}
