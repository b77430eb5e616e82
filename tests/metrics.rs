//! The `metrics` feature, read back through the Prometheus exporter a user would install: every
//! figure equals what `Siem::stats()` reports.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::TestApp;
use metrics_exporter_prometheus::PrometheusBuilder;
use tower_siem::pipeline::{PipelineConfig, RetryPolicy};
use tower_siem::sink::JsonlSink;
use tower_siem::Event;

/// `name{k="v",...} value` lines of the text exposition, labels sorted.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let key = match series.split_once('{') {
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => series.to_owned(),
        };
        out.insert(key, value.parse().expect("a number"));
    }
    out
}

/// The key `parse` gives a series: labels sorted.
fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    l.sort_unstable();
    format!("{name}{{{}}}", l.join(","))
}

fn get(m: &BTreeMap<String, f64>, key: &str) -> u64 {
    match m.get(key) {
        Some(v) => *v as u64,
        None => panic!("{key} missing from:\n{m:#?}"),
    }
}

fn sum(m: &BTreeMap<String, f64>, prefix: &str) -> u64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| *v as u64)
        .sum()
}

#[tokio::test]
async fn metrics_match_siem_stats() {
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder in this test binary");

    let dir = tempfile::tempdir().unwrap();
    // A file under a regular file cannot be created: a sink that is down, for real.
    std::fs::write(dir.path().join("not-a-dir"), b"").unwrap();
    let app = TestApp::with(
        |b| {
            b.sink(JsonlSink::new(dir.path().join("events.jsonl")))
                .sink(JsonlSink::new(dir.path().join("not-a-dir/events.jsonl")))
                .pipeline(PipelineConfig {
                    retry: RetryPolicy::none(),
                    ..PipelineConfig::default()
                })
        },
        |l| l,
    );

    let mut requests = 0;
    for _ in 0..5 {
        assert_eq!(app.get("203.0.113.10", "/").await.status(), 200);
        requests += 1;
    }
    // An attack tool: blocked at the gate on its next request.
    app.get_ua("203.0.113.66", "/", "sqlmap/1.7").await;
    assert_eq!(
        app.get_ua("203.0.113.66", "/", "sqlmap/1.7").await.status(),
        403
    );
    requests += 2;
    // Three failed logins (the handler fires `auth.failure`), one success.
    for _ in 0..3 {
        assert_eq!(
            app.login("198.51.100.20", "alice", "guess").await.status(),
            401
        );
    }
    app.login("198.51.100.21", "bob", "builder").await;
    requests += 4;
    app.siem.fire(Event::new("mfa.success").user("bob"));
    app.siem.fire(Event::new("billing.card_added").user("bob"));

    assert!(app.siem.flush_async(Duration::from_secs(10)).await);
    let stats = app.siem.stats();

    // The sink accounting is copied by the pipeline worker before `flush` returns.
    let m = parse(&prometheus.render());
    let sinks = &stats.pipeline.sinks;
    assert_eq!(sinks.len(), 2);
    for (i, s) in sinks.iter().enumerate() {
        let i = i.to_string();
        let l = [("sink", "jsonl"), ("index", i.as_str())];
        assert_eq!(
            get(&m, &key("tower_siem_sink_events_emitted_total", &l)),
            s.emitted
        );
        assert_eq!(
            get(&m, &key("tower_siem_sink_events_delivered_total", &l)),
            s.delivered
        );
        for (reason, n) in [
            ("queue_full", s.dropped.queue_full),
            ("sink_error", s.dropped.sink_error),
            ("shutdown", s.dropped.shutdown),
            ("spool_full", s.dropped.spool_full),
            ("corrupt", s.dropped.corrupt),
        ] {
            let k = key(
                "tower_siem_sink_events_dropped_total",
                &[l[0], l[1], ("reason", reason)],
            );
            assert_eq!(get(&m, &k), n, "{k}");
        }
        assert_eq!(get(&m, &key("tower_siem_sink_events_buffered", &l)), 0);
        assert_eq!(
            get(&m, &key("tower_siem_sink_retries_total", &l)),
            s.retries
        );
        assert_eq!(
            get(&m, &key("tower_siem_sink_write_errors_total", &l)),
            s.write_errors
        );
        assert!(get(&m, &key("tower_siem_sink_write_seconds_count", &l)) >= 1);
    }
    // What the scenario implies, so the comparison above is not between two zeros.
    let events = requests + 3 + 1 + 2;
    assert_eq!(stats.engine.events, events);
    // Sinks also get one `siem.alert` per escalation: here the scanner's IP going to block.
    let written = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let alerts = written
        .lines()
        .filter(|l| l.contains("\"name\":\"siem.alert\""))
        .count() as u64;
    assert_eq!(alerts, 1, "{written}");
    let total = events + alerts;
    assert_eq!((sinks[0].emitted, sinks[0].delivered), (total, total));
    assert_eq!(sinks[1].dropped.sink_error, total, "{:?}", sinks[1]);
    // Without retries, each failed batch is exactly one timed write.
    assert_eq!(
        get(
            &m,
            "tower_siem_sink_write_seconds_count{index=\"1\",sink=\"jsonl\"}"
        ),
        sinks[1].write_errors
    );

    // Events are counted as they happen, with the verdict each carried.
    assert_eq!(sum(&m, "tower_siem_events_total{"), stats.engine.events);
    let class = |c: &str| {
        m.iter()
            .filter(|(k, _)| {
                k.starts_with("tower_siem_events_total{") && k.contains(&format!("class=\"{c}\""))
            })
            .map(|(_, v)| *v as u64)
            .sum::<u64>()
    };
    assert_eq!(class("http"), requests);
    assert_eq!(class("auth"), 4);
    assert_eq!(class("mfa"), 1);
    assert_eq!(class("other"), 1);
    // The scanner's second request was blocked at the gate.
    assert!(
        get(
            &m,
            &key(
                "tower_siem_events_total",
                &[("class", "http"), ("action", "block")]
            )
        ) >= 1
    );

    // Engine sizes and rule hits are copied when `record` runs.
    let recorded = tower_siem::metrics::record(&app.siem);
    let m = parse(&prometheus.render());
    assert_eq!(get(&m, "tower_siem_entities"), recorded.engine.entities);
    assert!(recorded.engine.entities > 0);
    assert_eq!(
        get(&m, "tower_siem_entity_capacity"),
        recorded.engine.entity_capacity
    );
    assert_eq!(get(&m, "tower_siem_sessions"), recorded.engine.sessions);
    assert_eq!(
        get(&m, "tower_siem_window_evictions_total"),
        recorded.engine.window_evictions
    );
    for rule in &recorded.engine.rules {
        let key = format!(
            "tower_siem_rule_hits_total{{rule=\"{}\",shadow=\"false\"}}",
            rule.id
        );
        assert_eq!(get(&m, &key), rule.hits, "{key}");
    }
    let scanner = recorded
        .engine
        .rules
        .iter()
        .find(|r| r.id == "sig.scanner_ua")
        .unwrap();
    assert!(scanner.hits >= 1);

    // A store that shares decisions reports its connection and counters; one whose Redis does
    // not answer (nothing listens on the port) shows it as disconnected, with the failures.
    #[cfg(feature = "redis")]
    {
        assert!(!m.keys().any(|k| k.starts_with("tower_siem_shared")));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = tower_siem::store::RedisStore::builder(format!("redis://127.0.0.1:{port}/"))
            .build()
            .unwrap();
        let siem = tower_siem::Siem::builder()
            .store(store.clone())
            .build()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.stats().errors < 2 {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let recorded = tower_siem::metrics::record(&siem);
        let shared = recorded
            .engine
            .shared
            .expect("a RedisStore shares decisions");
        let m = parse(&prometheus.render());
        assert_eq!(get(&m, "tower_siem_shared_connected"), 0);
        assert_eq!(get(&m, "tower_siem_shared_errors_total"), shared.errors);
        assert!(shared.errors >= 2);
        assert_eq!(
            get(
                &m,
                &key("tower_siem_shared_decisions_total", &[("way", "published")])
            ),
            0
        );
    }
}
