//! Output formats: the ECS and OCSF mappings of each kind of event, one line per event whatever
//! it holds, and nothing redacted upstream coming back out.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use common::{req, TestApp};
use serde_json::{json, Value};
use tower_siem::event::HttpInfo;
use tower_siem::format::{Format, ECS_VERSION, OCSF_VERSION};
use tower_siem::sink::JsonlSink;
use tower_siem::{Action, Event, Verdict};

const T: &str = "2026-11-27T12:00:00.250Z";
const T_MS: i64 = 1_795_780_800_250;

fn ip() -> IpAddr {
    "198.51.100.7".parse().unwrap()
}

fn http_request() -> Event {
    let mut e = Event::new("http.request")
        .at(T.parse().unwrap())
        .ip(ip())
        .user("alice")
        .session("0123456789abcdef0123456789abcdef")
        .device("fedcba9876543210fedcba9876543210")
        .user_agent("curl/8.5.0");
    e.http = Some(HttpInfo {
        method: "GET".into(),
        route: Some("/users/{id}".into()),
        path: "/users/42".into(),
        query: Some("token=[REDACTED]&page=2".into()),
        status: Some(404),
        latency_us: Some(2_750),
        bytes: Some(123),
        request_id: Some("req-0001".into()),
        headers: vec![
            ("referer".into(), "https://example.com/start".into()),
            ("content-type".into(), "text/html".into()),
        ],
    });
    e.verdict = Some(Verdict {
        action: Action::StepUp,
        score: 42.5,
        reasons: vec!["probe.404_burst".into(), "ua.scanner".into()],
        retry_after_secs: None,
    });
    e
}

fn auth_failure() -> Event {
    let mut e = Event::new("auth.failure")
        .at(T.parse().unwrap())
        .ip(ip())
        .user("alice")
        .attr("reason", "bad_password");
    e.verdict = Some(Verdict {
        action: Action::Block,
        score: 100.0,
        reasons: vec!["auth.bruteforce.ip".into()],
        retry_after_secs: Some(600),
    });
    e
}

fn mfa_success() -> Event {
    Event::new("mfa.success")
        .at(T.parse().unwrap())
        .ip(ip())
        .user("alice")
        .attr("method", "totp")
}

fn custom() -> Event {
    Event::new("billing.card_added")
        .at(T.parse().unwrap())
        .user("bob")
        .attr("last4", "4242")
        .attr("tag", "a")
        .attr("tag", "b")
}

#[test]
fn native_is_the_events_own_json() {
    for e in [http_request(), auth_failure(), mfa_success(), custom()] {
        assert_eq!(
            Format::Native.to_json(&e),
            serde_json::to_value(&e).unwrap()
        );
        let mut line = Vec::new();
        Format::Native.write_json(&e, &mut line);
        let back: Event = serde_json::from_slice(&line).unwrap();
        assert_eq!(back.id, e.id);
        assert_eq!(back.http, e.http);
        assert_eq!(back.verdict, e.verdict);
        assert_eq!(back.attrs, e.attrs);
    }
}

#[test]
fn ecs_http_request() {
    let e = http_request();
    let v = Format::Ecs.to_json(&e);
    assert_eq!(v["@timestamp"], T);
    assert_eq!(v["ecs"]["version"], ECS_VERSION);
    assert_eq!(
        v["event"],
        json!({
            "id": e.id.to_string(),
            "action": "http.request",
            "kind": "event",
            "category": ["web"],
            "type": ["access", "error"],
            "outcome": "failure",
            "duration": 2_750_000,
            "risk_score": 42.5,
            "reason": "probe.404_burst,ua.scanner",
        })
    );
    assert_eq!(v["source"], json!({"ip": "198.51.100.7"}));
    assert_eq!(v["user"], json!({"name": "alice"}));
    assert_eq!(
        v["device"],
        json!({"id": "fedcba9876543210fedcba9876543210"})
    );
    assert_eq!(v["user_agent"], json!({"original": "curl/8.5.0"}));
    assert_eq!(
        v["url"],
        json!({"path": "/users/42", "query": "token=[REDACTED]&page=2"})
    );
    assert_eq!(
        v["http"],
        json!({
            "request": {"method": "GET", "id": "req-0001", "referrer": "https://example.com/start"},
            "response": {"status_code": 404, "body": {"bytes": 123}},
        })
    );
    assert_eq!(
        v["rule"],
        json!({"name": ["probe.404_burst", "ua.scanner"]})
    );
    assert_eq!(
        v["labels"],
        json!({"siem_action": "step_up", "siem_score": "42.5"})
    );
    assert_eq!(v["tags"], json!(["tower-siem"]));
    assert_eq!(
        v["tower_siem"],
        json!({
            "session": "0123456789abcdef0123456789abcdef",
            "route": "/users/{id}",
            "headers": {"content-type": "text/html"},
        })
    );
}

#[test]
fn ecs_auth_failure_mfa_success_and_custom() {
    let v = Format::Ecs.to_json(&auth_failure());
    assert_eq!(v["event"]["category"], json!(["authentication"]));
    assert_eq!(v["event"]["type"], json!(["start"]));
    assert_eq!(v["event"]["outcome"], "failure");
    assert_eq!(v["event"]["action"], "auth.failure");
    assert_eq!(v["user"]["name"], "alice");
    assert_eq!(v["source"]["ip"], "198.51.100.7");
    assert_eq!(v["labels"]["siem_action"], "block");
    assert_eq!(v["rule"]["name"], json!(["auth.bruteforce.ip"]));
    assert_eq!(v["tower_siem"]["retry_after_secs"], 600);
    assert_eq!(v["tower_siem"]["attrs"], json!({"reason": "bad_password"}));
    assert!(v.get("http").is_none() && v.get("url").is_none(), "{v}");

    let v = Format::Ecs.to_json(&mfa_success());
    assert_eq!(v["event"]["category"], json!(["authentication"]));
    assert_eq!(v["event"]["type"], json!(["info"]));
    assert_eq!(v["event"]["outcome"], "success");
    assert!(v.get("labels").is_none() && v.get("rule").is_none(), "{v}");

    let e = custom();
    let v = Format::Ecs.to_json(&e);
    assert_eq!(v["event"]["action"], "billing.card_added");
    assert_eq!(v["event"]["kind"], "event");
    // No category for a name ECS has no bucket for, and no outcome the name does not state.
    assert!(v["event"].get("category").is_none(), "{v}");
    assert!(v["event"].get("outcome").is_none(), "{v}");
    assert_eq!(v["user"]["name"], "bob");
    assert_eq!(
        v["tower_siem"]["attrs"],
        json!({"last4": "4242", "tag": ["a", "b"]})
    );
}

#[test]
fn ocsf_http_request() {
    let e = http_request();
    let v = Format::Ocsf.to_json(&e);
    assert_eq!(v["class_uid"], 4002);
    assert_eq!(v["class_name"], "HTTP Activity");
    assert_eq!(v["category_uid"], 4);
    assert_eq!(v["activity_id"], 3);
    assert_eq!(v["activity_name"], "Get");
    assert_eq!(v["type_uid"], 400203);
    assert_eq!(v["type_name"], "HTTP Activity: Get");
    assert_eq!(v["time"], T_MS);
    assert_eq!(v["status_id"], 2, "a 404 is a failed request");
    assert_eq!(v["severity_id"], 3, "step-up is Medium");
    assert_eq!(v["action_id"], 1);
    assert_eq!(v["disposition_id"], 23);
    assert_eq!(v["disposition"], "Challenge");
    assert_eq!(v["duration"], 2);
    assert_eq!(v["metadata"]["version"], OCSF_VERSION);
    assert_eq!(v["metadata"]["uid"], e.id.to_string());
    assert_eq!(v["metadata"]["event_code"], "http.request");
    assert_eq!(v["metadata"]["product"]["name"], "tower-siem");
    assert_eq!(v["metadata"]["profiles"], json!(["security_control"]));
    assert_eq!(
        v["src_endpoint"],
        json!({"ip": "198.51.100.7", "uid": "fedcba9876543210fedcba9876543210"})
    );
    assert_eq!(
        v["actor"],
        json!({"user": {"name": "alice"}, "session": {"uid": "0123456789abcdef0123456789abcdef"}})
    );
    assert_eq!(
        v["http_request"],
        json!({
            "http_method": "GET",
            "url": {"path": "/users/42", "query_string": "token=[REDACTED]&page=2"},
            "user_agent": "curl/8.5.0",
            "uid": "req-0001",
            "referrer": "https://example.com/start",
            "http_headers": [{"name": "content-type", "value": "text/html"}],
        })
    );
    assert_eq!(
        v["http_response"],
        json!({"code": 404, "length": 123, "latency": 2})
    );
    assert_eq!(
        v["unmapped"]["tower_siem"],
        json!({
            "route": "/users/{id}",
            "verdict": "step_up",
            "score": 42.5,
            "reasons": ["probe.404_burst", "ua.scanner"],
        })
    );
    // Only the classes that carry one get a top-level `user`.
    assert!(v.get("user").is_none(), "{v}");
}

#[test]
fn ocsf_authentication_and_others() {
    let v = Format::Ocsf.to_json(&auth_failure());
    assert_eq!(v["class_uid"], 3002);
    assert_eq!(v["category_uid"], 3);
    assert_eq!(v["activity_id"], 1);
    assert_eq!(v["activity_name"], "Logon");
    assert_eq!(v["type_uid"], 300201);
    assert_eq!(v["status_id"], 2);
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["is_mfa"], false);
    assert_eq!(v["user"]["name"], "alice");
    assert_eq!(v["actor"]["user"]["name"], "alice");
    assert_eq!(v["src_endpoint"]["ip"], "198.51.100.7");
    assert_eq!(v["severity_id"], 4, "blocked is High");
    assert_eq!(
        (&v["action_id"], &v["disposition_id"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(v["unmapped"]["tower_siem"]["retry_after_secs"], 600);
    assert_eq!(
        v["unmapped"]["tower_siem"]["attrs"],
        json!({"reason": "bad_password"})
    );

    let v = Format::Ocsf.to_json(&mfa_success());
    assert_eq!(
        (&v["class_uid"], &v["activity_id"], &v["type_uid"]),
        (&json!(3002), &json!(1), &json!(300201))
    );
    assert_eq!(v["status_id"], 1);
    assert_eq!(v["is_mfa"], true);
    assert_eq!(v["severity_id"], 1);
    // No verdict on the event: no security-control attributes claimed.
    assert!(v.get("action_id").is_none() && v["metadata"].get("profiles").is_none());

    let logout = Format::Ocsf.to_json(&Event::new("auth.logout").user("alice"));
    assert_eq!(
        (&logout["activity_id"], &logout["type_uid"]),
        (&json!(2), &json!(300202))
    );
    assert_eq!(logout["activity_name"], "Logoff");

    let v = Format::Ocsf.to_json(&custom());
    assert_eq!(
        (&v["class_uid"], &v["category_uid"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(
        (&v["activity_id"], &v["type_uid"]),
        (&json!(99), &json!(99))
    );
    assert_eq!(v["status_id"], 0);
    assert_eq!(v["actor"]["user"]["name"], "bob");
    assert_eq!(
        v["unmapped"]["tower_siem"]["attrs"],
        json!({"last4": "4242", "tag": ["a", "b"]})
    );

    let mut alert = Event::new("siem.alert").ip(ip());
    alert.verdict = Some(Verdict {
        action: Action::Block,
        score: 87.6,
        reasons: vec!["sig.sqli".into()],
        retry_after_secs: Some(60),
    });
    let v = Format::Ocsf.to_json(&alert);
    assert_eq!(
        (&v["class_uid"], &v["type_uid"]),
        (&json!(2004), &json!(200401))
    );
    assert_eq!(v["finding_info"]["uid"], alert.id.to_string());
    assert_eq!(v["finding_info"]["title"], "tower-siem: sig.sqli");
    assert_eq!(v["finding_info"]["types"], json!(["sig.sqli"]));
    assert_eq!(v["risk_score"], 88);
    let ecs = Format::Ecs.to_json(&alert);
    assert_eq!(ecs["event"]["kind"], "alert");
    assert_eq!(ecs["event"]["category"], json!(["intrusion_detection"]));
}

#[test]
fn ocsf_type_uid_is_class_times_100_plus_activity() {
    let methods = [
        ("CONNECT", 1),
        ("DELETE", 2),
        ("GET", 3),
        ("HEAD", 4),
        ("OPTIONS", 5),
        ("POST", 6),
        ("PUT", 7),
        ("TRACE", 8),
        ("PATCH", 99),
        ("PROPFIND", 99),
    ];
    for (method, activity) in methods {
        let mut e = Event::new("http.request");
        e.http = Some(HttpInfo {
            method: method.into(),
            path: "/".into(),
            ..HttpInfo::default()
        });
        let v = Format::Ocsf.to_json(&e);
        assert_eq!(v["activity_id"], activity, "{method}");
        assert_eq!(v["type_uid"], 4002 * 100 + activity, "{method}");
        if activity == 99 {
            assert_eq!(v["activity_name"].as_str().unwrap().to_uppercase(), method);
        }
    }
    let names = [
        "http.request",
        "auth.success",
        "auth.failure",
        "auth.logout",
        "mfa.success",
        "mfa.failure",
        "account.create",
        "account.update",
        "account.password_change",
        "account.password_reset",
        "siem.alert",
        "anything.else",
    ];
    for name in names {
        let v = Format::Ocsf.to_json(&Event::new(name.to_owned()));
        let class = v["class_uid"].as_u64().unwrap();
        let activity = v["activity_id"].as_u64().unwrap();
        assert_eq!(
            v["type_uid"].as_u64().unwrap(),
            class * 100 + activity,
            "{name}"
        );
        assert!(v["severity_id"].is_u64() && v["time"].is_i64(), "{name}");
    }
}

#[test]
fn every_format_writes_one_valid_line_whatever_the_input() {
    let nasty = "a\nb\r\nc\u{2028}d\u{2029}e\u{85}f\u{0}g\u{1b}[31mh\"i\\j";
    let mut e = Event::new(nasty.to_owned())
        .user(nasty)
        .session(nasty)
        .user_agent(nasty)
        .attr(nasty, nasty);
    e.http = Some(HttpInfo {
        method: nasty.into(),
        route: Some(nasty.into()),
        path: nasty.into(),
        query: Some(nasty.into()),
        request_id: Some(nasty.into()),
        headers: vec![(nasty.into(), nasty.into())],
        ..HttpInfo::default()
    });
    e.verdict = Some(Verdict {
        action: Action::Allow,
        score: f64::NAN,
        reasons: vec![nasty.into()],
        retry_after_secs: None,
    });
    for &format in Format::ALL {
        let mut out = b"prefix".to_vec();
        format.write_json(&e, &mut out);
        assert!(out.starts_with(b"prefix"), "write_json appends");
        let line = std::str::from_utf8(&out[6..]).unwrap();
        for c in ['\n', '\r', '\u{2028}', '\u{2029}', '\u{85}', '\0', '\u{1b}'] {
            assert!(!line.contains(c), "{format}: raw {c:?} in {line}");
        }
        let v: Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("{format}: {err}"));
        assert_eq!(v, format.to_json(&e), "{format}: the line is to_json");
        assert!(
            v.to_string()
                .contains(&serde_json::to_string(nasty).unwrap()[1..10]),
            "{format}: the text survives, escaped"
        );
    }
}

#[test]
fn format_names_round_trip() {
    for &f in Format::ALL {
        assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
        assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
        assert_eq!(
            serde_json::from_value::<Format>(json!(f.as_str())).unwrap(),
            f
        );
    }
    let err = "splunk\n".parse::<Format>().unwrap_err().to_string();
    assert!(err.contains("native, ecs, ocsf"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Through the layer, one sink per format: the same events, and none of the secrets the
/// request carried, in every file.
#[tokio::test]
async fn jsonl_sink_writes_each_format_without_reintroducing_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = Format::ALL
        .iter()
        .map(|f| dir.path().join(format!("{f}.jsonl")))
        .collect();
    let app = TestApp::with(
        |mut b| {
            for (f, p) in Format::ALL.iter().zip(&paths) {
                b = b.sink(JsonlSink::new(p).format(*f));
            }
            b
        },
        |l| l.session_cookie("sid"),
    );
    let res = app
        .send(
            req(
                "GET",
                "/search?q=shoes&password=SECRET-PW-1&token=SECRET-TOK-2",
                "198.51.100.7",
            )
            .header("authorization", "Bearer SECRET-AUTH-3")
            .header("cookie", "sid=SECRET-SID-4")
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .send(
            req("POST", "/login", "198.51.100.7")
                .header("content-type", "application/json")
                .header("cookie", "sid=SECRET-SID-4")
                .body(Body::from(
                    json!({"username": "alice", "password": "SECRET-PW-5"}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 401);
    assert!(app.siem.flush(Duration::from_secs(10)));
    for sink in &app.siem.stats().pipeline.sinks {
        assert_eq!((sink.emitted, sink.delivered), (3, 3), "{sink:?}");
    }

    for (format, path) in Format::ALL.iter().zip(&paths) {
        let text = std::fs::read_to_string(path).unwrap();
        for secret in [
            "SECRET-PW-1",
            "SECRET-TOK-2",
            "SECRET-AUTH-3",
            "SECRET-SID-4",
            "SECRET-PW-5",
        ] {
            assert!(!text.contains(secret), "{format}: {secret} leaked:\n{text}");
        }
        assert_eq!(text.lines().count(), 3, "{format}");
    }
    let native = lines(&paths[0]);
    let ecs = lines(&paths[1]);
    let ocsf = lines(&paths[2]);
    for i in 0..3 {
        assert_eq!(ecs[i]["event"]["id"], native[i]["id"]);
        assert_eq!(ocsf[i]["metadata"]["uid"], native[i]["id"]);
        assert_eq!(ecs[i]["event"]["action"], native[i]["name"]);
        // The keyed session hash, never the cookie's value.
        assert_eq!(ecs[i]["tower_siem"]["session"], native[i]["session"]);
        assert_eq!(ocsf[i]["actor"]["session"]["uid"], native[i]["session"]);
        assert!(native[i]["session"].as_str().unwrap().len() == 32);
    }
    let search = native
        .iter()
        .position(|e| e["http"]["path"] == "/search")
        .unwrap();
    let redacted = "q=shoes&password=[REDACTED]&token=[REDACTED]";
    assert_eq!(native[search]["http"]["query"], redacted);
    assert_eq!(ecs[search]["url"]["query"], redacted);
    assert_eq!(
        ocsf[search]["http_request"]["url"]["query_string"],
        redacted
    );
    let failure = ocsf.iter().find(|e| e["class_uid"] == 3002).unwrap();
    assert_eq!(
        (&failure["status_id"], &failure["user"]["name"]),
        (&json!(2), &json!("alice"))
    );
}
