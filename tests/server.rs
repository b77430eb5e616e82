//! Over a real socket: an axum server and a plain hyper server behind the layer, driven by a
//! real HTTP client.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};
use tower_siem::{
    Action, Event, PeerAddr, SecurityContext, Siem, SiemLayer, SiemService, Subject, Verdict,
};

// The handle, the layer, the service and what handlers hold can cross threads.
const _: () = {
    fn send_sync<T: Send + Sync>() {}
    fn all() {
        send_sync::<Siem>();
        send_sync::<SiemLayer>();
        send_sync::<SiemService<axum::Router>>();
        send_sync::<SecurityContext>();
        send_sync::<Verdict>();
        send_sync::<Event>();
    }
    let _ = all;
};

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
const SCANNER: &str = "sqlmap/1.8.3#stable (https://sqlmap.org)";

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Bounds a whole test: a hang is a failure, not a stuck CI job.
async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the test finished within 60 s");
}

/// Serves the layered login app from tests/common on 127.0.0.1, with the socket peer.
async fn serve(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(client: &HttpClient, req: Request<Full<Bytes>>) -> Reply {
    let res = client.request(req).await.expect("the server answers");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(client: &HttpClient, addr: SocketAddr, path: &str, ua: &str) -> Reply {
    let req = Request::get(format!("http://{addr}{path}"))
        .header("user-agent", ua)
        .body(Full::default())
        .unwrap();
    send(client, req).await
}

async fn login(client: &HttpClient, addr: SocketAddr, user: &str, password: &str) -> Reply {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let req = Request::post(format!("http://{addr}/login"))
        .header("user-agent", BROWSER)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    send(client, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_over_tcp_is_stepped_up_then_blocked() {
    bounded(async {
        let app = common::TestApp::new();
        let addr = serve(app.router.clone()).await;
        let client = client();

        let mut tagged_after = None;
        for i in 1..=10 {
            let res = login(&client, addr, "alice", &format!("guess{i}")).await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "failure {i}");
            let res = login(&client, addr, "alice", "wonderland").await;
            if let Some(tag) = res.headers.get("x-step-up-required") {
                assert!(!tag.is_empty());
                assert_eq!(res.status, StatusCode::UNAUTHORIZED);
                assert_eq!(res.body, r#"{"step_up":"required"}"#);
                tagged_after = Some(i);
                break;
            }
            assert_eq!(
                res.status,
                StatusCode::OK,
                "after {i} failures: {}",
                res.body
            );
        }
        let n = tagged_after.expect("a correct login is stepped up within 10 failures");
        println!("stepped up after {n} failures");

        let mut blocked = false;
        for i in 0..60 {
            let before = app.calls();
            let res = login(&client, addr, "alice", &format!("again{i}")).await;
            match res.status {
                StatusCode::FORBIDDEN => {
                    assert_eq!(app.calls(), before, "no handler call for a blocked client");
                    assert_eq!(res.body, r#"{"error":"forbidden"}"#);
                    blocked = true;
                    break;
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    assert_eq!(
                        app.calls(),
                        before,
                        "no handler call for a throttled client"
                    );
                    assert!(res.headers.contains_key("retry-after"));
                }
                s => assert_eq!(s, StatusCode::UNAUTHORIZED),
            }
        }
        assert!(blocked, "continued failures end in a 403");
        let before = app.calls();
        let res = get(&client, addr, "/account", BROWSER).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert_eq!(app.calls(), before);
        let v = app
            .siem
            .verdict_for(&Subject::ip("127.0.0.1".parse().unwrap()));
        assert_eq!(v.action, Action::Block, "{v:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanner_is_blocked_on_its_first_request_over_tcp() {
    bounded(async {
        let app = common::TestApp::new();
        let addr = serve(app.router.clone()).await;
        let client = client();
        let res = get(&client, addr, "/", BROWSER).await;
        assert_eq!(res.status, StatusCode::OK);
        let before = app.calls();
        let res = get(&client, addr, "/", SCANNER).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert_eq!(res.headers["content-type"], "application/json");
        assert_eq!(app.calls(), before, "the handler did not run");
    })
    .await;
}

/// A plain hyper server (no axum): each connection's service is the layer over a
/// `service_fn`, with the socket peer put in the request extensions as [`PeerAddr`].
async fn serve_plain_hyper(siem: Siem, calls: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let calls = calls.clone();
            let inner = tower::service_fn(move |_req: Request<Incoming>| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello")))) }
            });
            let svc = ServiceBuilder::new()
                .map_request(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(PeerAddr(peer));
                    req
                })
                .layer(siem.layer())
                .service(inner);
            let hyper_svc =
                hyper::service::service_fn(move |req: Request<Incoming>| svc.clone().oneshot(req));
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper_svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_hyper_service_blocks_a_scanner() {
    bounded(async {
        let siem = Siem::builder().build().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let addr = serve_plain_hyper(siem.clone(), calls.clone()).await;
        let client = client();

        let res = get(&client, addr, "/", BROWSER).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body, "hello");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let res = get(&client, addr, "/", SCANNER).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert_eq!(res.body, r#"{"error":"forbidden"}"#);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the service did not run");
        // The peer reached the layer: the scanner's address itself is now blocked.
        let res = get(&client, addr, "/", BROWSER).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let v = siem.verdict_for(&Subject::ip("127.0.0.1".parse().unwrap()));
        assert_eq!(v.action, Action::Block, "{v:?}");
        assert!(v.reasons.contains(&"sig.scanner_ua".to_owned()), "{v:?}");
    })
    .await;
}
