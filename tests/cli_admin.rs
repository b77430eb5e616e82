//! `tower-siem offenders | explain | block | unblock | allow` against a real server on
//! 127.0.0.1 serving the admin API.
#![cfg(all(feature = "cli", feature = "dashboard"))]

use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Output};

use axum::routing::get;
use axum::Router;
use tower_siem::engine::EntityKey;
use tower_siem::{Action, Siem, Subject};

const TOKEN: &str = "cli-test-token-0123456789abcdef";

/// Serves `siem`'s admin API at `/_siem` on a free port; its base URL.
async fn serve(siem: &Siem) -> String {
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(siem.layer())
        .nest("/_siem", siem.admin_router(TOKEN).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}/_siem")
}

async fn tower_siem(url: &str, token: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tower-siem"));
    cmd.args(args)
        .env("TOWER_SIEM_URL", url)
        .env("TOWER_SIEM_ADMIN_TOKEN", token);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_drive_a_running_application() {
    let siem = Siem::builder().build().unwrap();
    let url = serve(&siem).await;
    let ip: IpAddr = "203.0.113.7".parse().unwrap();

    let empty = tower_siem(&url, TOKEN, &["offenders"]).await;
    assert!(empty.status.success(), "{empty:?}");
    assert_eq!(stdout(&empty).trim(), "no offenders");

    let block = tower_siem(&url, TOKEN, &["block", "ip:203.0.113.7", "--for", "1h"]).await;
    assert!(block.status.success(), "{block:?}");
    assert!(
        stdout(&block).contains("action: block"),
        "{}",
        stdout(&block)
    );
    assert_eq!(siem.verdict_for(&Subject::ip(ip)).action, Action::Block);

    let table = tower_siem(&url, TOKEN, &["offenders"]).await;
    let text = stdout(&table);
    assert!(text.starts_with("ENTITY"), "{text}");
    assert!(
        text.contains("ip:203.0.113.7") && text.contains("block"),
        "{text}"
    );

    let json = tower_siem(&url, TOKEN, &["offenders", "--output", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(v[0]["entity"], "ip:203.0.113.7");

    let unblock = tower_siem(&url, TOKEN, &["unblock", "ip:203.0.113.7"]).await;
    assert!(unblock.status.success());
    assert_eq!(siem.verdict_for(&Subject::ip(ip)).action, Action::Allow);

    // A network, percent-encoded on the way.
    let allow = tower_siem(
        &url,
        TOKEN,
        &["allow", "net:198.51.100.0/24", "--for", "7d"],
    )
    .await;
    assert!(allow.status.success(), "{allow:?}");
    let net = EntityKey::parse("net:198.51.100.0/24").unwrap();
    assert!(siem.explain(&net).is_some());

    let explain = tower_siem(&url, TOKEN, &["explain", "net:198.51.100.0/24"]).await;
    assert!(
        stdout(&explain).contains("state:  allowed"),
        "{}",
        stdout(&explain)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_say_what_went_wrong_and_never_show_the_token() {
    let siem = Siem::builder().build().unwrap();
    let url = serve(&siem).await;

    let wrong = tower_siem(&url, "not-the-token-0123456789", &["offenders"]).await;
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("not-the-token"), "{err}");

    let unknown = tower_siem(&url, TOKEN, &["explain", "ip:192.0.2.1"]).await;
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("404"));

    let bad = tower_siem(&url, TOKEN, &["block", "ip:192.0.2.1", "--for", "forever"]).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("400"));

    let nobody = tower_siem("http://127.0.0.1:9/_siem", TOKEN, &["offenders"]).await;
    assert!(!nobody.status.success());
    assert!(!String::from_utf8_lossy(&nobody.stderr).is_empty());
}
