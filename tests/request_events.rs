//! The layer's `http.request` events on their way to the sinks: one event per request, the
//! same for every sink, with every field; and a SIEM dropped with such events still queued
//! delivers them; an event built in a spent one from the pipeline's pool carries nothing of
//! the request before.

mod common;

use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use common::{req, TestApp};
use tower_siem::event::SharedEvent;
use tower_siem::pipeline::PipelineConfig;
use tower_siem::sink::{BoxFuture, Sink, SinkError};

const LONG: Duration = Duration::from_secs(10);

/// Keeps every event it is given and reports each batch's size.
struct Collect {
    events: Mutex<Vec<SharedEvent>>,
    batches: Mutex<mpsc::Sender<usize>>,
}

impl Collect {
    fn new() -> (Arc<Self>, mpsc::Receiver<usize>) {
        let (tx, rx) = mpsc::channel();
        let c = Collect {
            events: Mutex::new(Vec::new()),
            batches: Mutex::new(tx),
        };
        (Arc::new(c), rx)
    }

    fn requests(&self) -> Vec<SharedEvent> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|e| e.name.as_str() == "http.request")
            .cloned()
            .collect()
    }
}

impl Sink for Collect {
    fn name(&self) -> &str {
        "collect"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        self.events.lock().unwrap().extend(batch.iter().cloned());
        let _ = self.batches.lock().unwrap().send(batch.len());
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn every_sink_gets_the_same_request_event_with_every_field() {
    let (a, _) = Collect::new();
    let (b, _) = Collect::new();
    let app = TestApp::with(|s| s.sink(a.clone()).sink(b.clone()), |l| l);
    let start = app.clock.now();
    for i in 0..10 {
        let res = app.get("203.0.113.7", &format!("/products/{i}?q=x")).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    // A 404 is read by the probing rules: that event is built before the response leaves.
    for _ in 0..5 {
        let res = app.get("203.0.113.7", "/no-such-page").await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    assert!(app.siem.flush_async(LONG).await);

    let (got_a, got_b) = (a.requests(), b.requests());
    assert_eq!(got_a.len(), 15);
    let ids = |v: &[SharedEvent]| v.iter().map(|e| e.id).collect::<HashSet<_>>();
    assert_eq!(
        ids(&got_a),
        ids(&got_b),
        "one event per request, shared by the sinks"
    );
    assert_eq!(ids(&got_a).len(), 15);
    for e in &got_a {
        let http = e.http.as_ref().expect("http fields");
        assert_eq!(http.method, "GET");
        assert!(http.latency_us.is_some());
        assert!(http.request_id.is_some());
        assert_eq!(e.subject.ip, Some("203.0.113.7".parse().unwrap()));
        assert!(e.user_agent.as_deref().unwrap().starts_with("Mozilla/5.0"));
        assert!(e.verdict.is_some());
        // Event time: the request's start on the SIEM's (manual) clock plus its latency.
        assert!(e.time >= start && e.time <= start + Duration::from_secs(5));
        match http.status {
            Some(200) => {
                assert_eq!(http.route.as_deref(), Some("/products/{id}"));
                assert_eq!(http.query.as_deref(), Some("q=x"));
                assert!(http.path.starts_with("/products/"));
            }
            Some(404) => assert_eq!(http.path, "/no-such-page"),
            other => panic!("unexpected status {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_siem_dropped_with_request_events_queued_still_delivers_them() {
    let (c, batches) = Collect::new();
    let app = TestApp::with(
        |s| {
            s.sink(c.clone()).pipeline(PipelineConfig {
                // Only a wake-up (batch size, flush, shutdown) moves events.
                flush_interval: Duration::from_secs(3600),
                ..PipelineConfig::default()
            })
        },
        |l| l,
    );
    for _ in 0..3 {
        let r = req("GET", "/", "198.51.100.4").body(Body::empty()).unwrap();
        assert_eq!(app.send(r).await.status(), StatusCode::OK);
    }
    // Dropping the last handle starts the drain; nothing queued may keep the SIEM alive.
    drop(app);
    let mut got = 0;
    while got < 3 {
        got += batches
            .recv_timeout(LONG)
            .expect("request events queued at drop were never delivered");
    }
    assert_eq!(c.requests().len(), 3);
}

/// Turns each event into JSON when it arrives and keeps nothing else, so the pipeline gets its
/// events back once delivered and the layer fills later requests' events into them.
struct Lines(Mutex<Vec<serde_json::Value>>);

impl Sink for Lines {
    fn name(&self) -> &str {
        "lines"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        let mut lines = self.0.lock().unwrap();
        for e in batch {
            lines.push(serde_json::to_value(&**e).unwrap());
        }
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn a_request_event_built_in_a_spent_one_keeps_nothing_of_the_earlier_request() {
    let lines = Arc::new(Lines(Mutex::new(Vec::new())));
    let app = TestApp::with(|s| s.sink(lines.clone()), |l| l.session_cookie("sid"));
    // A probe gives the first client a score, so its events carry reasons.
    assert_eq!(
        app.get("203.0.113.7", "/.env").await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(app.siem.flush_async(LONG).await);
    // Each round sends `K` requests with every optional field set, at least as many as the
    // pool holds before (2 from the probe, then `K`), so they empty it and afterwards it holds
    // exactly those `K`; the `K` bare requests that follow are built in them.
    const K: usize = 3;
    for round in 0..2 {
        for k in 0..K {
            let rich = req("GET", "/products/7?q=shoes&page=2", "203.0.113.7")
                .header("cookie", "sid=abc123")
                .header("x-request-id", format!("rich-{round}-{k}"))
                .header("referer", "https://shop.example/cart")
                .body(Body::empty())
                .unwrap();
            assert_eq!(app.send(rich).await.status(), StatusCode::OK);
        }
        // Delivered, so the events go back to the pipeline's pool (a flush returns once the
        // batches are given back).
        assert!(app.siem.flush_async(LONG).await);
        for _ in 0..K {
            let mut poor = req("GET", "/", "198.51.100.9").body(Body::empty()).unwrap();
            poor.headers_mut().remove("user-agent");
            assert_eq!(app.send(poor).await.status(), StatusCode::OK);
        }
        assert!(app.siem.flush_async(LONG).await);
    }

    // The probe also raised an alert (`siem.alert`); only the requests count here.
    let got: Vec<serde_json::Value> = lines
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "http.request")
        .cloned()
        .collect();
    assert_eq!(got.len(), 1 + 2 * 2 * K, "{got:#?}");
    let ids: HashSet<&str> = got.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), got.len(), "every event has its own id");
    for (round, events) in got[1..].chunks(2 * K).enumerate() {
        let (rich, poor) = events.split_at(K);
        for (k, rich) in rich.iter().enumerate() {
            assert_eq!(rich["ip"], "203.0.113.7");
            assert!(rich["session"].is_string());
            assert!(rich["user_agent"].is_string());
            assert_eq!(rich["http"]["query"], "q=shoes&page=2");
            assert_eq!(rich["http"]["route"], "/products/{id}");
            assert_eq!(rich["http"]["request_id"], format!("rich-{round}-{k}"));
            assert_eq!(rich["http"]["headers"][0][0], "referer");
            assert!(!rich["verdict"]["reasons"].as_array().unwrap().is_empty());
        }
        for poor in poor {
            assert_bare(poor);
        }
    }
}

/// A request with no optional field: none may be left over from an earlier event.
fn assert_bare(poor: &serde_json::Value) {
    assert_eq!(poor["name"], "http.request");
    assert_eq!(poor["ip"], "198.51.100.9");
    for absent in ["session", "user", "device", "user_agent", "attrs"] {
        assert!(poor.get(absent).is_none(), "{absent} in {poor}");
    }
    let http = &poor["http"];
    assert_eq!(http["path"], "/");
    assert_eq!(http["route"], "/");
    assert_eq!(http["method"], "GET");
    assert_eq!(http["status"], 200);
    assert!(http.get("query").is_none(), "{poor}");
    assert!(http.get("headers").is_none(), "{poor}");
    // A request without an id gets the event's own.
    assert_eq!(http["request_id"], poor["id"]);
    assert!(poor["verdict"].get("reasons").is_none(), "{poor}");
    assert_eq!(poor["verdict"]["action"], "allow");
    assert_eq!(poor["verdict"]["score"], 0.0);
}

#[tokio::test]
async fn a_reused_event_carries_each_requests_own_user_agent() {
    let lines = Arc::new(Lines(Mutex::new(Vec::new())));
    let app = TestApp::with(|s| s.sink(lines.clone()), |l| l);
    let a: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0";
    let same_length: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) Firefox/129.0";
    let longer: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0 extra";
    // Not UTF-8 (an obs-text byte, which HTTP allows): replaced, also the second time.
    let latin1: &[u8] = b"caf\xe9 client";
    let sent = [
        Some(a),
        Some(a),
        Some(same_length),
        Some(a),
        Some(longer),
        Some(a),
        Some(latin1),
        Some(latin1),
        None,
        Some(a),
    ];
    for ua in sent {
        let mut r = req("GET", "/", "198.51.100.9").body(Body::empty()).unwrap();
        match ua {
            Some(ua) => {
                let value = axum::http::HeaderValue::from_bytes(ua).unwrap();
                r.headers_mut().insert("user-agent", value);
            }
            None => {
                r.headers_mut().remove("user-agent");
            }
        }
        assert_eq!(app.send(r).await.status(), StatusCode::OK);
        // Delivered, so the next request's event is this one, given back to the pool.
        assert!(app.siem.flush_async(LONG).await);
    }
    let got: Vec<Option<String>> = lines
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "http.request")
        .map(|e| e["user_agent"].as_str().map(str::to_owned))
        .collect();
    let want: Vec<Option<String>> = sent
        .iter()
        .map(|ua| ua.map(|b| String::from_utf8_lossy(b).into_owned()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(got[6].as_deref(), Some("caf\u{fffd} client"));
}
