//! A sink that fails or falls behind costs events, every one of them counted, and never costs
//! a request.

mod common;

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use common::TestApp;
use tower_siem::pipeline::{PipelineConfig, RetryPolicy, SinkStats};
use tower_siem::sink::JsonlSink;

/// 200 requests from distinct clients; every 10th is a failed login, whose handler fires an
/// `auth.failure`. Returns the number of events the application fired itself.
async fn traffic(app: &TestApp) -> u64 {
    let mut fired = 0;
    for i in 0..200u32 {
        let ip = format!("198.18.{}.{}", i / 200, 1 + i % 200);
        app.clock.advance(Duration::from_millis(250));
        if i % 10 == 0 {
            let res = app.login(&ip, &format!("user{i}"), "wrong").await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "request {i}");
            fired += 1;
        } else {
            let res = app.get(&ip, "/").await;
            assert_eq!(res.status(), StatusCode::OK, "request {i}");
        }
    }
    fired
}

fn assert_accounting(s: &SinkStats) {
    assert_eq!(
        s.emitted,
        s.delivered + s.dropped.total() + s.buffered,
        "emitted == delivered + dropped + buffered: {s:?}"
    );
}

/// A path no one can write to, not even root: its parent is a regular file.
fn unwritable(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("not-a-directory");
    std::fs::write(&file, b"").unwrap();
    file.join("events.jsonl")
}

async fn failing_sink_with(retry: RetryPolicy) -> SinkStats {
    let dir = tempfile::tempdir().unwrap();
    let path = unwritable(dir.path());
    let config = PipelineConfig {
        retry,
        flush_interval: Duration::from_millis(10),
        ..PipelineConfig::default()
    };
    let app = TestApp::with(|b| b.sink(JsonlSink::new(&path)).pipeline(config), |l| l);
    let fired = traffic(&app).await;
    assert_eq!(fired, 20);
    let caught_up = app.siem.flush(Duration::from_secs(10));
    let s = app.siem.stats().pipeline.sinks[0].clone();
    println!("flush returned {caught_up}; {s:?}");
    assert_eq!(s.name, "jsonl");
    assert_eq!(s.emitted, 200 + fired, "{s:?}");
    assert_eq!(s.delivered, 0, "{s:?}");
    assert!(s.dropped.sink_error > 0, "{s:?}");
    assert!(s.write_errors > 0, "{s:?}");
    assert_eq!(s.dropped.queue_full, 0, "{s:?}");
    assert_accounting(&s);
    if caught_up {
        // Everything emitted before the flush was dropped after its retries.
        assert_eq!(s.buffered, 0, "{s:?}");
        assert_eq!(s.dropped.sink_error, s.emitted, "{s:?}");
    }
    assert!(!path.exists());
    s
}

#[tokio::test]
async fn unwritable_sink_without_retries_loses_events_but_no_requests() {
    let s = failing_sink_with(RetryPolicy::none()).await;
    assert_eq!(s.retries, 0, "{s:?}");
}

#[tokio::test]
async fn unwritable_sink_with_short_retries_loses_events_but_no_requests() {
    let s = failing_sink_with(RetryPolicy {
        max_retries: 2,
        base: Duration::from_millis(1),
        max: Duration::from_millis(5),
    })
    .await;
    assert!(s.retries > 0, "{s:?}");
}

#[tokio::test]
async fn full_queue_drops_newest_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let config = PipelineConfig {
        queue_capacity: 4,
        // The worker only wakes on its own every hour, or when a queue reaches a batch: the
        // queue is full long before either.
        batch_max: 512,
        flush_interval: Duration::from_secs(3600),
        ..PipelineConfig::default()
    };
    let app = TestApp::with(|b| b.sink(JsonlSink::new(&path)).pipeline(config), |l| l);
    let fired = traffic(&app).await;
    assert!(
        app.siem.flush(Duration::from_secs(10)),
        "the sink caught up"
    );
    let s = app.siem.stats().pipeline.sinks[0].clone();
    println!("{s:?}");
    assert_eq!(s.emitted, 200 + fired, "{s:?}");
    assert!(s.dropped.queue_full > 0, "{s:?}");
    assert_eq!(s.dropped.sink_error, 0, "{s:?}");
    assert_eq!(s.buffered, 0, "{s:?}");
    assert!(s.delivered > 0, "{s:?}");
    assert_accounting(&s);
    let lines = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
    assert_eq!(lines, s.delivered, "every delivered event is in the file");
    // Detection state is never dropped: every event reached the engine.
    assert_eq!(app.siem.stats().engine.events, 200 + fired);
}
