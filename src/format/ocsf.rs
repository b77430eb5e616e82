//! The OCSF mapping (see the tables in the module docs).
//!
//! A borrowed view of the event that serializes straight into the output: no intermediate
//! `serde_json::Value`, and no allocation beyond the output buffer.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use super::{outcome, Attrs, Grouped, NameValueList, Outcome, OCSF_VERSION, PRODUCT};
use crate::engine::{Action, Verdict};
use crate::event::Event;

/// An OCSF event class with its category.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Class {
    uid: u32,
    name: &'static str,
    category_uid: u32,
    category_name: &'static str,
}

const BASE_EVENT: Class = Class {
    uid: 0,
    name: "Base Event",
    category_uid: 0,
    category_name: "Uncategorized",
};
const DETECTION_FINDING: Class = Class {
    uid: 2004,
    name: "Detection Finding",
    category_uid: 2,
    category_name: "Findings",
};
const ACCOUNT_CHANGE: Class = Class {
    uid: 3001,
    name: "Account Change",
    category_uid: 3,
    category_name: "Identity & Access Management",
};
const AUTHENTICATION: Class = Class {
    uid: 3002,
    name: "Authentication",
    category_uid: 3,
    category_name: "Identity & Access Management",
};
const HTTP_ACTIVITY: Class = Class {
    uid: 4002,
    name: "HTTP Activity",
    category_uid: 4,
    category_name: "Network Activity",
};

const OTHER: (u32, &str) = (99, "Other");

/// The class and activity (`activity_id`, `activity_name`) for an event.
fn classify(event: &Event) -> (Class, (u32, &str)) {
    match event.name.as_str() {
        "http.request" => (HTTP_ACTIVITY, http_activity(event)),
        "auth.success" | "auth.failure" | "mfa.success" | "mfa.failure" => {
            (AUTHENTICATION, (1, "Logon"))
        }
        "auth.logout" => (AUTHENTICATION, (2, "Logoff")),
        "account.create" => (ACCOUNT_CHANGE, (1, "Create")),
        "account.password_change" => (ACCOUNT_CHANGE, (3, "Password Change")),
        "account.password_reset" => (ACCOUNT_CHANGE, (4, "Password Reset")),
        n if n.starts_with("account.") => (ACCOUNT_CHANGE, OTHER),
        "siem.alert" => (DETECTION_FINDING, (1, "Create")),
        _ => (BASE_EVENT, OTHER),
    }
}

fn http_activity(event: &Event) -> (u32, &str) {
    let method = event.http.as_ref().map_or("", |h| h.method.as_str());
    match method {
        "CONNECT" => (1, "Connect"),
        "DELETE" => (2, "Delete"),
        "GET" => (3, "Get"),
        "HEAD" => (4, "Head"),
        "OPTIONS" => (5, "Options"),
        "POST" => (6, "Post"),
        "PUT" => (7, "Put"),
        "TRACE" => (8, "Trace"),
        // OCSF 1.3.0 has no Patch activity (later versions add 9); `activity_name` carries it.
        "PATCH" => (99, "Patch"),
        "" => (0, "Unknown"),
        // For Other, OCSF wants the source's own name for the activity: the method token.
        other => (99, other),
    }
}

/// `severity_id` and its caption.
fn severity(event: &Event, class: Class, outcome: Outcome) -> (u32, &'static str) {
    // A failed logon is worth a look; a 404 on its own is not.
    let base = if outcome == Outcome::Failure && class == AUTHENTICATION {
        (2, "Low")
    } else {
        (1, "Informational")
    };
    match event.verdict.as_ref().map(|v| v.action) {
        None | Some(Action::Allow) => base,
        Some(Action::StepUp | Action::Throttle) => (3, "Medium"),
        Some(Action::Block) => (4, "High"),
    }
}

/// Security control profile: (`action_id`, `action`), (`disposition_id`, `disposition`).
fn control(action: Action) -> ((u32, &'static str), (u32, &'static str)) {
    match action {
        Action::Allow => ((1, "Allowed"), (1, "Allowed")),
        Action::StepUp => ((1, "Allowed"), (23, "Challenge")),
        // A 429 refuses the request; "Delayed" in OCSF means an operation awaiting a restart.
        Action::Throttle => ((2, "Denied"), (2, "Blocked")),
        Action::Block => ((2, "Denied"), (2, "Blocked")),
    }
}

/// The OCSF event for an event.
#[derive(Serialize)]
pub(super) struct Ocsf<'a> {
    time: i64,
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u32,
    activity_name: &'a str,
    type_uid: u64,
    type_name: TypeName<'a>,
    severity_id: u32,
    severity: &'static str,
    status_id: u32,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    action_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disposition_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disposition: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
    metadata: Metadata<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_endpoint: Option<Endpoint<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<Actor<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Name<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_mfa: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_request: Option<HttpRequest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_response: Option<HttpResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finding_info: Option<FindingInfo<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_score: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unmapped: Option<Unmapped<'a>>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    version: &'static str,
    uid: &'a uuid::Uuid,
    event_code: &'a str,
    product: Product,
    #[serde(skip_serializing_if = "Option::is_none")]
    profiles: Option<[&'static str; 1]>,
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Endpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
}

#[derive(Serialize)]
struct Actor<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Name<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<Uid<'a>>,
}

#[derive(Serialize)]
struct Name<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Uid<'a> {
    uid: &'a str,
}

#[derive(Serialize)]
struct HttpRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    http_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<Url<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_headers: Option<NameValueList<'a>>,
}

#[derive(Serialize)]
struct Url<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string: Option<&'a str>,
}

#[derive(Serialize)]
struct HttpResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency: Option<u64>,
}

#[derive(Serialize)]
struct FindingInfo<'a> {
    uid: &'a uuid::Uuid,
    title: Title<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    types: Option<&'a [String]>,
}

#[derive(Serialize)]
struct Unmapped<'a> {
    tower_siem: Extra<'a>,
}

#[derive(Serialize)]
struct Extra<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasons: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attrs: Option<Attrs<'a>>,
}

/// `"<class name>: <activity name>"`.
struct TypeName<'a>(&'static str, &'a str);

impl Serialize for TypeName<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}: {}", self.0, self.1))
    }
}

/// A finding's title: the rules behind it, or a generic one.
struct Title<'a>(&'a [String]);

impl Serialize for Title<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Title<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            write!(f, "{PRODUCT} alert")
        } else {
            write!(f, "{PRODUCT}: ")?;
            for (i, r) in self.0.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(r)?;
            }
            Ok(())
        }
    }
}

pub(super) fn view(event: &Event) -> Ocsf<'_> {
    let (class, (activity_id, activity_name)) = classify(event);
    let outcome = outcome(event);
    let (severity_id, severity) = severity(event, class, outcome);
    let (status_id, status) = match outcome {
        Outcome::Success => (1, "Success"),
        Outcome::Failure => (2, "Failure"),
        Outcome::Unknown => (0, "Unknown"),
    };
    let verdict: Option<&Verdict> = event.verdict.as_ref();
    let control = verdict.map(|v| control(v.action));
    let reasons = verdict
        .map(|v| v.reasons.as_slice())
        .filter(|r| !r.is_empty());
    let s = &event.subject;
    let http = event.http.as_ref();
    let latency_ms = http.and_then(|h| h.latency_us).map(|us| us / 1000);
    let user = s.user.as_deref().map(|name| Name { name });
    let account_class = class == AUTHENTICATION || class == ACCOUNT_CHANGE;

    let referrer = http.and_then(|h| {
        h.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("referer"))
            .map(|(_, v)| v.as_str())
    });
    let request = HttpRequest {
        http_method: http.map(|h| h.method.as_str()).filter(|m| !m.is_empty()),
        url: http
            .filter(|h| !h.path.is_empty() || h.query.is_some())
            .map(|h| Url {
                path: Some(h.path.as_str()).filter(|p| !p.is_empty()),
                query_string: h.query.as_deref(),
            }),
        user_agent: event.user_agent.as_deref(),
        uid: http.and_then(|h| h.request_id.as_deref()),
        referrer,
        http_headers: http
            .map(|h| Grouped::except_referer(&h.headers))
            .filter(|h| !h.is_empty())
            .map(Grouped::as_list),
    };
    let has_request = request.http_method.is_some()
        || request.url.is_some()
        || request.user_agent.is_some()
        || request.uid.is_some()
        || request.referrer.is_some()
        || request.http_headers.is_some();
    let response = http
        .map(|h| HttpResponse {
            code: h.status,
            length: h.bytes,
            latency: latency_ms,
        })
        .filter(|r| r.code.is_some() || r.length.is_some() || r.latency.is_some());

    let extra = Extra {
        route: http.and_then(|h| h.route.as_deref()),
        verdict: verdict.map(|v| v.action.as_str()),
        score: verdict.map(|v| v.score),
        reasons,
        retry_after_secs: verdict.and_then(|v| v.retry_after_secs),
        attrs: Attrs::of(&event.attrs),
    };
    let has_extra = extra.route.is_some() || extra.verdict.is_some() || extra.attrs.is_some();

    let finding = class == DETECTION_FINDING;
    Ocsf {
        time: event.millis(),
        class_uid: class.uid,
        class_name: class.name,
        category_uid: class.category_uid,
        category_name: class.category_name,
        activity_id,
        activity_name,
        type_uid: u64::from(class.uid) * 100 + u64::from(activity_id),
        type_name: TypeName(class.name, activity_name),
        severity_id,
        severity,
        status_id,
        status,
        action_id: control.map(|((id, _), _)| id),
        action: control.map(|((_, name), _)| name),
        disposition_id: control.map(|(_, (id, _))| id),
        disposition: control.map(|(_, (_, name))| name),
        duration: latency_ms,
        metadata: Metadata {
            version: OCSF_VERSION,
            uid: &event.id,
            event_code: event.name.as_str(),
            product: Product {
                name: PRODUCT,
                vendor_name: PRODUCT,
                version: env!("CARGO_PKG_VERSION"),
            },
            profiles: verdict.map(|_| ["security_control"]),
        },
        src_endpoint: (s.ip.is_some() || s.device.is_some()).then_some(Endpoint {
            ip: s.ip,
            uid: s.device.as_deref(),
        }),
        actor: (s.user.is_some() || s.session.is_some()).then(|| Actor {
            user: s.user.as_deref().map(|name| Name { name }),
            session: s.session.as_deref().map(|uid| Uid { uid }),
        }),
        user: user.filter(|_| account_class),
        is_mfa: (class == AUTHENTICATION).then(|| event.name.as_str().starts_with("mfa.")),
        http_request: has_request.then_some(request),
        http_response: response,
        finding_info: finding.then(|| FindingInfo {
            uid: &event.id,
            title: Title(reasons.unwrap_or_default()),
            types: reasons,
        }),
        risk_score: verdict
            .filter(|v| finding && v.score.is_finite())
            .map(|v| v.score.round().max(0.0) as u64),
        unmapped: has_extra.then_some(Unmapped { tower_siem: extra }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Joined;
    use super::*;

    #[test]
    fn joined_and_titles() {
        let r = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(Joined(&r).to_string(), "a,b");
        assert_eq!(Title(&r).to_string(), "tower-siem: a, b");
        assert_eq!(Title(&[]).to_string(), "tower-siem alert");
    }
}
