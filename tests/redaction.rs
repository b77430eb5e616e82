//! What reaches a sink: no credentials, no secret query values, no raw session ids, and one
//! event per line whatever bytes a client sends.

mod common;

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use common::{req, TestApp};
use serde_json::Value;
use tower_siem::event::{HttpInfo, Redactor};
use tower_siem::sink::JsonlSink;
use tower_siem::Event;

const SECRETS: &[&str] = &[
    "SECRET-AUTH-1",
    "SECRET-COOKIE-2",
    "SECRET-PW-3",
    "SECRET-TOK-4",
    "SECRET-BODY-5",
    "SECRET-PW-6",
    "SECRET-KEY-7",
];

fn app_with_sink(path: &Path, redactor: Redactor) -> TestApp {
    let sink = JsonlSink::new(path);
    TestApp::with(
        |b| b.sink(sink).redactor(redactor),
        |l| l.session_cookie("sid"),
    )
}

/// Every line of the file, parsed; panics on a line that is not one JSON object.
fn read_events(path: &Path) -> (String, Vec<Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "the file ends with a whole line");
    let events = text
        .split('\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, line)| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {line:?}", i + 1));
            assert!(v.is_object(), "line {}: {line}", i + 1);
            v
        })
        .collect();
    (text, events)
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn secrets_never_reach_the_sink_and_every_event_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    // Even an application that asks for credential headers does not get them.
    let redactor = Redactor::default()
        .capture_header(AUTHORIZATION)
        .capture_header(COOKIE)
        .capture_header(SET_COOKIE);
    let app = app_with_sink(&path, redactor);
    let mut expected_events = 0;

    // Credentials in headers.
    let res = app
        .send(
            req("GET", "/account", "198.51.100.7")
                .header("authorization", "Bearer SECRET-AUTH-1")
                .header("cookie", "theme=dark; sid=SECRET-COOKIE-2")
                .header("x-request-id", "req-0001")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200);
    expected_events += 1;

    // Secrets in the query string, in several spellings of the key.
    let res = app
        .get(
            "198.51.100.7",
            "/search?password=SECRET-PW-3&token=SECRET-TOK-4&q=shoes\
             &user%5Bpassword%5D=SECRET-PW-6&API_KEY=SECRET-KEY-7",
        )
        .await;
    assert_eq!(res.status(), 200);
    expected_events += 1;

    // A password in a login body; the handler fires `auth.failure` (a second event).
    let body = serde_json::json!({"username": "alice", "password": "SECRET-BODY-5"}).to_string();
    let res = app
        .send(
            req("POST", "/login", "198.51.100.7")
                .header("content-type", "application/json")
                .header("cookie", "sid=SECRET-COOKIE-2")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 401);
    expected_events += 2;

    // Line breaks a client can get into a request: percent-encoded in the path, Unicode line
    // separators and NEL in the user agent (raw CR and LF are refused by HTTP itself).
    let weird_ua = "Mozilla/5.0 \u{2028}injected\u{2029}line\u{85}\tend";
    let mut r = req("GET", "/products/a%0Ab%0Dc%E2%80%A8d", "198.51.100.8")
        .body(Body::empty())
        .unwrap();
    r.headers_mut()
        .insert("user-agent", weird_ua.parse().unwrap());
    let res = app.send(r).await;
    assert_eq!(res.status(), 200);
    expected_events += 1;

    // And raw control characters in events the application builds itself.
    app.siem.fire(
        Event::new("app.note")
            .user_agent("line1\nline2\r\u{2028}end")
            .attr("note", "a\nb\r\nc\u{2029}d\u{0}e"),
    );
    let mut e = Event::new("app.http");
    e.http = Some(HttpInfo {
        method: "GET".into(),
        path: "/raw\n/path\r\u{2028}".into(),
        ..HttpInfo::default()
    });
    app.siem.fire(e);
    expected_events += 2;

    assert!(
        app.siem.flush(Duration::from_secs(10)),
        "the sink caught up"
    );
    let stats = app.siem.stats().pipeline;
    let sink = &stats.sinks[0];
    assert_eq!(sink.emitted, expected_events);
    assert_eq!(sink.delivered, expected_events, "{sink:?}");

    let (text, events) = read_events(&path);
    assert_eq!(
        text.lines().count() as u64,
        expected_events,
        "one event per line"
    );
    assert_eq!(events.len() as u64, expected_events);
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    for c in ['\r', '\u{2028}', '\u{2029}', '\u{85}', '\0'] {
        assert!(!text.contains(c), "raw {c:?} in the file");
    }

    let http: Vec<&Value> = events
        .iter()
        .filter(|e| e["name"] == "http.request")
        .collect();
    assert_eq!(http.len(), 4);
    for e in &http {
        let h = &e["http"];
        assert!(h["method"].is_string(), "{e}");
        assert!(h["path"].is_string(), "{e}");
        assert!(h["status"].is_u64(), "{e}");
        assert!(h["latency_us"].is_u64(), "{e}");
        assert!(h["request_id"].is_string(), "{e}");
        assert!(e["ip"].is_string(), "{e}");
        assert!(e["verdict"]["action"].is_string(), "{e}");
        assert!(e["id"].is_string() && e["time"].is_string(), "{e}");
    }
    assert_eq!(http[0]["http"]["request_id"], "req-0001");
    assert_eq!(http[0]["http"]["path"], "/account");
    assert_eq!(http[0]["http"]["status"], 200);
    assert_eq!(http[0]["ip"], "198.51.100.7");
    assert_eq!(http[0]["verdict"]["action"], "allow");
    let headers = http[0]["http"]["headers"].to_string().to_ascii_lowercase();
    assert!(
        !headers.contains("authorization") && !headers.contains("cookie"),
        "{headers}"
    );

    let search = http
        .iter()
        .find(|e| e["http"]["path"] == "/search")
        .unwrap();
    assert_eq!(
        search["http"]["query"],
        "password=[REDACTED]&token=[REDACTED]&q=shoes\
         &user%5Bpassword%5D=[REDACTED]&API_KEY=[REDACTED]"
    );

    // Sessions are keyed hashes: stable for one id, never the id itself.
    let session = http[0]["session"].as_str().expect("session recorded");
    assert!(is_hex32(session), "{session}");
    let failure = events.iter().find(|e| e["name"] == "auth.failure").unwrap();
    assert_eq!(failure["session"], session);
    assert_eq!(failure["user"], "alice");
    assert!(http[1].get("session").is_none(), "no cookie, no session");

    // Escaped, not mangled: the values read back exactly.
    let weird = http
        .iter()
        .find(|e| e["http"]["path"] == "/products/a%0Ab%0Dc%E2%80%A8d")
        .unwrap();
    assert_eq!(weird["user_agent"], weird_ua);
    let note = events.iter().find(|e| e["name"] == "app.note").unwrap();
    assert_eq!(note["user_agent"], "line1\nline2\r\u{2028}end");
    let raw = events.iter().find(|e| e["name"] == "app.http").unwrap();
    assert_eq!(raw["http"]["path"], "/raw\n/path\r\u{2028}");
}

#[tokio::test]
async fn query_secrets_in_a_captured_referer_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let app = app_with_sink(&path, Redactor::default());
    // The page after a password-reset link: the browser sends the link as the Referer.
    let res = app
        .send(
            req("GET", "/account", "198.51.100.7")
                .header(
                    "referer",
                    "https://shop.example/password/reset?token=SECRET-REF-8&lang=en",
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(app.siem.flush(Duration::from_secs(10)));
    let (text, events) = read_events(&path);
    assert_eq!(events.len(), 1);
    assert!(
        text.contains("https://shop.example/password/reset"),
        "the referer is captured: {text}"
    );
    assert!(
        !text.contains("SECRET-REF-8"),
        "token leaked via Referer: {text}"
    );
}
