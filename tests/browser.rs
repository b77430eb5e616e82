//! The dashboard in a real browser: Debian's `chromium`, headless, driven through
//! `chromedriver` (WebDriver). The page refuses a visitor without the token, shows an attack's
//! client in the live feed and among the offenders without a reload, unblocks it with a click,
//! and draws its chart. A screenshot is written to `target/tmp/browser/dashboard.png`.
//!
//! Needs `chromium` and `chromedriver` on the `PATH` (Debian: `apt-get install chromium
//! chromium-driver`; `.ci/run` installs them): ignored by default.
#![cfg(feature = "dashboard")]

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_siem::sink::JsonlSink;
use tower_siem::Siem;

const TOKEN: &str = "browser-test-token-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(20);
const ATTACKER: &str = "203.0.113.9";

/// `chromedriver` on a free port; killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver on the PATH (Debian: apt-get install chromium-driver)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < WAIT, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1300"],
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session")
}

/// The application: a page behind the layer (which trusts the loopback proxy's
/// `X-Forwarded-For`), and the admin router mounted outside it, as the quickstart does.
async fn serve(siem: &Siem) -> SocketAddr {
    let layer = siem.layer().trusted_proxies(["127.0.0.1/32"]).unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer)
        .nest_service("/_siem", siem.admin_router(TOKEN).unwrap());
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
    addr
}

/// A request from `client` (through the trusted proxy) with `agent`; the status code.
async fn request(addr: SocketAddr, client: &str, agent: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {agent}\r\nX-Forwarded-For: {client}\r\n\
         Connection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    s.read_to_end(&mut head).await.unwrap();
    let line = String::from_utf8_lossy(&head);
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Polls `f` until it gives `Some`, at most [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver (Debian: chromium chromium-driver)"]
async fn the_dashboard_watches_an_attack_and_unblocks_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let siem = Siem::builder()
        .sink(JsonlSink::new(dir.path().join("events.jsonl")))
        .build()
        .unwrap();
    let addr = serve(&siem).await;
    let base = format!("http://{addr}/_siem/");
    let driver = Driver::start();
    let c = browser(&driver).await;

    // Without the token: the login form, and none of the dashboard.
    c.goto(&base).await.unwrap();
    c.find(Locator::Css("input[name=token]")).await.unwrap();
    assert!(c.find(Locator::Id("offenders")).await.is_err());
    let wrong = c.find(Locator::Css("input[name=token]")).await.unwrap();
    wrong.send_keys("not-the-token-0123456789").await.unwrap();
    c.find(Locator::Css("form button, form input[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("the form to refuse a wrong token", || async {
        let body = text_of(&c, "body").await;
        body.contains("Wrong token").then_some(())
    })
    .await;
    assert!(c.find(Locator::Id("offenders")).await.is_err());

    // With it: the dashboard.
    let field = c.find(Locator::Css("input[name=token]")).await.unwrap();
    field.send_keys(TOKEN).await.unwrap();
    c.find(Locator::Css("form button, form input[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Id("offenders"))
        .await
        .unwrap();
    eventually("the live feed to connect", || async {
        text_of(&c, "#feed-status")
            .await
            .starts_with("live")
            .then_some(())
    })
    .await;

    // An attack: a scanner's user agent is blocked at once; ordinary visitors pass.
    for i in 0..20 {
        assert_eq!(
            request(addr, &format!("198.51.100.{i}"), "Mozilla/5.0").await,
            200
        );
    }
    assert_eq!(request(addr, ATTACKER, "sqlmap/1.7").await, 403);
    assert_eq!(request(addr, ATTACKER, "Mozilla/5.0").await, 403);

    // Without a reload: the attacker shows in the live feed and among the offenders.
    eventually("the attacker in the live feed", || async {
        text_of(&c, "#feed tbody")
            .await
            .contains(ATTACKER)
            .then_some(())
    })
    .await;
    let row =
        format!("//table[@id='offenders']//tr[.//button[normalize-space(.)='ip:{ATTACKER}']]");
    eventually("the attacker among the offenders", || async {
        c.find(Locator::XPath(&row)).await.ok()
    })
    .await;
    // The chart has points (one a poll, every two seconds).
    eventually("the chart's points", || async {
        let e = c.find(Locator::Id("chart-eps")).await.ok()?;
        let n: usize = e.attr("data-points").await.ok()??.parse().ok()?;
        (n >= 2).then_some(())
    })
    .await;

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(shots.join("dashboard.png"), &png).unwrap();

    // Unblock from the page: the client's next request goes through.
    c.find(Locator::XPath(&format!(
        "{row}//button[normalize-space(.)='Unblock']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    eventually("the page to report the unblock", || async {
        text_of(&c, "#status")
            .await
            .contains("unblock")
            .then_some(())
    })
    .await;
    assert_eq!(request(addr, ATTACKER, "Mozilla/5.0").await, 200);
    eventually("the attacker to leave the offenders", || async {
        c.find(Locator::XPath(&row)).await.is_err().then_some(())
    })
    .await;
    c.close().await.unwrap();
}
