//! Layer options that change what the client receives: `responder` (the denial a blocked
//! client gets) and `step_up_on_response` (whether a stepped-up response says so).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;
use tower_siem::{Action, Event, Siem, SiemLayer, Verdict};

fn app(layer: SiemLayer) -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer)
}

async fn send(app: &Router, agent: &str) -> Response<Body> {
    let req = Request::get("/")
        .header("user-agent", agent)
        .extension(ConnectInfo(SocketAddr::from(([203, 0, 113, 5], 40_000))))
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(req).await.unwrap()
}

#[tokio::test]
async fn a_custom_responder_answers_the_denied_client() {
    let siem = Siem::builder().build().unwrap();
    let seen: Arc<Mutex<Vec<Action>>> = Arc::default();
    let record = seen.clone();
    let layer = siem.layer().responder(move |v: &Verdict| {
        record.lock().unwrap().push(v.action);
        Response::builder()
            .status(StatusCode::IM_A_TEAPOT)
            .header("content-type", "text/plain")
            .body(Bytes::from_static(b"go away"))
            .unwrap()
    });
    let app = app(layer);
    let res = send(&app, "sqlmap/1.7").await;
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    assert_eq!(&body[..], b"go away");
    assert_eq!(*seen.lock().unwrap(), [Action::Block]);
    // An allowed client never meets it.
    let siem2 = Siem::builder().build().unwrap();
    let calm = Arc::new(Mutex::new(0));
    let count = calm.clone();
    let app2 = self::app(siem2.layer().responder(move |_| {
        *count.lock().unwrap() += 1;
        Response::new(Bytes::new())
    }));
    assert_eq!(send(&app2, "Mozilla/5.0").await.status(), StatusCode::OK);
    assert_eq!(*calm.lock().unwrap(), 0);
}

#[tokio::test]
async fn step_up_on_the_response_can_be_turned_off() {
    for on in [true, false] {
        let siem = Siem::builder().build().unwrap();
        // The layer learns the user from the request (as an auth layer would tell it).
        let layer = siem
            .layer()
            .user_from(|_, _| Some("bob".to_owned()))
            .step_up_on_response(on);
        let app = app(layer);
        for i in 0..6u8 {
            siem.fire(
                Event::new("auth.failure")
                    .user("bob")
                    .ip(format!("10.9.{i}.1").parse().unwrap()),
            );
        }
        let res = send(&app, "Mozilla/5.0").await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "a step-up lets the request through"
        );
        assert_eq!(
            res.headers().contains_key("x-step-up-required"),
            on,
            "step_up_on_response({on})"
        );
    }
}
