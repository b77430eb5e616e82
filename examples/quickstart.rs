//! The tower-siem demo: a login app that defends itself.
//!
//! ```text
//! cargo run --example quickstart            # listens on 127.0.0.1:3000 (PORT overrides)
//! ```
//!
//! The admin API and its dashboard are mounted at `/_siem` (see the startup line for the
//! token; set `TOWER_SIEM_ADMIN_TOKEN` to choose it): open http://127.0.0.1:3000/_siem/ in a
//! browser and paste the token.
//!
//! Several replicas sharing their blocks, allows, scores and rule windows through Redis (a
//! guessing run spread over them is judged as by one process; each has its own event files,
//! named after its port):
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 PORT=3001 cargo run --example quickstart
//! REDIS_URL=redis://127.0.0.1:6379 PORT=3002 cargo run --example quickstart
//! ```
//!
//! Demo users: `alice` / `wonderland`, `bob` / `builder`. `GET /` explains what to try.
//!
//! Every event is stored in a SQLite file in the temp directory (the startup line says
//! where), and also written as JSON lines next to it. Query the store while the demo runs:
//!
//! ```text
//! cargo run --features cli --bin tower-siem -- events --db /tmp/tower-siem-quickstart.db --since 10m
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::Deserialize;
use tower_siem::event::SharedEvent;
use tower_siem::sink::{BoxFuture, JsonlSink, Sink, SinkError, SqliteSink};
use tower_siem::{Action, Event, SecurityContext, Siem};

const USERS: &[(&str, &str)] = &[("alice", "wonderland"), ("bob", "builder")];

/// Prints every event that changed something: a step-up, a throttle or a block.
struct PrintDetections;

impl Sink for PrintDetections {
    fn name(&self) -> &str {
        "console"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        for e in batch {
            let Some(v) = e.verdict.as_ref().filter(|v| v.action > Action::Allow) else {
                continue;
            };
            let who = match (&e.subject.ip, &e.subject.user) {
                (Some(ip), Some(u)) => format!("{ip} as {u}"),
                (Some(ip), None) => ip.to_string(),
                (None, Some(u)) => u.clone(),
                (None, None) => "?".into(),
            };
            let what = e.http.as_ref().map_or(String::new(), |h| {
                format!(
                    " {} {}{}",
                    h.method,
                    h.path,
                    h.status.map_or(String::new(), |s| format!(" -> {s}"))
                )
            });
            println!(
                "[tower-siem] {:<8} {:<9} {who}{what}  (score {:.0}: {})",
                e.name,
                v.action,
                v.score,
                v.reasons.join(", ")
            );
        }
        Box::pin(async { Ok(()) })
    }
}

#[derive(Clone)]
struct AppState {
    siem: Siem,
    /// session id → user
    sessions: Arc<Mutex<Vec<(String, String)>>>,
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

fn json(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn login(State(st): State<AppState>, ctx: SecurityContext, Json(l): Json<Login>) -> Response {
    let ok = USERS
        .iter()
        .any(|(u, p)| *u == l.username && *p == l.password);
    if !ok {
        ctx.fire(Event::new("auth.failure").user(&l.username));
        return json(StatusCode::UNAUTHORIZED, r#"{"ok":false}"#);
    }
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let verdict = ctx.fire(
        Event::new("auth.success")
            .user(&l.username)
            .session(st.siem.redactor().hash_id(&sid)),
    );
    if verdict.is_suspicious() || ctx.step_up_required() {
        // The password was right, but this account or client is under suspicion: a real app
        // would now ask for a second factor. The layer adds `X-Step-Up-Required` itself.
        return json(StatusCode::UNAUTHORIZED, r#"{"step_up":"required"}"#);
    }
    st.sessions.lock().push((sid.clone(), l.username));
    let cookie = format!("sid={sid}; HttpOnly; SameSite=Strict; Path=/");
    (
        StatusCode::OK,
        [
            (header::SET_COOKIE, cookie),
            (header::CONTENT_TYPE, "application/json".into()),
        ],
        r#"{"ok":true}"#,
    )
        .into_response()
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("sid=").map(str::to_owned))
}

async fn logout(State(st): State<AppState>, ctx: SecurityContext, headers: HeaderMap) -> Response {
    if let Some(sid) = session_of(&headers) {
        let mut sessions = st.sessions.lock();
        if let Some(i) = sessions.iter().position(|(s, _)| *s == sid) {
            let (_, user) = sessions.remove(i);
            ctx.fire(Event::new("auth.logout").user(user));
        }
    }
    json(StatusCode::OK, r#"{"ok":true}"#)
}

async fn account(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let user = session_of(&headers).and_then(|sid| {
        st.sessions
            .lock()
            .iter()
            .find(|(s, _)| *s == sid)
            .map(|(_, u)| u.clone())
    });
    match user {
        Some(u) => Json(serde_json::json!({ "user": u })).into_response(),
        None => json(StatusCode::UNAUTHORIZED, r#"{"error":"log in first"}"#),
    }
}

async fn offenders(State(st): State<AppState>) -> Response {
    Json(st.siem.offenders()).into_response()
}

async fn index() -> &'static str {
    r#"tower-siem quickstart: this app defends itself.

Users: alice / wonderland, bob / builder.

  curl -i -X POST localhost:3000/login -H 'content-type: application/json' \
       -d '{"username":"alice","password":"wonderland"}'        # 200 {"ok":true}

Fail alice's password five times, then log in with the right one: 401 {"step_up":"required"}
and an X-Step-Up-Required header, because the account is under attack.

  curl -i localhost:3000/ -A 'sqlmap/1.7'                         # 403: attack tool, blocked
  curl -i localhost:3000/.env                                     # probing: blocked after a few

  curl -s localhost:3000/offenders                                # who is flagged, and why
"#
}

/// The store of a replica: decisions, scores and rule windows shared through the Redis at
/// `url`.
#[cfg(feature = "redis")]
async fn shared_store(
    url: &str,
) -> Result<tower_siem::store::RedisStore, Box<dyn std::error::Error>> {
    let store = tower_siem::store::RedisStore::builder(url)
        .namespace("quickstart")
        .share_windows(true)
        .build()?;
    if store.synced(Duration::from_secs(2)).await {
        println!("decisions and rule windows: shared with every replica through {url}");
    } else {
        println!("decisions: {url} does not answer yet; deciding alone until it does");
    }
    Ok(store)
}

#[cfg(not(feature = "redis"))]
async fn shared_store(
    _url: &str,
) -> Result<tower_siem::store::MemoryStore, Box<dyn std::error::Error>> {
    Err(
        "REDIS_URL is set but this build has no `redis` feature: run with `--features redis`"
            .into(),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let redis = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty());
    // Replicas on one machine keep their own event files.
    let stem = match redis {
        Some(_) => format!("tower-siem-quickstart-{port}"),
        None => "tower-siem-quickstart".to_owned(),
    };
    let events = std::env::temp_dir().join(format!("{stem}.jsonl"));
    let db = std::env::temp_dir().join(format!("{stem}.db"));
    let mut builder = Siem::builder();
    if let Some(url) = &redis {
        builder = builder.store(shared_store(url).await?);
    }
    let siem = builder
        .sink(SqliteSink::new(&db))
        .sink(JsonlSink::new(&events))
        .sink(PrintDetections)
        .build()?;
    let _guard = siem.guard(Duration::from_secs(5));

    let state = AppState {
        siem: siem.clone(),
        sessions: Arc::default(),
    };
    let admin_token = std::env::var("TOWER_SIEM_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let app = Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/account", get(account))
        .route("/offenders", get(offenders))
        .with_state(state)
        // The demo's offender list stays reachable even from a blocked client; a real app
        // would put it behind authentication.
        .layer(siem.layer().session_cookie("sid").exclude("/offenders"))
        // The admin API and dashboard, outside the layer, behind its token; events read from
        // the SQLite file. `nest_service` rather than `nest`: it routes `/_siem/` as well as
        // `/_siem`.
        .nest_service(
            "/_siem",
            siem.admin(admin_token.clone()).events(&db).router()?,
        );

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("tower-siem quickstart on http://127.0.0.1:{port}/");
    println!(
        "events: SQLite store {} (also {})",
        db.display(),
        events.display()
    );
    println!(
        "query:  cargo run --features cli --bin tower-siem -- events --db {} --since 10m",
        db.display()
    );
    println!("try:    curl localhost:{port}/");
    println!(
        "admin:  curl -H 'Authorization: Bearer {admin_token}' localhost:{port}/_siem/api/offenders"
    );
    println!(
        "feed:   curl -N -H 'Authorization: Bearer {admin_token}' localhost:{port}/_siem/api/feed"
    );
    println!("dashboard: http://127.0.0.1:{port}/_siem/ (log in with the token above)");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    let stats = siem.shutdown(Duration::from_secs(5));
    for s in stats.sinks {
        println!(
            "{}: {} events, {} delivered, {} dropped",
            s.name,
            s.emitted,
            s.delivered,
            s.dropped.total()
        );
    }
    Ok(())
}
