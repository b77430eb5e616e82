//! The Elastic Common Schema mapping (see the table in the module docs).
//!
//! A borrowed view of the event that serializes straight into the output: no intermediate
//! `serde_json::Value`, and no allocation beyond the output buffer.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use super::{outcome, Attrs, Headers, Joined, Outcome, ECS_VERSION, PRODUCT};
use crate::event::Event;

/// The ECS document for an event.
#[derive(Serialize)]
pub(super) struct Ecs<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Millis<'a>,
    event: EcsEvent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Name<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<Id<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<Original<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<Url<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<Http<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<Rule<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Labels>,
    tags: [&'static str; 1],
    observer: Observer,
    ecs: Version,
    #[serde(skip_serializing_if = "Option::is_none")]
    tower_siem: Option<Extra<'a>>,
}

#[derive(Serialize)]
struct EcsEvent<'a> {
    id: &'a uuid::Uuid,
    action: &'a str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'static [&'static str]>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind_type: Option<&'static [&'static str]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Joined<'a>>,
}

#[derive(Serialize)]
struct Source {
    ip: IpAddr,
}

#[derive(Serialize)]
struct Name<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Id<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct Original<'a> {
    original: &'a str,
}

#[derive(Serialize)]
struct Url<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<&'a str>,
}

#[derive(Serialize)]
struct Http<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<Request<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Response>,
}

#[derive(Serialize)]
struct Request<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<&'a str>,
}

#[derive(Serialize)]
struct Response {
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Body>,
}

#[derive(Serialize)]
struct Body {
    bytes: u64,
}

#[derive(Serialize)]
struct Rule<'a> {
    name: &'a [String],
}

#[derive(Serialize)]
struct Labels {
    siem_action: &'static str,
    siem_score: Score,
}

#[derive(Serialize)]
struct Observer {
    product: &'static str,
}

#[derive(Serialize)]
struct Version {
    version: &'static str,
}

#[derive(Serialize)]
struct Extra<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Headers<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attrs: Option<Attrs<'a>>,
}

/// RFC 3339 with exactly three fractional digits.
struct Millis<'a>(&'a jiff::Timestamp);

impl Serialize for Millis<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:.3}", self.0))
    }
}

/// Labels are keyword strings in ECS; a score prints with at most two decimals.
struct Score(f64);

impl Serialize for Score {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rounded = (self.0 * 100.0).round() / 100.0;
        write!(f, "{rounded}")
    }
}

pub(super) fn view(event: &Event) -> Ecs<'_> {
    let name = event.name.as_str();
    let (category, kind_type) = category_and_type(event);
    let verdict = event.verdict.as_ref();
    let reasons = verdict
        .map(|v| v.reasons.as_slice())
        .filter(|r| !r.is_empty());
    let http = event.http.as_ref();
    let s = &event.subject;

    let referrer = http.and_then(|h| {
        h.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("referer"))
            .map(|(_, v)| v.as_str())
    });
    let headers = http
        .map(|h| Headers::except_referer(&h.headers))
        .filter(|h| !h.is_empty());
    let extra = Extra {
        session: s.session.as_deref(),
        route: http.and_then(|h| h.route.as_deref()),
        headers,
        retry_after_secs: verdict.and_then(|v| v.retry_after_secs),
        attrs: Attrs::of(&event.attrs),
    };
    let has_extra = extra.session.is_some()
        || extra.route.is_some()
        || extra.headers.is_some()
        || extra.retry_after_secs.is_some()
        || extra.attrs.is_some();

    Ecs {
        timestamp: Millis(&event.time),
        event: EcsEvent {
            id: &event.id,
            action: name,
            kind: if name == "siem.alert" {
                "alert"
            } else {
                "event"
            },
            category,
            kind_type,
            outcome: match outcome(event) {
                Outcome::Success => Some("success"),
                Outcome::Failure => Some("failure"),
                Outcome::Unknown => None,
            },
            duration: http
                .and_then(|h| h.latency_us)
                .map(|us| us.saturating_mul(1000)),
            risk_score: verdict.map(|v| v.score),
            reason: reasons.map(Joined),
        },
        source: s.ip.map(|ip| Source { ip }),
        user: s.user.as_deref().map(|name| Name { name }),
        device: s.device.as_deref().map(|id| Id { id }),
        user_agent: event
            .user_agent
            .as_deref()
            .map(|original| Original { original }),
        url: http
            .filter(|h| !h.path.is_empty() || h.query.is_some())
            .map(|h| Url {
                path: Some(h.path.as_str()).filter(|p| !p.is_empty()),
                query: h.query.as_deref(),
            }),
        http: http
            .map(|h| Http {
                request: Some(Request {
                    method: Some(h.method.as_str()).filter(|m| !m.is_empty()),
                    id: h.request_id.as_deref(),
                    referrer,
                })
                .filter(|r| r.method.is_some() || r.id.is_some() || r.referrer.is_some()),
                response: Some(Response {
                    status_code: h.status,
                    body: h.bytes.map(|bytes| Body { bytes }),
                })
                .filter(|r| r.status_code.is_some() || r.body.is_some()),
            })
            .filter(|h| h.request.is_some() || h.response.is_some()),
        rule: reasons.map(|name| Rule { name }),
        labels: verdict.map(|v| Labels {
            siem_action: v.action.as_str(),
            siem_score: Score(v.score),
        }),
        tags: [PRODUCT],
        observer: Observer { product: PRODUCT },
        ecs: Version {
            version: ECS_VERSION,
        },
        tower_siem: has_extra.then_some(extra),
    }
}

type Categorization = (
    Option<&'static [&'static str]>,
    Option<&'static [&'static str]>,
);

/// ECS `event.category` and `event.type` for an event, using only allowed pairings.
fn category_and_type(event: &Event) -> Categorization {
    let (category, kind_type): (&'static [&'static str], &'static [&'static str]) =
        match event.name.as_str() {
            "http.request" if event.status().is_some_and(|s| s >= 400) => {
                (&["web"], &["access", "error"])
            }
            "http.request" => (&["web"], &["access"]),
            "auth.success" | "auth.failure" => (&["authentication"], &["start"]),
            "auth.logout" => (&["authentication", "session"], &["end"]),
            "mfa.success" | "mfa.failure" => (&["authentication"], &["info"]),
            "account.create" => (&["iam"], &["user", "creation"]),
            n if n.starts_with("account.") => (&["iam"], &["user", "change"]),
            "siem.alert" => (&["intrusion_detection"], &["info"]),
            _ => return (None, None),
        };
    (Some(category), Some(kind_type))
}
