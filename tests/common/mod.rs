//! A small login app behind the layer, driven through `oneshot`, shared by the tests.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{Request, Response, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::ServiceExt;
use tower_siem::engine::ManualClock;
use tower_siem::{Event, SecurityContext, Siem, SiemLayer};

pub const USERS: &[(&str, &str)] = &[("alice", "wonderland"), ("bob", "builder")];

#[derive(Clone)]
pub struct AppState {
    pub calls: Arc<AtomicUsize>,
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(
    State(st): State<AppState>,
    ctx: SecurityContext,
    Json(l): Json<Login>,
) -> (StatusCode, String) {
    st.calls.fetch_add(1, Ordering::SeqCst);
    let ok = USERS
        .iter()
        .any(|(u, p)| *u == l.username && *p == l.password);
    if !ok {
        ctx.fire(Event::new("auth.failure").user(&l.username));
        return (StatusCode::UNAUTHORIZED, r#"{"ok":false}"#.into());
    }
    if ctx
        .fire(Event::new("auth.success").user(&l.username))
        .is_suspicious()
    {
        return (StatusCode::UNAUTHORIZED, r#"{"step_up":"required"}"#.into());
    }
    (StatusCode::OK, r#"{"ok":true}"#.into())
}

#[derive(Deserialize)]
struct Search {
    q: Option<String>,
}

async fn search(State(st): State<AppState>, Query(s): Query<Search>) -> String {
    st.calls.fetch_add(1, Ordering::SeqCst);
    format!("results for {}", s.q.unwrap_or_default())
}

async fn counted(State(st): State<AppState>) -> &'static str {
    st.calls.fetch_add(1, Ordering::SeqCst);
    "ok"
}

async fn echo_step_up(State(st): State<AppState>, headers: axum::http::HeaderMap) -> String {
    st.calls.fetch_add(1, Ordering::SeqCst);
    let all: Vec<_> = headers
        .get_all("x-step-up-required")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    all.join("|")
}

async fn not_found(State(st): State<AppState>) -> StatusCode {
    st.calls.fetch_add(1, Ordering::SeqCst);
    StatusCode::NOT_FOUND
}

pub struct TestApp {
    pub siem: Siem,
    pub router: Router,
    pub calls: Arc<AtomicUsize>,
    pub clock: ManualClock,
}

impl TestApp {
    pub fn new() -> Self {
        Self::with(|b| b, |l| l)
    }

    /// An app with a manual clock; `b` adjusts the SIEM, `l` the layer.
    pub fn with(
        b: impl FnOnce(tower_siem::SiemBuilder) -> tower_siem::SiemBuilder,
        l: impl FnOnce(SiemLayer) -> SiemLayer,
    ) -> Self {
        let clock = ManualClock::new("2026-11-27T12:00:00Z".parse().unwrap());
        let siem = b(Siem::builder().clock(clock.clone())).build().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let router = router(AppState {
            calls: calls.clone(),
        })
        .layer(l(siem.layer()));
        TestApp {
            siem,
            router,
            calls,
            clock,
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub async fn send(&self, req: Request<Body>) -> Response<Body> {
        self.router.clone().oneshot(req).await.unwrap()
    }

    pub async fn get(&self, ip: &str, uri: &str) -> Response<Body> {
        self.send(req("GET", uri, ip).body(Body::empty()).unwrap())
            .await
    }

    pub async fn get_ua(&self, ip: &str, uri: &str, ua: &str) -> Response<Body> {
        let mut r = req("GET", uri, ip).body(Body::empty()).unwrap();
        r.headers_mut().insert("user-agent", ua.parse().unwrap());
        self.send(r).await
    }

    pub async fn login(&self, ip: &str, user: &str, password: &str) -> Response<Body> {
        let body = serde_json::json!({"username": user, "password": password}).to_string();
        self.send(
            req("POST", "/login", ip)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(counted))
        .route("/login", post(login))
        .route("/account", get(counted))
        .route("/healthz", get(counted))
        .route("/search", get(search))
        .route("/products/{id}", get(counted))
        .route("/echo", get(echo_step_up))
        .fallback(not_found)
        .with_state(state)
}

pub fn req(method: &str, uri: &str, ip: &str) -> axum::http::request::Builder {
    let ip: IpAddr = ip.parse().unwrap();
    Request::builder()
        .method(method)
        .uri(uri)
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36")
        .extension(ConnectInfo(SocketAddr::new(ip, 40_000)))
}

pub async fn body_text(res: Response<Body>) -> String {
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}
