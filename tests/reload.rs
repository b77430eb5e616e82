//! Rules without a restart: `Siem::reload_rules`, the rules-file watcher and the admin API's
//! reload, with the guarantees that go with them (a refused file keeps the rules in force, no
//! event sees half a set, window state of unchanged rules survives).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower_siem::event::SharedEvent;
use tower_siem::sink::{BoxFuture, Sink, SinkError};
use tower_siem::{Event, Siem};

const LONG: Duration = Duration::from_secs(10);

/// Every event delivered, in order.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<SharedEvent>>>);

impl Sink for Collect {
    fn name(&self) -> &str {
        "collect"
    }

    fn write<'a>(&'a self, batch: &'a [SharedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        self.0.lock().unwrap().extend(batch.iter().cloned());
        Box::pin(async { Ok(()) })
    }
}

impl Collect {
    fn named(&self, name: &str) -> Vec<SharedEvent> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|e| e.name.as_str() == name)
            .cloned()
            .collect()
    }
}

/// A rule file of threshold rules only (no built-in pack): `(id, event, count)`, each
/// keyed by user, within 10 minutes, score 40 (a step-up).
fn rules(list: &[(&str, &str, u32)]) -> String {
    let mut out = String::from("builtin = false\n");
    for (id, on, count) in list {
        out.push_str(&format!(
            "\n[[rule]]\nid = \"{id}\"\nkind = \"threshold\"\non = [\"{on}\"]\nkey = \"user\"\n\
             count = {count}\nwindow = \"10m\"\nscore = 40\n"
        ));
    }
    out
}

fn ids(siem: &Siem) -> Vec<String> {
    siem.engine().rules().into_iter().map(|r| r.id).collect()
}

fn fire(siem: &Siem, name: &'static str, user: &str) -> Vec<String> {
    siem.fire(Event::new(name).user(user)).reasons
}

#[test]
fn a_reload_swaps_the_set() {
    let siem = Siem::builder()
        .rules(tower_siem::RuleSet::from_toml(&rules(&[("a", "x.a", 1), ("k", "x.k", 1)])).unwrap())
        .build()
        .unwrap();
    assert_eq!(fire(&siem, "x.a", "u1"), ["a"]);
    let report = siem
        .reload_rules(&rules(&[("b", "x.b", 1), ("k", "x.k", 1)]))
        .unwrap();
    assert_eq!(
        (
            report.added,
            report.removed,
            report.changed,
            report.kept,
            report.reset
        ),
        (1, 1, 0, 1, 0)
    );
    assert_eq!(ids(&siem), ["b", "k"]);
    // The rule removed no longer fires, the one added does, the one kept still does.
    assert!(fire(&siem, "x.a", "u2").is_empty());
    assert_eq!(fire(&siem, "x.b", "u3"), ["b"]);
    assert_eq!(fire(&siem, "x.k", "u4"), ["k"]);
    // Scores live in the store: u1's step-up is still there.
    let v = siem.verdict_for(&tower_siem::Subject::user("u1"));
    assert_eq!(v.reasons, ["a"]);
    let status = siem.rules_status();
    let last = status.last_reload.unwrap();
    assert_eq!(last.outcome, "success");
    assert_eq!(last.report.unwrap().added, 1);
}

#[test]
fn a_refused_file_keeps_the_rules_in_force_and_is_recorded() {
    let sink = Collect::default();
    let siem = Siem::builder()
        .rules(tower_siem::RuleSet::from_toml(&rules(&[("a", "x.a", 1)])).unwrap())
        .sink(sink.clone())
        .build()
        .unwrap();
    // A syntax error: the value is missing.
    let syntax = "builtin = false\n\n[[rule]]\nid = \"b\"\nkind = \"threshold\"\ncount =\n";
    let err = siem.reload_rules(syntax).unwrap_err();
    assert_eq!(err.line(), Some(6), "{err}");
    // A bound exceeded.
    let bound = rules(&[("b", "x.b", 0)]);
    let err = siem.reload_rules(&bound).unwrap_err();
    assert_eq!(err.line(), Some(8), "{err}");
    assert_eq!(err.field_name(), Some("count"), "{err}");
    assert_eq!(err.rule(), Some("b"), "{err}");
    // A changed [scoring] needs a restart.
    let scoring = format!("{}\n[scoring]\nstep_up = 20\n", rules(&[("b", "x.b", 1)]));
    let err = siem.reload_rules(&scoring).unwrap_err();
    assert_eq!(err.field_name(), Some("scoring"), "{err}");
    // A missing file.
    let err = siem
        .reload_rules_from_file("/nonexistent/tower-siem/rules.toml")
        .unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");

    // Nothing changed.
    assert_eq!(ids(&siem), ["a"]);
    assert_eq!(fire(&siem, "x.a", "u1"), ["a"]);
    assert!(fire(&siem, "x.b", "u2").is_empty());
    let last = siem.rules_status().last_reload.unwrap();
    assert_eq!(last.outcome, "failure");
    assert!(last.error.unwrap().contains("cannot read"));

    assert!(siem.flush(LONG));
    let events = sink.named("siem.rules.reload");
    assert_eq!(events.len(), 4);
    for e in &events {
        assert_eq!(e.get_attr("outcome"), Some("failure"));
    }
    let bound_event = events[1].get_attr("error").unwrap();
    assert!(
        bound_event.contains("line 8") && bound_event.contains("field `count`"),
        "{bound_event}"
    );
    // And a success is recorded with its counts.
    siem.reload_rules(&rules(&[("a", "x.a", 1), ("b", "x.b", 1)]))
        .unwrap();
    assert!(siem.flush(LONG));
    let events = sink.named("siem.rules.reload");
    let ok = events.last().unwrap();
    assert_eq!(ok.get_attr("outcome"), Some("success"));
    assert_eq!(ok.get_attr("added"), Some("1"));
    assert_eq!(ok.get_attr("kept"), Some("1"));
    assert_eq!(ok.get_attr("source"), Some("inline"));
}

#[test]
fn window_state_of_an_unchanged_rule_survives_a_reload() {
    let siem = Siem::builder()
        .rules(tower_siem::RuleSet::from_toml(&rules(&[("login", "auth.failure", 5)])).unwrap())
        .build()
        .unwrap();
    for _ in 0..4 {
        assert!(fire(&siem, "auth.failure", "alice").is_empty());
    }
    // A rule added, `login` unchanged: its count goes on.
    let report = siem
        .reload_rules(&rules(&[("login", "auth.failure", 5), ("other", "x.o", 1)]))
        .unwrap();
    assert_eq!((report.added, report.kept), (1, 1));
    assert_eq!(fire(&siem, "auth.failure", "alice"), ["login"]);

    // Only the score changed: the state is kept.
    for _ in 0..4 {
        fire(&siem, "auth.failure", "bob");
    }
    let changed_score = rules(&[("login", "auth.failure", 5)]).replace("score = 40", "score = 45");
    let report = siem.reload_rules(&changed_score).unwrap();
    assert_eq!((report.changed, report.reset, report.removed), (1, 0, 1));
    assert_eq!(fire(&siem, "auth.failure", "bob"), ["login"]);

    // The count changed: the state's shape changed, it starts fresh.
    for _ in 0..4 {
        fire(&siem, "auth.failure", "carol");
    }
    let report = siem
        .reload_rules(&rules(&[("login", "auth.failure", 6)]))
        .unwrap();
    assert_eq!((report.changed, report.reset), (1, 1));
    for _ in 0..5 {
        assert!(fire(&siem, "auth.failure", "carol").is_empty());
    }
    assert_eq!(fire(&siem, "auth.failure", "carol"), ["login"]);
}

/// Threads ingest while another reloads back and forth between two sets: each verdict is that
/// of one set, never of neither nor both.
#[test]
fn no_event_sees_half_a_set() {
    let one = rules(&[("ra", "ev", 1)]);
    let two = rules(&[("rb", "ev", 1)]);
    let siem = Siem::builder()
        .rules(tower_siem::RuleSet::from_toml(&one).unwrap())
        .build()
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reloader = {
        let siem = siem.clone();
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) && n < 2_000 {
                siem.reload_rules(if n % 2 == 0 { &two } else { &one })
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let siem = siem.clone();
            std::thread::spawn(move || {
                let mut seen = [0usize; 2];
                for i in 0..3_000 {
                    let reasons = fire(&siem, "ev", &format!("user-{w}-{i}"));
                    match reasons.as_slice() {
                        [r] if r == "ra" => seen[0] += 1,
                        [r] if r == "rb" => seen[1] += 1,
                        other => panic!("a verdict of neither set or both: {other:?}"),
                    }
                }
                seen
            })
        })
        .collect();
    let mut total = [0usize; 2];
    for w in workers {
        let s = w.join().unwrap();
        total[0] += s[0];
        total[1] += s[1];
    }
    done.store(true, Ordering::Relaxed);
    let reloads = reloader.join().unwrap();
    assert!(reloads > 0);
    assert_eq!(total[0] + total[1], 9_000);
}

#[test]
fn the_watcher_reloads_a_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, rules(&[("a", "x.a", 1)])).unwrap();
    let sink = Collect::default();
    let siem = Siem::builder()
        .rules_file(&path)
        .unwrap()
        .sink(sink.clone())
        .build()
        .unwrap();
    assert_eq!(siem.rules_file().as_deref(), Some(path.as_path()));
    // A long interval: only `check_now` looks.
    let watch = siem
        .watch_rules(&path, Some(Duration::from_secs(3600)))
        .unwrap();
    assert!(watch.check_now().is_none(), "unchanged");

    // Written as an editor saving by rename does.
    let tmp = dir.path().join("rules.toml.tmp");
    std::fs::write(&tmp, rules(&[("a", "x.a", 1), ("b", "x.b", 1)])).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let report = watch.check_now().unwrap().unwrap();
    assert_eq!((report.added, report.kept), (1, 1));
    assert_eq!(ids(&siem), ["a", "b"]);
    assert_eq!(fire(&siem, "x.b", "u1"), ["b"]);
    assert!(watch.check_now().is_none());

    // Same length, same second: the content hash tells.
    std::fs::write(&path, rules(&[("a", "x.a", 1), ("c", "x.c", 1)])).unwrap();
    let report = watch.check_now().unwrap().unwrap();
    assert_eq!((report.added, report.removed), (1, 1));

    // A refused file: the rules stay, the error is reported once.
    std::fs::write(
        &path,
        "builtin = false\n[[rule]]\nid = \"a\"\nkind = \"nope\"\n",
    )
    .unwrap();
    let err = watch.check_now().unwrap().unwrap_err();
    assert_eq!(err.line(), Some(4), "{err}");
    assert!(watch.check_now().is_none());
    assert_eq!(ids(&siem), ["a", "c"]);
    // A removed file too.
    std::fs::remove_file(&path).unwrap();
    assert!(watch.check_now().unwrap().is_err());
    assert!(watch.check_now().is_none());
    assert_eq!(ids(&siem), ["a", "c"]);

    assert!(siem.flush(LONG));
    let outcomes: Vec<String> = sink
        .named("siem.rules.reload")
        .iter()
        .map(|e| e.get_attr("outcome").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(outcomes, ["success", "success", "failure", "failure"]);
    assert_eq!(
        sink.named("siem.rules.reload")[0].get_attr("source"),
        Some(path.display().to_string().as_str())
    );
    drop(watch);
}

/// The watcher's own thread picks a change up within its interval (bounded wait, no sleep
/// guessed at: it polls the outcome).
#[test]
fn the_watcher_thread_polls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, rules(&[("a", "x.a", 1)])).unwrap();
    let siem = Siem::builder().rules_file(&path).unwrap().build().unwrap();
    let watch = siem
        .watch_rules(&path, Some(Duration::from_millis(20)))
        .unwrap();
    std::fs::write(&path, rules(&[("b", "x.b", 1)])).unwrap();
    let deadline = std::time::Instant::now() + LONG;
    while ids(&siem) != ["b"] {
        assert!(std::time::Instant::now() < deadline, "not reloaded");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(watch);
}

#[cfg(feature = "dashboard")]
mod admin {
    use super::*;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use std::net::SocketAddr;
    use tower::ServiceExt;
    use tower_siem::admin::token_fingerprint;

    const TOKEN: &str = "s3cret-admin-token-0123456789abcdef";

    async fn call(
        router: &axum::Router,
        method: &str,
        uri: &str,
        token: bool,
    ) -> (StatusCode, serde_json::Value) {
        let peer: SocketAddr = "198.51.100.2:40000".parse().unwrap();
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .extension(ConnectInfo(peer));
        if token {
            b = b.header("authorization", format!("Bearer {TOKEN}"));
        }
        let res = router
            .clone()
            .oneshot(b.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn rules_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, rules(&[("a", "x.a", 1)])).unwrap();
        let sink = Collect::default();
        let siem = Siem::builder()
            .rules_file(&path)
            .unwrap()
            .sink(sink.clone())
            .build()
            .unwrap();
        let router = siem.admin_router(TOKEN).unwrap();

        // Without the token: 401, nothing reloaded.
        std::fs::write(&path, rules(&[("b", "x.b", 1)])).unwrap();
        for (m, uri) in [("GET", "/api/rules"), ("POST", "/api/rules/reload")] {
            let (status, body) = call(&router, m, uri, false).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{m} {uri}");
            assert!(body["error"].is_string());
        }
        assert_eq!(ids(&siem), ["a"]);

        let (status, body) = call(&router, "GET", "/api/rules", true).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["rules"][0]["id"], "a");
        assert_eq!(body["rules"][0]["kind"], "threshold");
        assert!(body["last_reload"].is_null());

        let (status, body) = call(&router, "POST", "/api/rules/reload", true).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "success");
        assert_eq!(body["report"]["added"], 1);
        assert_eq!(ids(&siem), ["b"]);

        // A refused file: 422 with the line, the rules stay.
        std::fs::write(&path, rules(&[("c", "x.c", 0)])).unwrap();
        let (status, body) = call(&router, "POST", "/api/rules/reload", true).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("line 8") && error.contains("count"),
            "{error}"
        );
        assert_eq!(ids(&siem), ["b"]);
        let (_, body) = call(&router, "GET", "/api/rules", true).await;
        assert_eq!(body["last_reload"]["outcome"], "failure");
        assert!(body["last_reload"]["error"]
            .as_str()
            .unwrap()
            .contains("line 8"));

        assert!(siem.flush(LONG));
        let admin_events = sink.named("admin.rules.reload");
        assert_eq!(admin_events.len(), 2);
        assert_eq!(admin_events[0].get_attr("outcome"), Some("success"));
        assert_eq!(admin_events[1].get_attr("outcome"), Some("failure"));
        for e in &admin_events {
            assert_eq!(
                e.get_attr("operator"),
                Some(token_fingerprint(TOKEN).as_str())
            );
            assert_eq!(e.get_attr("client"), Some("198.51.100.2:40000"));
        }
        let all = sink.0.lock().unwrap();
        for e in all.iter() {
            let json = serde_json::to_string(&**e).unwrap();
            assert!(!json.contains(TOKEN), "{json}");
        }
    }

    #[tokio::test]
    async fn reload_without_a_file_is_a_conflict() {
        let siem = Siem::builder().build().unwrap();
        let router = siem.admin_router(TOKEN).unwrap();
        let (status, body) = call(&router, "POST", "/api/rules/reload", true).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(body["error"].as_str().unwrap().contains("rules file"));
        // The built-in pack is listed.
        let (status, body) = call(&router, "GET", "/api/rules", true).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["rules"].as_array().unwrap().len() > 10);
        assert!(body["file"].is_null());
    }
}

/// Reloads under HTTP load through the layer: no request fails or is refused while the set
/// is swapped back and forth, and once a set with a new rule is in force, the rule decides
/// the very next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_fail_no_request_and_apply_from_the_next_one() {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Request, StatusCode};
    use std::net::SocketAddr;
    use tower::ServiceExt;

    // The built-in pack, then the same with a rule that blocks an address on its first 404.
    let strict = "[[rule]]\nid = \"probe.first_404\"\nkind = \"threshold\"\n\
                  on = [\"http.request\"]\nstatus = [404]\nkey = \"ip\"\ncount = 1\n\
                  window = \"10m\"\nscore = 100\n";
    let siem = Siem::builder().build().unwrap();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .layer(siem.layer());
    let get = move |path: &'static str, ip: [u8; 4]| {
        let app = app.clone();
        async move {
            let req = Request::get(path)
                .header("user-agent", "Mozilla/5.0")
                .extension(ConnectInfo(SocketAddr::from((ip, 40_000))))
                .body(Body::empty())
                .unwrap();
            app.oneshot(req).await.unwrap().status()
        }
    };

    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for t in 0..4u8 {
        let stop = stop.clone();
        let get = get.clone();
        load.push(tokio::spawn(async move {
            let (mut sent, mut failed) = (0u32, 0u32);
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) || sent < 200 {
                let ip = [10, t, (i / 250) as u8, (i % 250) as u8 + 1];
                if get("/", ip).await != StatusCode::OK {
                    failed += 1;
                }
                sent += 1;
                i = (i + 1) % 60_000;
            }
            (sent, failed)
        }));
    }
    for k in 0..60 {
        let report = if k % 2 == 0 {
            siem.reload_rules(strict)
        } else {
            siem.reload_rules("")
        };
        assert!(report.is_ok(), "reload {k}: {report:?}");
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut sent, mut failed) = (0, 0);
    for l in load {
        let (s, f) = l.await.unwrap();
        sent += s;
        failed += f;
    }
    assert!(sent >= 800, "{sent} requests");
    assert_eq!(failed, 0, "{failed} of {sent} requests refused or failed");

    // In force from the next request: one 404, then the address is blocked.
    siem.reload_rules(strict).unwrap();
    let client = [192, 0, 2, 77];
    assert_eq!(get("/", client).await, StatusCode::OK);
    assert_eq!(get("/nowhere", client).await, StatusCode::NOT_FOUND);
    assert_eq!(get("/", client).await, StatusCode::FORBIDDEN);
    // Without it, the same path is harmless.
    siem.reload_rules("").unwrap();
    let other = [192, 0, 2, 78];
    assert_eq!(get("/nowhere", other).await, StatusCode::NOT_FOUND);
    assert_eq!(get("/", other).await, StatusCode::OK);
}
