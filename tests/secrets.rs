//! Secrets never leave: hundreds of planted secrets, under the parameter names real
//! applications use, in query strings (`&` and `;`), in the path segments of reset, verify,
//! invite and unsubscribe links, in `Referer` headers, as JWTs and cloud keys under innocent
//! names, and inside SQLi payloads that make a signature fire. None may reach the JSONL file,
//! the SQLite files, `offenders()`, an alert, or a triage report over the same requests.
#![cfg(feature = "sqlite")]

mod common;

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use common::{req, TestApp};
use tower_siem::event::HttpInfo;
use tower_siem::sink::{JsonlSink, SqliteSink};
use tower_siem::Event;

/// A small deterministic generator: the values look random, and a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX: &[u8] = b"0123456789abcdef";
const DIGITS: &[u8] = b"0123456789";

/// Parameter names real applications, frameworks and providers put secrets under.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "new_password",
    "newPassword",
    "current_password",
    "old_password",
    "confirm_password",
    "password_confirmation",
    "password2",
    "temp_password",
    "one_time_password",
    "user[password]",
    "user.password",
    "login[password]",
    "passphrase",
    "passcode",
    "pin",
    "pin_code",
    "account[pin]",
    "client_secret",
    "clientSecret",
    "secret",
    "api_secret",
    "app_secret",
    "consumer_secret",
    "webhook_secret",
    "api_key",
    "apiKey",
    "apikey",
    "x-api-key",
    "key",
    "secret_key",
    "signing_key",
    "private_key",
    "access_key",
    "AWSAccessKeyId",
    "Key-Pair-Id",
    "access_token",
    "access-token",
    "accessToken",
    "refresh_token",
    "id_token",
    "auth_token",
    "authToken",
    "token",
    "reset_token",
    "private_token",
    "invite_token",
    "confirmation_token",
    "unsubscribe_token",
    "magic_link_token",
    "oauth_token",
    "oauth_verifier",
    "code_verifier",
    "csrf_token",
    "_csrf",
    "authenticity_token",
    "session_id",
    "sessionid",
    "sessionToken",
    "session",
    "JSESSIONID",
    "PHPSESSID",
    "sid",
    "jwt",
    "credential",
    "credentials",
    "otp",
    "totp",
    "otp_code",
    "mfa_code",
    "2fa_code",
    "sms_code",
    "verification_code",
    "invitation_code",
    "code",
    "auth",
    "authorization",
    "signature",
    "sig",
    "hash",
    "hmac",
    "nonce",
    "ticket",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
    "SAMLResponse",
    "SAMLart",
    "cvv",
    "card_cvc",
    "ssn",
];

/// Links whose path carries a token.
const LINKS: &[&str] = &[
    "/reset/{}",
    "/password/reset/{}",
    "/reset-password/{}",
    "/accounts/reset/MQ/{}/",
    "/users/password/edit/{}",
    "/verify/{}",
    "/verify-email/{}",
    "/email/verify/{}",
    "/invite/{}",
    "/invitations/{}/accept",
    "/unsubscribe/{}",
    "/newsletter/unsubscribe/u42/{}",
    "/confirm/{}",
    "/users/confirmation/{}",
    "/activate/{}",
    "/account/activation/{}",
    "/magic-link/{}",
    "/auth/magic/{}",
    "/login/{}",
    "/api/tokens/{}",
    "/recover/{}",
    "/claim/{}",
    "/password/{}",
    "/share/{}",
    "/sso/saml/{}",
    "/oauth/callback/{}",
    "/Reset/{}",
    "/VERIFY/{}",
    "/en/reset/{}/",
    "/shop;jsessionid={}/cart",
];

/// `Referer` values (the page the client came from).
const REFERERS: &[&str] = &[
    "https://shop.example/reset/{}?lang=en",
    "https://shop.example/login?next=%2F&password={}",
    "https://app.example/callback?code={}&state=xyz",
    "https://bob:{}@shop.example/",
    "https://shop.example/verify?token={}",
    "https://shop.example/p;jsessionid={}",
    "https://app.example/oauth?scope=read;client_secret={}",
    "https://mail.example/unsubscribe/{}",
    "https://app.example/invite/{}?ref=mail",
    "https://app.example/#access_token={}",
];

/// One planted request.
struct Plant {
    method: &'static str,
    target: String,
    referer: Option<String>,
    ip: String,
    /// The planted values (several for some requests).
    secrets: Vec<String>,
    status_hint: u16,
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn plants() -> Vec<Plant> {
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let mut n = 0;
    let mut secret = |rng: &mut Rng| {
        n += 1;
        format!("s3cr3t_{n}_{}", rng.pick(ALNUM, 12))
    };
    let mut out = Vec::new();
    let mut ip_no = 0u32;
    let mut ip = || {
        ip_no += 1;
        format!(
            "10.{}.{}.{}",
            1 + ip_no / 60_000,
            (ip_no / 250) % 240,
            1 + ip_no % 250
        )
    };
    let plant = |target: String, referer: Option<String>, ip: String, secrets: Vec<String>| Plant {
        method: "GET",
        target,
        referer,
        ip,
        secrets,
        status_hint: 200,
    };

    // Query strings with `&`, then with `;`.
    for name in SECRET_NAMES {
        let s = secret(&mut rng);
        let t = format!("/search?q=shoes&{}={s}&page=2", enc(name));
        out.push(plant(t, None, ip(), vec![s]));
        let s = secret(&mut rng);
        let t = format!("/search?q=boots;{}={s};sort=asc", enc(name));
        out.push(plant(t, None, ip(), vec![s]));
    }
    // Reset, verify, invite, unsubscribe… links.
    for link in LINKS {
        let s = secret(&mut rng);
        out.push(plant(link.replace("{}", &s), None, ip(), vec![s]));
    }
    // Referers.
    for r in REFERERS {
        for _ in 0..2 {
            let s = secret(&mut rng);
            out.push(plant(
                "/account".into(),
                Some(r.replace("{}", &s)),
                ip(),
                vec![s],
            ));
        }
    }
    // Provider keys and tokens under innocent names, in queries, paths and referers.
    let innocent = ["view", "ref", "q", "data", "next", "utm_content", "x", "id"];
    for i in 0..48usize {
        let v = match i % 8 {
            0 => format!(
                "eyJ{}.eyJ{}.{}",
                rng.pick(B64URL, 20),
                rng.pick(B64URL, 40),
                rng.pick(B64URL, 43)
            ),
            1 => format!("AKIA{}", rng.pick(UPPER_DIGITS, 16)),
            2 => format!("ghp_{}", rng.pick(ALNUM, 36)),
            3 => format!(
                "xoxb-{}-{}-{}",
                rng.pick(DIGITS, 11),
                rng.pick(DIGITS, 12),
                rng.pick(ALNUM, 24)
            ),
            4 => format!("sk_live_{}", rng.pick(ALNUM, 24)),
            5 => format!("AIza{}", rng.pick(B64URL, 35)),
            6 => rng.pick(HEX, 40),
            // Base64url with all three classes, as random tokens of this length have.
            _ => format!("A1b{}", rng.pick(B64URL, 40)),
        };
        let name = innocent[i % innocent.len()];
        let (target, referer) = match (i / 8) % 3 {
            0 => (format!("/products/7?{name}={v}"), None),
            1 => (format!("/files/{v}/download"), None),
            _ => (
                "/account".to_owned(),
                Some(format!("https://partner.example/landing?{name}={v}")),
            ),
        };
        out.push(plant(target, referer, ip(), vec![v]));
    }
    // SQL injection inside secret parameters: the sqli pack fires and keeps a sample. Few
    // addresses, so they become offenders and alerts rise.
    let names = [
        "password",
        "new_password",
        "passcode",
        "token",
        "client_secret",
    ];
    for i in 0..25usize {
        let s = secret(&mut rng);
        let payload = match i % 3 {
            0 => format!("' OR '{s}'='{s}"),
            1 => format!("{s}' OR '1'='1"),
            _ => format!("x' OR {s} LIKE '%"),
        };
        let name = names[i % names.len()];
        let sep = if i % 2 == 0 { "&" } else { ";" };
        let t = format!("/search?q=shoes{sep}{name}={}", enc(&payload));
        out.push(plant(t, None, format!("203.0.113.{}", 10 + i % 4), vec![s]));
    }
    // A path payload in a reset link.
    for i in 0..5usize {
        let s = secret(&mut rng);
        let t = format!("/reset/{s}{}", enc("<script>alert(1)</script>"));
        let mut p = plant(t, None, format!("198.51.100.{}", 20 + i), vec![s]);
        p.status_hint = 404;
        out.push(p);
    }
    // A login form posted with secrets in the query, as some clients do.
    for _ in 0..5 {
        let (a, b) = (secret(&mut rng), secret(&mut rng));
        let mut p = plant(
            format!("/login?user=alice&password={a};otp={b}"),
            None,
            ip(),
            vec![a, b],
        );
        p.method = "POST";
        out.push(p);
    }
    out
}

/// Secrets an application puts in its own events ([`Siem::fire`]): attributes under the
/// names above, links with tokens in an attribute, and a request line the application
/// described itself. Not sent as requests: `target` says which event carries them.
fn app_event_plants() -> Vec<(Plant, Event)> {
    let mut rng = Rng(0x0a99_e7e7_5eed_0042);
    let mut n = 0;
    let mut secret = |rng: &mut Rng| {
        n += 1;
        format!("appS3cr3t_{n}_{}", rng.pick(ALNUM, 12))
    };
    let plant = |what: String, secrets: Vec<String>| Plant {
        method: "EVENT",
        target: what,
        referer: None,
        ip: "198.51.100.77".into(),
        secrets,
        status_hint: 0,
    };
    let mut out = Vec::new();
    for name in SECRET_NAMES {
        let v = secret(&mut rng);
        let e = Event::new("auth.password_changed")
            .user("alice")
            .attr("reason", "user request")
            .attr(*name, v.as_str());
        out.push((plant(format!("attr {name}"), vec![v]), e));
    }
    for link in LINKS {
        let v = secret(&mut rng);
        let e = Event::new("auth.reset_requested")
            .user("bob")
            .attr("link", link.replace("{}", &v));
        out.push((plant(format!("link attr {link}"), vec![v]), e));
    }
    let (p, q) = (secret(&mut rng), secret(&mut rng));
    let mut e = Event::new("auth.reset_used").user("carol");
    e.http = Some(HttpInfo {
        method: "POST".into(),
        path: format!("/reset/{p}"),
        query: Some(format!("new_password={q}&next=/home")),
        ..HttpInfo::default()
    });
    out.push((plant("http of an app event".into(), vec![p, q]), e));
    out
}

/// The planted values found in `text`, listed on stderr (the first few); the count.
fn leaks(what: &str, text: &str, plants: &[Plant]) -> usize {
    let mut leaked = Vec::new();
    for p in plants {
        for s in &p.secrets {
            if text.contains(s.as_str()) {
                leaked.push(format!("  {s} (from {} {:?})", p.target, p.referer));
            }
        }
    }
    if !leaked.is_empty() {
        eprintln!("{what}: {} leaked, e.g.:", leaked.len());
        for l in leaked.iter().take(8) {
            eprintln!("{l}");
        }
    }
    leaked.len()
}

/// Every file of the SQLite database (main file, WAL, shared memory), as raw bytes.
fn sqlite_bytes(dir: &Path) -> String {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("events.db")
        {
            all.extend(std::fs::read(&p).unwrap());
        }
    }
    assert!(!all.is_empty(), "the database was written");
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_reach_no_sink_and_no_report() {
    let plants = plants();
    let planted: usize = plants.iter().map(|p| p.secrets.len()).sum();
    assert!(planted >= 200, "planted {planted}");
    let mut distinct: Vec<&String> = plants.iter().flat_map(|p| &p.secrets).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), planted, "the planted values are distinct");

    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("events.jsonl");
    let db = dir.path().join("events.db");
    let (j, s) = (
        JsonlSink::new(&jsonl),
        SqliteSink::new(&db).with_unbounded_retention(),
    );
    let app = TestApp::with(|b| b.sink(j).sink(s), |l| l.session_cookie("sid"));

    for p in &plants {
        let mut r = req(p.method, &p.target, &p.ip);
        if let Some(referer) = &p.referer {
            r = r.header("referer", referer.as_str());
        }
        let res = app.send(r.body(Body::empty()).unwrap()).await;
        assert!(res.status().as_u16() < 500, "{} {}", res.status(), p.target);
        app.clock.advance(Duration::from_millis(200));
    }

    let app_plants = app_event_plants();
    for (_, event) in &app_plants {
        app.siem.fire(event.clone());
    }
    let (app_plants, _): (Vec<Plant>, Vec<Event>) = app_plants.into_iter().unzip();
    let planted = planted + app_plants.iter().map(|p| p.secrets.len()).sum::<usize>();

    let offenders = serde_json::to_string(&app.siem.offenders()).unwrap();
    assert!(
        app.siem.flush(Duration::from_secs(20)),
        "the sinks caught up"
    );
    app.siem.shutdown(Duration::from_secs(10));

    // The requests were recorded and the attacks seen, so the checks below mean something.
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let http = text
        .lines()
        .filter(|l| l.contains("\"http.request\""))
        .count();
    assert_eq!(http, plants.len(), "every planted request was recorded");
    let fired = text
        .lines()
        .filter(|l| l.contains("\"auth.password_changed\"") || l.contains("\"auth.reset_"))
        .count();
    assert_eq!(
        fired,
        app_plants.len(),
        "every application event was recorded"
    );

    assert!(
        offenders.contains("sqli"),
        "the sqli pack fired: {offenders}"
    );
    let alerts: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"siem.alert\""))
        .collect();
    assert!(!alerts.is_empty(), "alerts were raised");

    // A value counts once, however many places it leaked to.
    #[cfg_attr(not(feature = "cli"), allow(unused_mut))]
    let mut all = vec![
        ("JSONL file", text.clone()),
        ("SQLite files", sqlite_bytes(dir.path())),
        ("offenders()", offenders.clone()),
        ("alerts", alerts.join("\n")),
    ];
    #[cfg(feature = "cli")]
    all.extend(triage::reports(&plants, dir.path()));
    let plants: Vec<Plant> = plants.into_iter().chain(app_plants).collect();
    for (what, text) in &all {
        leaks(what, text, &plants);
    }
    let everything: String = all.iter().map(|(_, t)| t.as_str()).collect();
    let leaked = leaks("any sink or report", &everything, &plants);
    println!("planted {planted}, leaked {leaked}");
    assert_eq!(leaked, 0, "planted {planted}, leaked {leaked}");
    // The samples of the injections were masked, not dropped.
    assert!(offenders.contains("[REDACTED]"), "{offenders}");
}

#[cfg(feature = "cli")]
mod triage {
    use super::*;
    use std::process::Command;

    const BIN: &str = env!("CARGO_BIN_EXE_tower-siem");
    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

    /// The same requests as an access log, replayed by `tower-siem triage` (JSON report and
    /// NDJSON events).
    pub(super) fn reports(plants: &[Plant], dir: &Path) -> Vec<(&'static str, String)> {
        let mut log = String::new();
        for (i, p) in plants.iter().enumerate() {
            let secs = i as u32;
            log.push_str(&format!(
                "{} - - [01/Jan/2024:{:02}:{:02}:{:02} +0000] \"{} {} HTTP/1.1\" {} 512 \"{}\" \"{CHROME}\"\n",
                p.ip,
                secs / 3600,
                (secs / 60) % 60,
                secs % 60,
                p.method,
                p.target,
                p.status_hint,
                p.referer.as_deref().unwrap_or("-"),
            ));
        }
        let path = dir.join("access.log");
        std::fs::write(&path, log).unwrap();
        let mut reports = Vec::new();
        for output in ["json", "ndjson", "table"] {
            let out = Command::new(BIN)
                .args(["triage", path.to_str().unwrap(), "--output", output])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.code().is_some_and(|c| c <= 1),
                "{output}: {:?} {stderr}",
                out.status
            );
            assert!(!stdout.is_empty(), "{output}: a report");
            if output == "json" {
                assert!(stdout.contains("sqli"), "the sqli pack fired: {stdout}");
            }
            let what = match output {
                "json" => "triage json report",
                "ndjson" => "triage ndjson events",
                _ => "triage table",
            };
            reports.push((what, format!("{stdout}\n{stderr}")));
        }
        reports
    }
}
