//! The layer's `http.request` events on their way to the sinks: one event per request, the
//! same for every sink, with every field; and a SIEM dropped with such events still queued
//! delivers them.

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
