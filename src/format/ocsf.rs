//! The OCSF mapping (see the tables in the module docs).

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use super::{attrs_object, outcome, put, score_value, Outcome, OCSF_VERSION, PRODUCT};
use crate::engine::Action;
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

const OTHER: (u32, Cow<'static, str>) = (99, Cow::Borrowed("Other"));

/// The class and activity (`activity_id`, `activity_name`) for an event.
fn classify(event: &Event) -> (Class, (u32, Cow<'static, str>)) {
    let known = |id, name| (id, Cow::Borrowed(name));
    match event.name.as_str() {
        "http.request" => (HTTP_ACTIVITY, http_activity(event)),
        "auth.success" | "auth.failure" | "mfa.success" | "mfa.failure" => {
            (AUTHENTICATION, known(1, "Logon"))
        }
        "auth.logout" => (AUTHENTICATION, known(2, "Logoff")),
        "account.create" => (ACCOUNT_CHANGE, known(1, "Create")),
        "account.password_change" => (ACCOUNT_CHANGE, known(3, "Password Change")),
        "account.password_reset" => (ACCOUNT_CHANGE, known(4, "Password Reset")),
        n if n.starts_with("account.") => (ACCOUNT_CHANGE, OTHER),
        "siem.alert" => (DETECTION_FINDING, known(1, "Create")),
        _ => (BASE_EVENT, OTHER),
    }
}

fn http_activity(event: &Event) -> (u32, Cow<'static, str>) {
    let method = event.http.as_ref().map_or("", |h| h.method.as_str());
    let (id, name) = match method {
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
        other => return (99, Cow::Owned(other.to_owned())),
    };
    (id, Cow::Borrowed(name))
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

pub(super) fn to_json(event: &Event) -> Value {
    let (class, (activity_id, activity_name)) = classify(event);
    let outcome = outcome(event);
    let (severity_id, severity_name) = severity(event, class, outcome);
    let type_uid = u64::from(class.uid) * 100 + u64::from(activity_id);

    let mut m = Map::new();
    m.insert("time".into(), event.millis().into());
    m.insert("class_uid".into(), class.uid.into());
    m.insert("class_name".into(), class.name.into());
    m.insert("category_uid".into(), class.category_uid.into());
    m.insert("category_name".into(), class.category_name.into());
    m.insert("activity_id".into(), activity_id.into());
    m.insert("activity_name".into(), activity_name.as_ref().into());
    m.insert("type_uid".into(), type_uid.into());
    m.insert(
        "type_name".into(),
        format!("{}: {activity_name}", class.name).into(),
    );
    m.insert("severity_id".into(), severity_id.into());
    m.insert("severity".into(), severity_name.into());
    let (status_id, status) = match outcome {
        Outcome::Success => (1, "Success"),
        Outcome::Failure => (2, "Failure"),
        Outcome::Unknown => (0, "Unknown"),
    };
    m.insert("status_id".into(), status_id.into());
    m.insert("status".into(), status.into());
    let mut metadata = json!({
        "version": OCSF_VERSION,
        "uid": event.id.to_string(),
        "event_code": event.name.as_str(),
        "product": {
            "name": PRODUCT,
            "vendor_name": PRODUCT,
            "version": env!("CARGO_PKG_VERSION"),
        },
    });
    if event.verdict.is_some() {
        metadata["profiles"] = json!(["security_control"]);
    }
    m.insert("metadata".into(), metadata);

    let s = &event.subject;
    if let Some(ip) = s.ip {
        put(&mut m, "src_endpoint.ip", ip.to_string());
    }
    if let Some(device) = &s.device {
        put(&mut m, "src_endpoint.uid", device.as_str());
    }
    if let Some(user) = &s.user {
        put(&mut m, "actor.user.name", user.as_str());
        if class == AUTHENTICATION || class == ACCOUNT_CHANGE {
            put(&mut m, "user.name", user.as_str());
        }
    }
    if let Some(session) = &s.session {
        put(&mut m, "actor.session.uid", session.as_str());
    }
    if class == AUTHENTICATION {
        m.insert(
            "is_mfa".into(),
            event.name.as_str().starts_with("mfa.").into(),
        );
    }

    let mut unmapped = Map::new();
    if let Some(ua) = &event.user_agent {
        put(&mut m, "http_request.user_agent", ua.as_str());
    }
    if let Some(h) = &event.http {
        if !h.method.is_empty() {
            put(&mut m, "http_request.http_method", h.method.as_str());
        }
        if !h.path.is_empty() {
            put(&mut m, "http_request.url.path", h.path.as_str());
        }
        if let Some(q) = &h.query {
            put(&mut m, "http_request.url.query_string", q.as_str());
        }
        if let Some(id) = &h.request_id {
            put(&mut m, "http_request.uid", id.as_str());
        }
        let mut headers = Vec::new();
        for (k, v) in &h.headers {
            if k.eq_ignore_ascii_case("referer") {
                put(&mut m, "http_request.referrer", v.as_str());
            } else {
                headers.push(json!({"name": k, "value": v}));
            }
        }
        if !headers.is_empty() {
            put(&mut m, "http_request.http_headers", Value::Array(headers));
        }
        if let Some(status) = h.status {
            put(&mut m, "http_response.code", status);
        }
        if let Some(bytes) = h.bytes {
            put(&mut m, "http_response.length", bytes);
        }
        if let Some(us) = h.latency_us {
            let ms = us / 1000;
            m.insert("duration".into(), ms.into());
            put(&mut m, "http_response.latency", ms);
        }
        if let Some(route) = &h.route {
            unmapped.insert("route".into(), route.as_str().into());
        }
    }

    if let Some(v) = &event.verdict {
        let ((action_id, action), (disposition_id, disposition)) = control(v.action);
        m.insert("action_id".into(), action_id.into());
        m.insert("action".into(), action.into());
        m.insert("disposition_id".into(), disposition_id.into());
        m.insert("disposition".into(), disposition.into());
        unmapped.insert("verdict".into(), v.action.as_str().into());
        unmapped.insert("score".into(), score_value(v.score));
        if !v.reasons.is_empty() {
            unmapped.insert("reasons".into(), json!(v.reasons));
        }
        if let Some(secs) = v.retry_after_secs {
            unmapped.insert("retry_after_secs".into(), secs.into());
        }
    }
    if class == DETECTION_FINDING {
        let reasons = event.verdict.as_ref().map(|v| v.reasons.clone());
        let title = match &reasons {
            Some(r) if !r.is_empty() => format!("{PRODUCT}: {}", r.join(", ")),
            _ => format!("{PRODUCT} alert"),
        };
        let mut info = json!({"uid": event.id.to_string(), "title": title});
        if let Some(r) = reasons.filter(|r| !r.is_empty()) {
            info["types"] = json!(r);
        }
        m.insert("finding_info".into(), info);
        if let Some(v) = &event.verdict {
            if v.score.is_finite() {
                m.insert(
                    "risk_score".into(),
                    (v.score.round().max(0.0) as u64).into(),
                );
            }
        }
    }

    if !event.attrs.is_empty() {
        unmapped.insert("attrs".into(), Value::Object(attrs_object(&event.attrs)));
    }
    if !unmapped.is_empty() {
        put(&mut m, "unmapped.tower_siem", Value::Object(unmapped));
    }
    Value::Object(m)
}
