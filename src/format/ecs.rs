//! The Elastic Common Schema mapping (see the table in the module docs).

use serde_json::{Map, Value};

use super::{attrs_object, outcome, put, score_value, Outcome, ECS_VERSION, PRODUCT};
use crate::event::Event;

pub(super) fn to_json(event: &Event) -> Value {
    let mut m = Map::new();
    m.insert(
        "@timestamp".into(),
        Value::String(format!("{:.3}", event.time)),
    );

    let name = event.name.as_str();
    put(&mut m, "event.id", event.id.to_string());
    put(&mut m, "event.action", name);
    let kind = if name == "siem.alert" {
        "alert"
    } else {
        "event"
    };
    put(&mut m, "event.kind", kind);
    let (category, types) = category_and_type(event);
    if !category.is_empty() {
        put(&mut m, "event.category", strings(category));
        put(&mut m, "event.type", strings(&types));
    }
    match outcome(event) {
        Outcome::Success => put(&mut m, "event.outcome", "success"),
        Outcome::Failure => put(&mut m, "event.outcome", "failure"),
        Outcome::Unknown => {}
    }

    if let Some(v) = &event.verdict {
        put(&mut m, "event.risk_score", score_value(v.score));
        put(&mut m, "labels.siem_action", v.action.as_str());
        put(&mut m, "labels.siem_score", format_score(v.score));
        if !v.reasons.is_empty() {
            put(&mut m, "rule.name", strings(&v.reasons));
            put(&mut m, "event.reason", v.reasons.join(","));
        }
        if let Some(secs) = v.retry_after_secs {
            put(&mut m, "tower_siem.retry_after_secs", secs);
        }
    }

    let s = &event.subject;
    if let Some(ip) = s.ip {
        put(&mut m, "source.ip", ip.to_string());
    }
    if let Some(user) = &s.user {
        put(&mut m, "user.name", user.as_str());
    }
    if let Some(session) = &s.session {
        put(&mut m, "tower_siem.session", session.as_str());
    }
    if let Some(device) = &s.device {
        put(&mut m, "device.id", device.as_str());
    }
    if let Some(ua) = &event.user_agent {
        put(&mut m, "user_agent.original", ua.as_str());
    }

    if let Some(h) = &event.http {
        if !h.method.is_empty() {
            put(&mut m, "http.request.method", h.method.as_str());
        }
        if let Some(id) = &h.request_id {
            put(&mut m, "http.request.id", id.as_str());
        }
        if !h.path.is_empty() {
            put(&mut m, "url.path", h.path.as_str());
        }
        if let Some(q) = &h.query {
            put(&mut m, "url.query", q.as_str());
        }
        if let Some(status) = h.status {
            put(&mut m, "http.response.status_code", status);
        }
        if let Some(bytes) = h.bytes {
            put(&mut m, "http.response.body.bytes", bytes);
        }
        if let Some(us) = h.latency_us {
            put(&mut m, "event.duration", us.saturating_mul(1000));
        }
        if let Some(route) = &h.route {
            put(&mut m, "tower_siem.route", route.as_str());
        }
        let mut headers = Map::new();
        for (k, v) in &h.headers {
            if k.eq_ignore_ascii_case("referer") {
                put(&mut m, "http.request.referrer", v.as_str());
            } else {
                headers.insert(k.clone(), Value::String(v.clone()));
            }
        }
        if !headers.is_empty() {
            put(&mut m, "tower_siem.headers", Value::Object(headers));
        }
    }

    if !event.attrs.is_empty() {
        put(
            &mut m,
            "tower_siem.attrs",
            Value::Object(attrs_object(&event.attrs)),
        );
    }
    m.insert("tags".into(), strings(&[PRODUCT]));
    put(&mut m, "observer.product", PRODUCT);
    put(&mut m, "ecs.version", ECS_VERSION);
    Value::Object(m)
}

/// ECS `event.category` and `event.type` for an event, using only allowed pairings.
fn category_and_type(event: &Event) -> (&'static [&'static str], Vec<&'static str>) {
    match event.name.as_str() {
        "http.request" => {
            let mut types = vec!["access"];
            if event.status().is_some_and(|s| s >= 400) {
                types.push("error");
            }
            (&["web"], types)
        }
        "auth.success" | "auth.failure" => (&["authentication"], vec!["start"]),
        "auth.logout" => (&["authentication", "session"], vec!["end"]),
        "mfa.success" | "mfa.failure" => (&["authentication"], vec!["info"]),
        "account.create" => (&["iam"], vec!["user", "creation"]),
        n if n.starts_with("account.") => (&["iam"], vec!["user", "change"]),
        "siem.alert" => (&["intrusion_detection"], vec!["info"]),
        _ => (&[], Vec::new()),
    }
}

fn strings<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|s| Value::String(s.as_ref().to_owned()))
            .collect(),
    )
}

/// Labels are keyword strings in ECS; a score prints with at most two decimals.
fn format_score(score: f64) -> String {
    let rounded = (score * 100.0).round() / 100.0;
    format!("{rounded}")
}
