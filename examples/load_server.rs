//! A minimal server for load tests (`benches/load.sh`): `GET /` answers `ok`, on one thread.
//!
//! Environment:
//! - `PORT` (default 3001): listens on `127.0.0.1:PORT`;
//! - `LAYERED=1`: wraps the app in `SiemLayer` with the built-in rule pack;
//! - `SINK=1` (with `LAYERED=1`): adds a JSONL sink writing to a temporary file; `SINK=sqlite`
//!   adds the SQLite store instead (feature `sqlite`, on by default); `SINK=null` adds a sink
//!   that accepts every batch and does nothing with it, which measures the pipeline itself
//!   (building, queueing, batching, the worker, the pool) without a sink's encoding or I/O;
//! - `BATCH_MAX` (with a sink): the pipeline's batch size instead of the default 512;
//! - `ALERTS_ONLY=1` (with `SINK=null`): the discarding sink takes only `siem.alert` events, so
//!   the layer records no request, but the pipeline and its thread are there;
//! - `IDLE_THREAD=1`: starts one more thread, which only sleeps. glibc's `malloc` takes faster
//!   paths while a process has a single thread. This server has one unless a sink starts the
//!   pipeline's, so with this the layer alone runs on the same allocator paths as a server with
//!   any second thread (a multi-thread tokio runtime, or a pipeline);
//! - `DURATION_SECS` (default 30): the server stops by itself after this long.
//!
//! It prints `ready cpu_ticks=N` once listening and `done cpu_ticks=N` on exit: the process's
//! user + system CPU time from `/proc/self/stat`, in clock ticks (`getconf CLK_TCK`), so a
//! script can charge the CPU spent serving to the requests served.
//!
//! ```text
//! LAYERED=1 DURATION_SECS=20 cargo run --release --example load_server
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use axum::{routing::get, Router};
use tower_siem::event::SharedEvent;
use tower_siem::sink::{BoxFuture, JsonlSink, Sink, SinkError};
use tower_siem::Siem;

/// Accepts every batch and drops it: the pipeline's own cost, apart from any sink's.
struct Discard;

impl Sink for Discard {
    fn name(&self) -> &str {
        "discard"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        std::hint::black_box(batch.len());
        Box::pin(async { Ok(()) })
    }

    fn interest(&self) -> tower_siem::sink::Interest {
        if env_flag("ALERTS_ONLY") {
            tower_siem::sink::Interest::Names(vec![tower_siem::EventName::SIEM_ALERT])
        } else {
            tower_siem::sink::Interest::All
        }
    }
}

/// utime + stime of this process (all its threads), in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; count fields after its closing parenthesis.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) and stime (15) are at indexes 11 and 12.
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT").map_or(Ok(3001), |p| p.parse())?;
    let duration: u64 = std::env::var("DURATION_SECS").map_or(Ok(30), |d| d.parse())?;
    let layered = env_flag("LAYERED");
    let sink_kind = std::env::var("SINK").unwrap_or_default();
    let sink = matches!(sink_kind.as_str(), "1" | "sqlite" | "null");

    let mut app: Router = Router::new().route("/", get(|| async { "ok" }));
    // Kept alive until exit: the sink writes here.
    let dir = tempfile::tempdir()?;
    let mut siem = None;
    if layered {
        let mut builder = Siem::builder();
        if sink_kind == "sqlite" {
            #[cfg(feature = "sqlite")]
            {
                builder = builder.sink(tower_siem::sink::SqliteSink::new(
                    dir.path().join("events.db"),
                ));
            }
            #[cfg(not(feature = "sqlite"))]
            return Err("SINK=sqlite needs the `sqlite` feature".into());
        } else if sink_kind == "null" {
            builder = builder.sink(Discard);
        } else if sink {
            builder = builder.sink(JsonlSink::new(dir.path().join("events.jsonl")));
        }
        if let Ok(b) = std::env::var("BATCH_MAX") {
            builder = builder.pipeline(tower_siem::pipeline::PipelineConfig {
                batch_max: b.parse()?,
                ..Default::default()
            });
        }
        let s = builder.build()?;
        app = app.layer(s.layer());
        siem = Some(s);
    }

    if env_flag("IDLE_THREAD") {
        // Parked for good: it exists, and never runs.
        std::thread::spawn(|| loop {
            std::thread::park();
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let variant = match (layered, sink_kind.as_str()) {
            (false, _) => "bare",
            (true, "null") => "layered+pipeline",
            (true, "sqlite") => "layered+sqlite",
            (true, _) if sink => "layered+sink",
            (true, _) => "layered",
        };
        println!(
            "ready variant={variant} port={port} cpu_ticks={}",
            cpu_ticks()
        );
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        );
        // SIGTERM (what the load script sends) ends the run like the timer does, so the
        // figures below are still printed.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = serve => r?,
            () = tokio::time::sleep(Duration::from_secs(duration)) => {}
            _ = term.recv() => {}
        }
        Ok::<_, std::io::Error>(())
    })?;
    let ticks = cpu_ticks();
    if let Some(s) = siem {
        let stats = s.stats();
        let verdicts: u64 = stats.engine.rules.iter().map(|r| r.hits).sum();
        println!("engine events={} rule_hits={verdicts}", stats.engine.events);
        // Whether the sink kept up: events it was handed vs written vs dropped (a full queue
        // means the run measured dropping, not writing).
        for k in &stats.pipeline.sinks {
            println!(
                "sink {} emitted={} delivered={} buffered={} dropped={:?}",
                k.name, k.emitted, k.delivered, k.buffered, k.dropped
            );
        }
        s.shutdown(Duration::from_secs(2));
    }
    println!("done cpu_ticks={ticks}");
    Ok(())
}
