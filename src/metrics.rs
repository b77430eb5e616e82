//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`).
//!
//! tower-siem records into whatever recorder the application installs (for Prometheus,
//! `metrics-exporter-prometheus`); with none installed nothing is recorded and nothing is
//! allocated. Names and labels:
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `tower_siem_events_total` | counter | `class`: `http`, `auth`, `account`, `mfa`, `siem`, `other`; `action`: `allow`, `step_up`, `throttle`, `block` | events applied: every request's `http.request` (with the verdict its gate gave) and every [`Siem::fire`](crate::Siem::fire) (with the verdict it returned). The class is the part of the name before the first dot; names outside the well-known families count as `other`. Verdicts by action: `sum by (action)` |
//! | `tower_siem_sink_events_emitted_total` | counter | `sink`, `index` | events handed to the sink's queue |
//! | `tower_siem_sink_events_delivered_total` | counter | `sink`, `index` | events the sink accepted |
//! | `tower_siem_sink_events_dropped_total` | counter | `sink`, `index`, `reason`: `queue_full`, `sink_error`, `shutdown`, `spool_full`, `corrupt` | events lost, by cause |
//! | `tower_siem_sink_events_buffered` | gauge | `sink`, `index` | events queued or in flight |
//! | `tower_siem_sink_retries_total` | counter | `sink`, `index` | batch retries |
//! | `tower_siem_sink_write_errors_total` | counter | `sink`, `index` | failed writes and flushes |
//! | `tower_siem_sink_write_seconds` | histogram | `sink`, `index` | time of each successful or failed batch write |
//! | `tower_siem_rule_hits_total` | counter | `rule`, `shadow`: `false` or `true` | times each rule fired (in shadow mode: would have) |
//! | `tower_siem_entities` | gauge | | entities with risk state in the store |
//! | `tower_siem_entities_blocked` | gauge | | entities blocked now |
//! | `tower_siem_entity_capacity` | gauge | | the store's capacity |
//! | `tower_siem_sessions` | gauge | | sessions bound to a user |
//! | `tower_siem_window_keys_max` | gauge | | most keys any one rule keeps a window for |
//! | `tower_siem_window_evictions_total` | counter | | window entries evicted to stay within capacity |
//! | `tower_siem_shared_connected` | gauge | | 1 while a sharing store (`RedisStore`) is connected, else 0 |
//! | `tower_siem_shared_decisions_total` | counter | `way`: `published`, `received`, `loaded`, `reseeded`, `dropped`, `malformed`, `lifted` | decisions shared with other replicas, by way |
//! | `tower_siem_shared_observations_total` | counter | `way`: `published`, `received`, `applied`, `dropped` | rule-window observations shared with other replicas (`share_windows`), by way |
//! | `tower_siem_shared_errors_total` | counter | | failed connections and commands of a sharing store (moments the replica decided alone) |
//! | `tower_siem_shared_lookups_alone_total` | counter | `mode`: `open`, `closed` | gate lookups made while Redis was away: answered from memory (fail-open) or refused (fail-closed) |
//!
//! The sink counters are copied from the exact accounting of
//! [`PipelineStats`](crate::pipeline::PipelineStats) by the pipeline's own worker, each time a
//! sink wakes up (at least every flush interval) and before [`Siem::flush`](crate::Siem::flush)
//! returns, so they obey `emitted = delivered + dropped + buffered` like the stats do. The
//! rule, store and window metrics are read from [`EngineStats`]
//! when [`record`] runs: call it where the metrics are scraped (it also refreshes the sink
//! counters). Only `tower_siem_events_total` is counted as it happens: one call per event,
//! which without a recorder is a no-op of a few nanoseconds that neither allocates nor locks.
//!
//! # Exposing them to Prometheus
//!
//! ```
//! use axum::{routing::get, Router};
//! use metrics_exporter_prometheus::PrometheusBuilder;
//! use tower_siem::Siem;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let prometheus = PrometheusBuilder::new().install_recorder()?;
//! let siem = Siem::builder().build()?;
//! let metrics = {
//!     let siem = siem.clone();
//!     move || async move {
//!         tower_siem::metrics::record(&siem);
//!         prometheus.render()
//!     }
//! };
//! let app: Router = Router::new()
//!     .route("/metrics", get(metrics)) // serve it on an internal port in production
//!     .layer(siem.layer());
//! # Ok(()) }
//! ```
//!
//! `sink` is the sink's [name](crate::sink::Sink::name) and `index` its position in the order
//! the sinks were added, so two sinks of one kind stay apart.
//!
//! Metrics are process-wide: two [`Siem`]s in one process add up in the events
//! counter, and overwrite each other's copied stats.

use std::future::Future;
use std::time::Instant;

use metrics::{counter, gauge, histogram, Label};

use crate::engine::{Action, EngineStats};
use crate::pipeline::SinkStats;
use crate::{Siem, SiemStats};

/// Copies the SIEM's exact counters and sizes ([`Siem::stats`]) into the installed recorder
/// and returns them.
///
/// Call it just before the metrics are read (in the `/metrics` handler, or on a timer for a
/// push exporter). Without a recorder it only costs the [`Siem::stats`] call.
pub fn record(siem: &Siem) -> SiemStats {
    let stats = siem.stats();
    engine(&stats.engine);
    sinks(&stats.pipeline.sinks);
    stats
}

/// One counter call with literal labels: the key is a static, so nothing is allocated, with or
/// without a recorder.
macro_rules! count_event {
    ($class:literal, $action:expr) => {
        match $action {
            Action::Allow => {
                counter!("tower_siem_events_total", "class" => $class, "action" => "allow")
                    .increment(1)
            }
            Action::StepUp => {
                counter!("tower_siem_events_total", "class" => $class, "action" => "step_up")
                    .increment(1)
            }
            Action::Throttle => {
                counter!("tower_siem_events_total", "class" => $class, "action" => "throttle")
                    .increment(1)
            }
            Action::Block => {
                counter!("tower_siem_events_total", "class" => $class, "action" => "block")
                    .increment(1)
            }
        }
    };
}

/// Counts one applied event by the class of its name and the verdict it carries: for a
/// request, the gate's; for an event the application fired, the one `fire` returned.
#[inline]
pub(crate) fn event(name: &str, action: Action) {
    let family = name.split_once('.').map_or(name, |(family, _)| family);
    match family {
        "http" => count_event!("http", action),
        "auth" => count_event!("auth", action),
        "account" => count_event!("account", action),
        "mfa" => count_event!("mfa", action),
        "siem" => count_event!("siem", action),
        _ => count_event!("other", action),
    }
}

/// Copies every sink's exact accounting into the counters (absolute values). A sink is
/// labelled by its name and its position among the SIEM's sinks, so two sinks of one kind
/// (say, two JSON-lines files) stay apart.
pub(crate) fn sinks(all: &[SinkStats]) {
    for (index, stats) in all.iter().enumerate() {
        sink(index, stats);
    }
}

fn sink(index: usize, stats: &SinkStats) {
    let labels = |extra: Option<(&'static str, &'static str)>| {
        let mut l = vec![
            Label::new("sink", stats.name.clone()),
            Label::new("index", index.to_string()),
        ];
        if let Some((k, v)) = extra {
            l.push(Label::from_static_parts(k, v));
        }
        l
    };
    counter!("tower_siem_sink_events_emitted_total", labels(None)).absolute(stats.emitted);
    counter!("tower_siem_sink_events_delivered_total", labels(None)).absolute(stats.delivered);
    for (reason, n) in stats.dropped.by_reason() {
        counter!(
            "tower_siem_sink_events_dropped_total",
            labels(Some(("reason", reason)))
        )
        .absolute(n);
    }
    gauge!("tower_siem_sink_events_buffered", labels(None)).set(stats.buffered as f64);
    counter!("tower_siem_sink_retries_total", labels(None)).absolute(stats.retries);
    counter!("tower_siem_sink_write_errors_total", labels(None)).absolute(stats.write_errors);
}

/// Where `one` sits in `all` (by address): the sink's `index` label.
pub(crate) fn position<T>(all: &[T], one: &T) -> usize {
    all.iter().position(|t| std::ptr::eq(t, one)).unwrap_or(0)
}

/// Copies the engine's counters and sizes (absolute values).
pub(crate) fn engine(stats: &EngineStats) {
    for rule in &stats.rules {
        counter!("tower_siem_rule_hits_total", "rule" => rule.id.clone(), "shadow" => "false")
            .absolute(rule.hits);
        counter!("tower_siem_rule_hits_total", "rule" => rule.id.clone(), "shadow" => "true")
            .absolute(rule.shadow_hits);
    }
    gauge!("tower_siem_entities").set(stats.entities as f64);
    gauge!("tower_siem_entity_capacity").set(stats.entity_capacity as f64);
    gauge!("tower_siem_sessions").set(stats.sessions as f64);
    gauge!("tower_siem_window_keys_max").set(stats.max_window_keys as f64);
    counter!("tower_siem_window_evictions_total").absolute(stats.window_evictions);
    gauge!("tower_siem_entities_blocked").set(stats.decisions.blocked as f64);
    if let Some(shared) = &stats.shared {
        gauge!("tower_siem_shared_connected").set(f64::from(u8::from(shared.connected)));
        for (way, n) in shared.by_way() {
            counter!("tower_siem_shared_decisions_total", "way" => way).absolute(n);
        }
        for (way, n) in shared.observations_by_way() {
            counter!("tower_siem_shared_observations_total", "way" => way).absolute(n);
        }
        counter!("tower_siem_shared_errors_total").absolute(shared.errors);
        counter!("tower_siem_shared_lookups_alone_total", "mode" => "open")
            .absolute(shared.failed_open);
        counter!("tower_siem_shared_lookups_alone_total", "mode" => "closed")
            .absolute(shared.failed_closed);
    }
}

/// Times a sink write; a write abandoned at the shutdown deadline is not recorded.
pub(crate) async fn timed<F: Future>(sink: &str, index: usize, write: F) -> F::Output {
    let started = Instant::now();
    let out = write.await;
    histogram!("tower_siem_sink_write_seconds", "sink" => sink.to_owned(), "index" => index.to_string())
        .record(started.elapsed());
    out
}
