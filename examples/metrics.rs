//! Prometheus metrics for a protected app, on a port of their own.
//!
//! ```text
//! cargo run --example metrics --features metrics
//! curl -s localhost:3000/login -d '{"username":"alice","password":"guess"}' -H 'content-type: application/json'
//! curl -s localhost:9000/metrics | grep tower_siem_
//! ```
//!
//! The app listens on 127.0.0.1:3000 (`PORT`), the metrics on 127.0.0.1:9000 (`METRICS_PORT`),
//! so the scrape endpoint is neither behind the SIEM nor reachable from the public side.
//! Events also go to an ECS-formatted JSON-lines file in the temporary directory.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde::Deserialize;
use tower_siem::format::Format;
use tower_siem::sink::JsonlSink;
use tower_siem::{Event, SecurityContext, Siem};

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(ctx: SecurityContext, Json(form): Json<Login>) -> (StatusCode, &'static str) {
    if form.username != "alice" || form.password != "wonderland" {
        ctx.fire(Event::new("auth.failure").user(&form.username));
        return (StatusCode::UNAUTHORIZED, "wrong password\n");
    }
    if ctx
        .fire(Event::new("auth.success").user(&form.username))
        .is_suspicious()
    {
        return (StatusCode::UNAUTHORIZED, "second factor required\n");
    }
    (StatusCode::OK, "welcome\n")
}

fn port(var: &str, default: u16) -> u16 {
    std::env::var(var)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Install the recorder before anything records; without one, tower-siem's calls are no-ops.
    let prometheus = PrometheusBuilder::new().install_recorder()?;

    let events = std::env::temp_dir().join("tower-siem-metrics-example.jsonl");
    let siem = Siem::builder()
        .sink(JsonlSink::new(&events).format(Format::Ecs))
        .build()?;
    let _guard = siem.guard(Duration::from_secs(5));

    let app = Router::new()
        .route("/", get(|| async { "POST /login to try\n" }))
        .route("/login", post(login))
        .layer(siem.layer());

    let metrics = Router::new().route(
        "/metrics",
        get({
            let siem = siem.clone();
            move || async move {
                // Copies the exact stats (store size, rule hits, sink accounting) in first.
                tower_siem::metrics::record(&siem);
                prometheus.render()
            }
        }),
    );

    let app_listener = tokio::net::TcpListener::bind(("127.0.0.1", port("PORT", 3000))).await?;
    let metrics_listener =
        tokio::net::TcpListener::bind(("127.0.0.1", port("METRICS_PORT", 9000))).await?;
    println!(
        "app on http://{}/, metrics on http://{}/metrics, events in {}",
        app_listener.local_addr()?,
        metrics_listener.local_addr()?,
        events.display()
    );
    let app_server = axum::serve(
        app_listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    let metrics_server = axum::serve(metrics_listener, metrics).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    tokio::try_join!(async { app_server.await }, async { metrics_server.await })?;
    Ok(())
}
