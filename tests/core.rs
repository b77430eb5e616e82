//! The core promises, end to end through the layer with `oneshot`.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{body_text, req, TestApp};
use tower_siem::engine::EntityKey;
use tower_siem::{Action, Event, Subject};

const ATTACKER: &str = "203.0.113.7";
const BYSTANDER: &str = "198.51.100.20";

#[tokio::test]
async fn brute_force_tags_the_account_then_blocks_the_client() {
    let app = TestApp::new();
    let mut tagged_after = None;
    for i in 1..=10 {
        let res = app.login(ATTACKER, "alice", &format!("guess{i}")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        // Would alice's next login be tagged?
        let probe = app.login("192.0.2.50", "alice", "wonderland").await;
        if probe.headers().contains_key("x-step-up-required") {
            assert_eq!(probe.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(body_text(probe).await, r#"{"step_up":"required"}"#);
            tagged_after = Some(i);
            break;
        }
        assert_eq!(probe.status(), StatusCode::OK);
    }
    let n = tagged_after.expect("alice's login is stepped up within 10 failures");
    // `auth.bruteforce.user` (4 failures in 10 minutes, score 20 each time it fires) fires at
    // the 4th and the 5th: 40, the step-up threshold.
    assert_eq!(n, 5, "stepped up after {n} failures");

    // Keep failing from the same client: it gets denied before the handler.
    let mut denied = None;
    for i in 0..40 {
        let before = app.calls();
        let res = app.login(ATTACKER, "alice", &format!("again{i}")).await;
        if res.status() == StatusCode::FORBIDDEN {
            assert_eq!(
                app.calls(),
                before,
                "the handler does not run for a blocked client"
            );
            denied = Some(i);
            break;
        }
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.headers().contains_key("retry-after"));
            assert_eq!(
                app.calls(),
                before,
                "the handler does not run for a throttled client"
            );
        }
    }
    assert!(denied.is_some(), "continued failures end in a 403");
    let before = app.calls();
    for _ in 0..5 {
        assert_eq!(
            app.get(ATTACKER, "/account").await.status(),
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(app.calls(), before);

    // Other clients and other users are untouched.
    let res = app.login(BYSTANDER, "bob", "builder").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key("x-step-up-required"));
    assert_eq!(
        app.get(BYSTANDER, "/account").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn credential_stuffing_blocks_the_client_but_not_the_accounts() {
    let app = TestApp::new();
    let mut blocked_at = None;
    for i in 0..30 {
        let res = app
            .login(ATTACKER, &format!("user{i}@example.com"), "Summer2024!")
            .await;
        if res.status() == StatusCode::FORBIDDEN {
            blocked_at = Some(i);
            break;
        }
    }
    let i = blocked_at.expect("stuffing client blocked");
    assert!(i <= 15, "blocked after {i} accounts");
    let v = app
        .siem
        .verdict_for(&Subject::ip(ATTACKER.parse().unwrap()));
    assert_eq!(v.action, Action::Block);
    assert!(v.reasons.contains(&"auth.stuffing".to_owned()), "{v:?}");
    // The accounts themselves are not locked.
    for u in 0..3 {
        let v = app
            .siem
            .verdict_for(&Subject::user(format!("user{u}@example.com")));
        assert!(v.action < Action::Throttle);
    }
    assert_eq!(
        app.login(BYSTANDER, "alice", "wonderland").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn distributed_brute_force_steps_up_the_victim_and_never_blocks_them() {
    let app = TestApp::new();
    for i in 0..60u32 {
        let ip = format!("10.{}.{}.9", i / 200 + 1, i % 200);
        for t in 0..2 {
            let res = app.login(&ip, "alice", &format!("pw{i}-{t}")).await;
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "a few tries per IP never block the IP"
            );
        }
    }
    // Right password, fresh network: stepped up, not blocked.
    let res = app.login("192.0.2.200", "alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let tag = res
        .headers()
        .get("x-step-up-required")
        .expect("tagged")
        .to_str()
        .unwrap()
        .to_owned();
    // The client learns a step-up is needed, not which rule fired.
    assert_eq!(tag, "required");
    assert_eq!(body_text(res).await, r#"{"step_up":"required"}"#);
    let v = app.siem.verdict_for(&Subject::user("alice"));
    assert!(v.reasons.iter().any(|r| r == "auth.distributed"), "{v:?}");
    assert_eq!(
        v.action,
        Action::StepUp,
        "the victim is never hard-blocked: {v:?}"
    );
    // After a second factor, alice is trusted again.
    app.siem.fire(Event::new("mfa.success").user("alice"));
    assert_eq!(
        app.siem.verdict_for(&Subject::user("alice")).action,
        Action::Allow
    );
}

#[tokio::test]
async fn attack_tools_are_blocked_on_their_first_request() {
    let app = TestApp::new();
    let tools = [
        "sqlmap/1.7.2#stable (https://sqlmap.org)",
        "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:Port Check)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0 Safari/537.36 Nuclei",
        "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
        "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
        "gobuster/3.6",
        "Fuzz Faster U Fool v2.1.0",
        "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
        "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
    ];
    for (i, ua) in tools.iter().enumerate() {
        let ip = format!("203.0.113.{}", 100 + i);
        let before = app.calls();
        let res = app.get_ua(&ip, "/", ua).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{ua}");
        assert_eq!(app.calls(), before, "{ua}: handler not called");
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(body_text(res).await, r#"{"error":"forbidden"}"#);
    }
}

async fn requests_until_blocked(app: &TestApp, ip: &str, uris: &[&str]) -> Option<usize> {
    for (i, uri) in uris.iter().cycle().take(20).enumerate() {
        if app.get(ip, uri).await.status() == StatusCode::FORBIDDEN {
            return Some(i + 1);
        }
    }
    None
}

#[tokio::test]
async fn probes_get_a_client_blocked_after_a_few_requests() {
    let app = TestApp::new();
    let cases: &[(&str, &[&str])] = &[
        (
            "sensitive files",
            &[
                "/.env",
                "/.git/config",
                "/wp-login.php",
                "/backup.sql",
                "/.aws/credentials",
            ],
        ),
        (
            "traversal",
            &[
                "/search?q=../../../../etc/passwd",
                "/products/..%2f..%2f..%2fetc%2fshadow",
                "/search?q=..%5c..%5cwindows%5cwin.ini",
            ],
        ),
        (
            "sqli",
            &[
                "/search?q=1%27%20OR%20%271%27%3D%271",
                "/search?q=x%27%20UNION%20SELECT%20username,password%20FROM%20users--",
                "/products/1;DROP%20TABLE%20users",
            ],
        ),
        (
            "xss",
            &[
                "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E",
                "/search?q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
                "/search?q=javascript:alert(1)",
            ],
        ),
    ];
    for (i, (what, uris)) in cases.iter().enumerate() {
        let ip = format!("203.0.113.{}", 10 + i);
        let n = requests_until_blocked(&app, &ip, uris).await;
        assert!(
            n.is_some_and(|n| n <= 4),
            "{what}: blocked after {n:?} requests"
        );
    }
    assert_eq!(
        app.get(BYSTANDER, "/search?q=o%27neill").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn read_your_writes_without_waiting() {
    let app = TestApp::new();
    let ip: std::net::IpAddr = ATTACKER.parse().unwrap();
    // Events fired from another thread are visible to the very next request.
    let siem = app.siem.clone();
    std::thread::spawn(move || {
        for i in 0..11 {
            siem.fire(Event::new("auth.failure").ip(ip).user(format!("victim{i}")));
        }
    })
    .join()
    .unwrap();
    assert_eq!(
        app.get(ATTACKER, "/account").await.status(),
        StatusCode::FORBIDDEN
    );
    // And fire() itself returns the verdict after its own event.
    let v = app.siem.fire(
        Event::new("auth.failure")
            .ip("192.0.2.1".parse().unwrap())
            .user("z"),
    );
    assert_eq!(v.action, Action::Allow);
    for _ in 0..3 {
        app.siem.fire(
            Event::new("auth.failure")
                .ip("192.0.2.1".parse().unwrap())
                .user("z"),
        );
    }
    let v = app.siem.fire(
        Event::new("auth.failure")
            .ip("192.0.2.1".parse().unwrap())
            .user("z"),
    );
    assert_eq!(v.action, Action::StepUp, "{v:?}");
    assert_eq!(v.reasons, ["auth.bruteforce.user"]);
}

#[tokio::test]
async fn client_sent_step_up_headers_never_reach_the_handler() {
    let app = TestApp::new();
    for name in [
        "X-Step-Up-Required",
        "x-step-up-required",
        "X-STEP-UP-REQUIRED",
        "x-Step-up-REQUIRED",
    ] {
        let res = app
            .send(
                req("GET", "/echo", BYSTANDER)
                    .header(name, "none")
                    .header(name, "forged")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(!res.headers().contains_key("x-step-up-required"));
        assert_eq!(body_text(res).await, "", "{name} was stripped");
    }
    // A stepped-up client: the handler sees the layer's own value, never the forged one. (Bob
    // logs in on session s1, then his account comes under attack from many networks.)
    let app = TestApp::with(|b| b, |l| l.session_cookie("sid"));
    let res = app
        .send(
            req("POST", "/login", BYSTANDER)
                .header("cookie", "sid=s1")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    r#"{"username":"bob","password":"builder"}"#,
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    for i in 0..6 {
        app.siem.fire(
            Event::new("auth.failure")
                .user("bob")
                .ip(format!("10.9.{i}.1").parse().unwrap()),
        );
    }
    let res = app
        .send(
            req("GET", "/echo", BYSTANDER)
                .header("X-Step-Up-Required", "forged")
                .header("cookie", "sid=s1")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    let seen = body_text(res).await;
    assert!(
        seen.contains("auth.bruteforce.user"),
        "handler saw {seen:?}"
    );
    assert!(!seen.contains("forged"), "handler saw {seen:?}");
}

#[tokio::test]
async fn step_up_reaches_the_handler_with_the_layer_header() {
    let app = TestApp::with(|b| b, |l| l.session_cookie("sid"));
    // Carol logs in on session s1, then her account comes under attack from many networks.
    let res = app
        .send(
            req("POST", "/login", BYSTANDER)
                .header("cookie", "sid=s1")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    r#"{"username":"bob","password":"builder"}"#,
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    for i in 0..6 {
        app.siem.fire(
            Event::new("auth.failure")
                .user("bob")
                .ip(format!("10.9.{i}.1").parse().unwrap()),
        );
    }
    let res = app
        .send(
            req("GET", "/echo", BYSTANDER)
                .header("cookie", "sid=s1")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let on_response = res.headers().get("x-step-up-required").cloned();
    let seen = body_text(res).await;
    assert!(
        seen.contains("auth.bruteforce.user"),
        "handler saw {seen:?}"
    );
    // The response tells the client only that a step-up is required.
    assert_eq!(on_response.unwrap().to_str().unwrap(), "required");
    // Without the session, the bystander's IP is fine.
    let res = app.get(BYSTANDER, "/echo").await;
    assert_eq!(body_text(res).await, "");
}

#[tokio::test]
async fn decay_and_escalation_follow_the_clock() {
    let app = TestApp::new();
    let probe = "/search?q=1%27%20OR%20%271%27%3D%271";
    let block_for = |res: &axum::http::Response<axum::body::Body>| -> u64 {
        res.headers()
            .get("retry-after")
            .map_or(0, |v| v.to_str().unwrap().parse().unwrap())
    };
    let mut res = app.get(ATTACKER, probe).await;
    while res.status() != StatusCode::FORBIDDEN {
        res = app.get(ATTACKER, probe).await;
    }
    let first = app.get(ATTACKER, "/").await;
    assert_eq!(first.status(), StatusCode::FORBIDDEN);
    let first = block_for(&first);
    assert!(
        (590..=600).contains(&first),
        "first block ~10 min, got {first}s"
    );

    // Still blocked just before the end, free a while after (scores halve every 15 min).
    app.clock.advance(Duration::from_secs(first - 5));
    assert_eq!(app.get(ATTACKER, "/").await.status(), StatusCode::FORBIDDEN);
    app.clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(app.get(ATTACKER, "/").await.status(), StatusCode::OK);
    let v = app
        .siem
        .verdict_for(&Subject::ip(ATTACKER.parse().unwrap()));
    assert!(v.score < 1.0, "decayed: {v:?}");

    // A repeat offence earns twice the block.
    let mut res = app.get(ATTACKER, probe).await;
    while res.status() != StatusCode::FORBIDDEN {
        res = app.get(ATTACKER, probe).await;
    }
    let second = block_for(&app.get(ATTACKER, "/").await);
    assert!(
        (1190..=1200).contains(&second),
        "second block ~20 min, got {second}s"
    );
    let o = app
        .siem
        .explain(&EntityKey::Ip(ATTACKER.parse().unwrap()))
        .unwrap();
    assert_eq!(o.offenses, 2);
}

#[tokio::test]
async fn admin_block_unblock_and_allow() {
    let app = TestApp::new();
    let key = EntityKey::Ip(BYSTANDER.parse().unwrap());
    app.siem.block(&key, Duration::from_secs(60));
    assert_eq!(
        app.get(BYSTANDER, "/").await.status(),
        StatusCode::FORBIDDEN
    );
    let offenders = app.siem.offenders();
    assert_eq!(offenders.len(), 1);
    assert_eq!(offenders[0].verdict.reasons, ["admin.block"]);
    app.siem.unblock(&key);
    assert_eq!(app.get(BYSTANDER, "/").await.status(), StatusCode::OK);
    assert!(app.siem.offenders().is_empty());

    // An allow-listed client (a pen-tester) is not acted on, and builds no score.
    let tester = EntityKey::Ip(ATTACKER.parse().unwrap());
    app.siem.allow(&tester, Duration::from_secs(3600));
    for _ in 0..5 {
        assert_eq!(
            app.get(ATTACKER, "/.env").await.status(),
            StatusCode::NOT_FOUND
        );
    }
    app.clock.advance(Duration::from_secs(3601));
    assert_eq!(
        app.siem
            .verdict_for(&Subject::ip(ATTACKER.parse().unwrap()))
            .action,
        Action::Allow
    );
    app.clock.advance(Duration::from_secs(1));
    let mut status = StatusCode::OK;
    for _ in 0..4 {
        status = app.get(ATTACKER, "/.env").await.status();
    }
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "after the allowance, probing is acted on again"
    );
    let o = &app.siem.offenders()[0];
    assert_eq!(o.contributions[0].rule.as_ref(), "sig.sensitive_file");
    assert_eq!(o.contributions[0].sample.as_deref(), Some("/.env"));
}

#[tokio::test]
async fn route_policies() {
    let app = TestApp::with(
        |b| b,
        |l| {
            l.exclude("/healthz")
                .route("/account", tower_siem::RoutePolicy::Strict)
                .route("/search", tower_siem::RoutePolicy::MonitorOnly)
        },
    );
    app.siem.block(
        &EntityKey::Ip(ATTACKER.parse().unwrap()),
        Duration::from_secs(60),
    );
    assert_eq!(
        app.get(ATTACKER, "/healthz").await.status(),
        StatusCode::OK,
        "excluded"
    );
    assert_eq!(
        app.get(ATTACKER, "/search?q=x").await.status(),
        StatusCode::OK,
        "monitor only"
    );
    assert_eq!(app.get(ATTACKER, "/").await.status(), StatusCode::FORBIDDEN);
    // Strict: a mere step-up is denied.
    for i in 0..10 {
        app.siem.fire(
            Event::new("auth.failure")
                .ip(BYSTANDER.parse().unwrap())
                .user(format!("u{}", i % 2)),
        );
    }
    assert_eq!(
        app.siem
            .verdict_for(&Subject::ip(BYSTANDER.parse().unwrap()))
            .action,
        Action::StepUp
    );
    assert_eq!(
        app.get(BYSTANDER, "/account").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.get(BYSTANDER, "/").await.status(), StatusCode::OK);
    // Excluded routes produce no event.
    let before = app.siem.stats().engine.events;
    app.get(BYSTANDER, "/healthz").await;
    assert_eq!(app.siem.stats().engine.events, before);
}

#[tokio::test]
async fn shadow_rules_count_without_acting() {
    // Every rule in shadow mode but one: a set with no active rule is refused (every
    // detection would be off), and the one left active never fires here.
    let mut rules = tower_siem::engine::RuleSet::default();
    for r in &mut rules.rules {
        r.shadow = r.id != "account.signup_abuse";
    }
    let app = TestApp::with(|b| b.rules(rules), |l| l);
    assert_eq!(
        app.get_ua(ATTACKER, "/", "sqlmap/1.7").await.status(),
        StatusCode::OK
    );
    let stats = app.siem.stats().engine;
    let sig = stats
        .rules
        .iter()
        .find(|r| r.id == "sig.scanner_ua")
        .unwrap();
    assert_eq!((sig.hits, sig.shadow_hits), (0, 1));
}

#[test]
fn a_set_with_no_active_rule_is_refused() {
    let mut rules = tower_siem::engine::RuleSet::default();
    for r in &mut rules.rules {
        r.shadow = true;
    }
    let err = tower_siem::Siem::builder()
        .rules(rules)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no active rule"), "{err}");
}

#[tokio::test]
async fn extractor_without_layer_says_what_is_missing() {
    use tower::ServiceExt;
    let router = axum::Router::new().route(
        "/",
        axum::routing::get(|_c: tower_siem::SecurityContext| async { "x" }),
    );
    let res = router
        .oneshot(
            req("GET", "/", BYSTANDER)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body_text(res).await.contains("SiemLayer"));
}

#[tokio::test]
async fn hashed_user_ids_still_gate_the_right_account() {
    let app = TestApp::with(
        |b| b.redactor(tower_siem::event::Redactor::default().hash_user_ids(true)),
        |l| l,
    );
    for i in 0..6 {
        app.login(ATTACKER, "alice", &format!("guess{i}")).await;
    }
    let res = app.login(BYSTANDER, "alice", "wonderland").await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "stepped up through the hashed id"
    );
    assert_eq!(
        app.siem.verdict_for(&Subject::user("alice")).action,
        Action::StepUp
    );
    assert_eq!(
        app.siem.verdict_for(&Subject::user("bob")).action,
        Action::Allow
    );
    let flagged: Vec<String> = app
        .siem
        .offenders()
        .iter()
        .map(|o| o.entity.to_string())
        .collect();
    assert!(flagged.iter().all(|e| !e.contains("alice")), "{flagged:?}");
    assert!(app.siem.explain(&EntityKey::User("alice".into())).is_some());
    // A hashed id looks like a token, but it is the entity's own name: its samples keep it.
    let offenders = app.siem.offenders();
    let user = offenders
        .iter()
        .find(|o| matches!(o.entity, EntityKey::User(_)))
        .expect("the account is an offender");
    let EntityKey::User(id) = &user.entity else {
        unreachable!()
    };
    assert!(
        user.contributions
            .iter()
            .any(|c| c.sample.as_deref() == Some(&**id)),
        "{user:?}"
    );
}
