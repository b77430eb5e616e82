//! `tower-siem triage` as a user runs it: the JSON report contract (summary, clients), exit codes,
//! malformed lines, gzip, stdin, merged inputs, CRLF, huge lines.
#![cfg(feature = "cli")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tower-siem");
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/// A combined-format line at `secs` seconds after 2024-01-01T00:00:00Z.
fn line(ip: &str, secs: u32, method: &str, target: &str, status: u16, ua: &str) -> String {
    format!(
        "{ip} - - [01/Jan/2024:{:02}:{:02}:{:02} +0000] \"{method} {target} HTTP/1.1\" {status} 512 \"-\" \"{ua}\"",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Benign browsing from a few clients, a sqlmap client, a `.env` prober and a login brute
/// forcer.
fn mixed_log() -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..60u32 {
        lines.push(line(
            &format!("10.0.0.{}", i % 5),
            i * 10,
            "GET",
            "/products?page=2",
            200,
            CHROME,
        ));
        if i % 6 == 0 {
            lines.push(line(
                "198.51.100.9",
                i * 10 + 1,
                "GET",
                "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--",
                200,
                "sqlmap/1.7.2#stable (https://sqlmap.org)",
            ));
        }
        if i % 20 == 0 {
            lines.push(line("203.0.113.5", i * 10 + 2, "GET", "/.env", 404, CHROME));
        }
        if i < 15 {
            lines.push(line("192.0.2.7", i * 5 + 3, "POST", "/login", 401, CHROME));
        }
    }
    lines.sort_by_key(|l| l[l.find('[').unwrap()..l.find(']').unwrap()].to_owned());
    lines
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).arg("triage").args(args).output().unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

fn client<'a>(v: &'a Value, ip: &str) -> Option<&'a Value> {
    v["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ip"] == ip)
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    k.sort_unstable();
    k
}

#[test]
fn json_report_follows_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let log = mixed_log();
    let p = write(dir.path(), "access.log", &(log.join("\n") + "\n"));
    let v = json(&run(&[p.to_str().unwrap(), "--output", "json"]));

    assert_eq!(keys(&v), ["clients", "summary"]);
    let s = &v["summary"];
    assert_eq!(
        keys(s),
        [
            "clients",
            "flagged",
            "lines",
            "malformed",
            "parsed",
            "seconds"
        ]
    );
    assert_eq!(s["lines"], log.len());
    assert_eq!(s["parsed"], log.len());
    assert_eq!(s["malformed"], 0);
    assert_eq!(s["clients"], 8);
    // Wall time of the run, as a number (its value depends on the machine).
    assert!(s["seconds"].is_f64(), "{}", s["seconds"]);

    let clients = v["clients"].as_array().unwrap();
    assert_eq!(s["flagged"], clients.len());
    for c in clients {
        assert_eq!(
            keys(c),
            [
                "first_seen",
                "ip",
                "last_seen",
                "reasons",
                "requests",
                "score",
                "verdict"
            ]
        );
        assert!(["block", "step_up", "throttle"].contains(&c["verdict"].as_str().unwrap()));
        for r in c["reasons"].as_array().unwrap() {
            assert_eq!(keys(r), ["hits", "rule", "sample"]);
        }
    }
    let scores: Vec<f64> = clients
        .iter()
        .map(|c| c["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // sqlmap announces itself: blocked at its first request, which the layer would then
    // have answered 403 for every later one.
    let sqlmap = client(&v, "198.51.100.9").expect("sqlmap flagged");
    assert_eq!(sqlmap["verdict"], "block");
    assert_eq!(sqlmap["requests"], 10);
    assert_eq!(sqlmap["first_seen"], "2024-01-01T00:00:01Z");
    assert_eq!(sqlmap["last_seen"], "2024-01-01T00:09:01Z");
    let reasons = sqlmap["reasons"].as_array().unwrap();
    let ua = reasons
        .iter()
        .find(|r| r["rule"] == "sig.scanner_ua")
        .unwrap();
    assert_eq!(ua["hits"], 10);
    let sample = ua["sample"].as_str().unwrap();
    assert!(sample.contains("access.log:"), "{sample}");
    assert!(sample.contains("sqlmap/1.7.2"), "{sample}");
    assert!(reasons.iter().any(|r| r["rule"] == "sig.sqli"));

    // Ten failed logins within five minutes from one address: auth.bruteforce.ip.
    let brute = client(&v, "192.0.2.7").expect("brute forcer flagged");
    assert_ne!(brute["verdict"], "allow");
    assert!(brute["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["rule"] == "auth.bruteforce.ip"));

    let env = client(&v, "203.0.113.5").expect(".env prober flagged");
    assert_eq!(env["reasons"][0]["rule"], "sig.sensitive_file");

    // Benign browsers are not listed, unless asked for.
    assert!(client(&v, "10.0.0.1").is_none());
    let all = json(&run(&[p.to_str().unwrap(), "--output", "json", "--all"]));
    let benign = client(&all, "10.0.0.1").expect("--all lists every client");
    assert_eq!(benign["verdict"], "allow");
    assert_eq!(benign["requests"], 12);
    assert_eq!(benign["reasons"].as_array().unwrap().len(), 0);
    assert_eq!(all["clients"].as_array().unwrap().len(), 8);
}

#[test]
fn table_lists_flagged_clients_with_rules_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "access.log", &(mixed_log().join("\n") + "\n"));
    let out = run(&[p.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("VERDICT"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("198.51.100.9"))
        .expect("sqlmap row");
    assert!(row.starts_with("block"), "{row}");
    assert!(text.contains("sig.scanner_ua"), "{text}");
    assert!(!text.contains("10.0.0.1 "), "{text}");
    assert!(text.contains("flagged"), "{text}");
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.log");
    let out = run(&[missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.log"));

    let junk = write(dir.path(), "junk.log", "hello\nworld\n\u{0}\u{1}\n");
    let out = run(&[junk.to_str().unwrap(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["malformed"], 3);
    assert_eq!(v["summary"]["parsed"], 0);

    // An empty input (a log rotated empty) is a warning, not a failure; blank lines likewise.
    for (name, text) in [("empty.log", ""), ("blank.log", "\n\n")] {
        let empty = write(dir.path(), name, text);
        let out = run(&[empty.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("warning: the input holds no line"),
            "{name}"
        );
    }

    let bad_rules = write(dir.path(), "rules.toml", "[[rule]]\nid = 1\n");
    let good = write(dir.path(), "good.log", &(mixed_log().join("\n") + "\n"));
    let out = run(&[
        good.to_str().unwrap(),
        "--config",
        bad_rules.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(run(&[good.to_str().unwrap()]).status.code(), Some(0));
}

#[test]
fn malformed_lines_are_counted_and_shown_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = mixed_log();
    log.insert(2, "this is not a log line".into());
    log.insert(5, "\u{7f}ELF\u{0}\u{0}\u{2}".into());
    log.insert(7, String::new()); // blank: skipped, not counted
    let mut bytes = (log.join("\n") + "\n").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe invalid utf-8 \xc3\x28\n");
    let p = dir.path().join("access.log");
    std::fs::write(&p, &bytes).unwrap();
    let out = run(&[p.to_str().unwrap(), "--output", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = json(&out);
    assert_eq!(v["summary"]["malformed"], 3);
    assert_eq!(v["summary"]["lines"], log.len() - 1 + 1);
    assert_eq!(v["summary"]["parsed"], log.len() - 3);
    assert!(stderr.contains("access.log:3: malformed"), "{stderr}");
    assert!(stderr.contains("access.log:6: malformed"), "{stderr}");
    let last = log.len() + 1;
    assert!(
        stderr.contains(&format!("access.log:{last}: malformed")),
        "{stderr}"
    );
    // The run went on: the attacker after the bad lines is found.
    assert!(client(&v, "198.51.100.9").is_some());
}

#[test]
fn gzip_input_including_concatenated_members() {
    use flate2::write::GzEncoder;
    let dir = tempfile::tempdir().unwrap();
    let log = mixed_log();
    let (a, b) = log.split_at(log.len() / 2);
    let mut gz = Vec::new();
    for part in [a, b] {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all((part.join("\n") + "\n").as_bytes()).unwrap();
        gz.extend(e.finish().unwrap());
    }
    let p = dir.path().join("access.log.1.gz");
    std::fs::write(&p, &gz).unwrap();
    let v = json(&run(&[p.to_str().unwrap(), "--output", "json"]));
    assert_eq!(v["summary"]["parsed"], log.len());
    assert_eq!(client(&v, "198.51.100.9").unwrap()["requests"], 10);

    // A truncated stream is an unreadable input: exit 2, with what was read reported.
    let cut = dir.path().join("cut.gz");
    std::fs::write(&cut, &gz[..gz.len() / 3]).unwrap();
    let out = run(&[cut.to_str().unwrap(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(serde_json::from_slice::<Value>(&out.stdout).is_ok());
}

#[test]
fn stdin_is_read_with_a_dash() {
    let mut child = Command::new(BIN)
        .args(["triage", "-", "--output", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = mixed_log();
    let mut stdin = child.stdin.take().unwrap();
    let text = log.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let v = json(&out);
    assert_eq!(v["summary"]["parsed"], log.len());
    assert!(client(&v, "198.51.100.9").is_some());
}

#[test]
fn several_inputs_are_merged_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    // One brute forcer whose failures are split across two servers' logs, interleaved in
    // time; neither log alone reaches the threshold of ten in five minutes.
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..12u32 {
        let l = line("192.0.2.50", i * 10, "POST", "/login", 401, CHROME);
        if i % 2 == 0 {
            a.push(l);
        } else {
            b.push(l);
        }
    }
    let pa = write(dir.path(), "a.log", &(a.join("\n") + "\n"));
    let pb = write(dir.path(), "b.log", &(b.join("\n") + "\n"));
    for one in [&pa, &pb] {
        let v = json(&run(&[one.to_str().unwrap(), "--output", "json"]));
        assert!(client(&v, "192.0.2.50").is_none(), "{v}");
    }
    let v = json(&run(&[
        pa.to_str().unwrap(),
        pb.to_str().unwrap(),
        "--output",
        "json",
    ]));
    let c = client(&v, "192.0.2.50").expect("merged inputs reach the threshold");
    assert_eq!(c["requests"], 12);

    // The event stream follows event time across inputs.
    let out = run(&[
        pa.to_str().unwrap(),
        pb.to_str().unwrap(),
        "--output",
        "ndjson",
        "--threads",
        "1",
    ]);
    assert!(out.status.success());
    let times: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["name"] == "http.request")
        .map(|e| e["time"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(times.len(), 12);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn ndjson_streams_every_event_with_its_verdict_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = vec![
        line("10.9.9.9", 1, "GET", "/reset?token=s3cr3t&x=1", 200, CHROME),
        line("10.9.9.9", 2, "POST", "/login", 401, CHROME),
    ];
    log.extend((0..3).map(|i| line("198.51.100.1", 3 + i, "GET", "/", 200, "sqlmap/1.7")));
    let p = write(dir.path(), "x.log", &(log.join("\n") + "\n"));
    let out = run(&[p.to_str().unwrap(), "--output", "ndjson"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("s3cr3t"), "{text}");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Five requests and one auth.failure for the login.
    assert_eq!(events.len(), 6, "{text}");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["name"] == "auth.failure")
            .count(),
        1
    );
    let sqlmap: Vec<&Value> = events
        .iter()
        .filter(|e| e["ip"] == "198.51.100.1")
        .collect();
    assert_eq!(sqlmap.len(), 3);
    for e in &sqlmap {
        // Blocked by the gate: answered 403 by the layer; the log's 200 is kept aside.
        assert_eq!(e["verdict"]["action"], "block");
        assert_eq!(e["http"]["status"], 403);
    }
    assert!(events
        .iter()
        .all(|e| e["attrs"].to_string().contains("x.log:")));
}

#[test]
fn crlf_line_ends_and_a_missing_last_line_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = mixed_log();
    let p = write(dir.path(), "win.log", &log.join("\r\n"));
    let v = json(&run(&[p.to_str().unwrap(), "--output", "json", "--all"]));
    assert_eq!(v["summary"]["parsed"], log.len());
    assert_eq!(v["summary"]["malformed"], 0);
    let sample = client(&v, "198.51.100.9").unwrap()["reasons"][0]["sample"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !sample.contains('\r') && !sample.contains("\\r"),
        "{sample}"
    );
}

#[test]
fn huge_lines_are_parsed_or_skipped_without_stopping_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    // A valid 1 MiB request: a traversal probe hidden at the end of a long query.
    let long = format!("/a?x={}&f=../../../../etc/passwd", "y".repeat(1 << 20));
    text += &line("203.0.113.77", 1, "GET", &long, 404, CHROME);
    text.push('\n');
    // 20 MiB without a line end: over the limit, skipped and counted.
    text += &"z".repeat(20 << 20);
    text.push('\n');
    text += &line("10.0.0.1", 3, "GET", "/", 200, CHROME);
    text.push('\n');
    let p = write(dir.path(), "big.log", &text);
    let out = run(&[p.to_str().unwrap(), "--output", "json", "--all"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = json(&out);
    assert_eq!(v["summary"]["lines"], 3);
    assert_eq!(v["summary"]["parsed"], 2);
    assert_eq!(v["summary"]["malformed"], 1);
    assert!(
        stderr.contains("big.log:2: malformed (line too long)"),
        "{stderr}"
    );
    let c = client(&v, "203.0.113.77").unwrap();
    assert!(c["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["rule"] == "sig.traversal"));
    assert!(client(&v, "10.0.0.1").is_some());
}

#[test]
fn json_lines_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..5 {
        text += &format!(
            "{{\"time_iso8601\":\"2024-01-01T00:00:0{i}+00:00\",\"remote_addr\":\"198.51.100.3\",\"request\":\"GET /x HTTP/1.1\",\"status\":\"200\",\"body_bytes_sent\":\"1\",\"request_time\":\"0.001\",\"http_referer\":\"\",\"http_user_agent\":\"Nikto/2.5.0\"}}\n"
        );
    }
    let p = write(dir.path(), "access.json", &text);
    let v = json(&run(&[p.to_str().unwrap(), "--output", "json"]));
    assert_eq!(v["summary"]["parsed"], 5);
    assert_eq!(client(&v, "198.51.100.3").unwrap()["verdict"], "block");
}

mod fidelity {
    //! The same traffic through the live layer and through `triage` on its access log gives
    //! every client the same verdict.

    use std::collections::BTreeMap;
    use std::net::{IpAddr, SocketAddr};

    use axum::body::Body;
    use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
    use axum::Router;
    use tower::ServiceExt;
    use tower_siem::engine::ManualClock;
    use tower_siem::{Action, Event, PeerAddr, SecurityContext, Siem};

    use super::*;

    /// The application without the layer answers `/login` POSTs 401 (wrong password),
    /// `/missing…` 404, everything else 200; that is what its access log records.
    fn app_status(method: &str, path: &str) -> u16 {
        if method == "POST" && path == "/login" {
            401
        } else if path.starts_with("/missing") {
            404
        } else {
            200
        }
    }

    async fn handler(ctx: SecurityContext, method: Method, uri: Uri) -> (StatusCode, HeaderMap) {
        let status = app_status(method.as_str(), uri.path());
        if status == 401 {
            ctx.fire(Event::new("auth.failure"));
        }
        let mut h = HeaderMap::new();
        h.insert(
            "x-gate",
            HeaderValue::from_static(ctx.verdict().action.as_str()),
        );
        (StatusCode::from_u16(status).unwrap(), h)
    }

    fn traffic() -> Vec<(u32, &'static str, &'static str, String, &'static str)> {
        let mut t = Vec::new();
        for i in 0..40u32 {
            t.push((i * 7, "10.1.0.1", "GET", format!("/products/{i}"), CHROME));
            t.push((
                i * 7 + 1,
                "10.1.0.2",
                "GET",
                "/search?q=o%27neill".into(),
                CHROME,
            ));
        }
        // A slow brute forcer: step-up at ten failures, throttled at twenty, then a client
        // that keeps going while throttled.
        for i in 0..40u32 {
            t.push((i * 4 + 2, "192.0.2.20", "POST", "/login".into(), CHROME));
        }
        // A 404 burst.
        for i in 0..60u32 {
            t.push((
                100 + i,
                "203.0.113.30",
                "GET",
                format!("/missing/{i}"),
                CHROME,
            ));
        }
        // Probes that decay between attempts.
        for i in 0..4u32 {
            t.push((
                i * 90 + 5,
                "203.0.113.40",
                "GET",
                "/.git/config".into(),
                CHROME,
            ));
        }
        t.push((50, "198.51.100.60", "GET", "/".into(), "Nikto/2.5.0"));
        // Each client comes back once more, so the live gate shows its final state.
        let mut last: BTreeMap<&str, u32> = BTreeMap::new();
        for (s, ip, ..) in &t {
            let e = last.entry(ip).or_default();
            *e = (*e).max(*s);
        }
        for (ip, s) in last {
            t.push((s + 1, ip, "GET", "/".into(), CHROME));
        }
        t.sort_by_key(|r| r.0);
        t
    }

    #[tokio::test]
    async fn triage_verdicts_match_the_live_layer() {
        let start: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let clock = ManualClock::new(start);
        let siem = Siem::builder().clock(clock.clone()).build().unwrap();
        let app = Router::new().fallback(handler).layer(siem.layer());

        let mut live: BTreeMap<String, Action> = BTreeMap::new();
        let mut log = String::new();
        for (secs, ip, method, target, ua) in traffic() {
            clock.set(start + jiff::SignedDuration::from_secs(i64::from(secs)));
            let mut req = Request::builder()
                .method(method)
                .uri(&target)
                .header("user-agent", ua)
                .body(Body::empty())
                .unwrap();
            let addr: IpAddr = ip.parse().unwrap();
            req.extensions_mut()
                .insert(PeerAddr(SocketAddr::new(addr, 40_000)));
            let res = app.clone().oneshot(req).await.unwrap();
            let action = match res.status().as_u16() {
                403 => Action::Block,
                429 => Action::Throttle,
                _ => {
                    let gate = match res.headers()["x-gate"].to_str().unwrap() {
                        "step_up" => Action::StepUp,
                        _ => Action::Allow,
                    };
                    // A handler's own event can step the client up on the spot.
                    if res.headers().contains_key("x-step-up-required") {
                        gate.max(Action::StepUp)
                    } else {
                        gate
                    }
                }
            };
            let worst = live.entry(ip.to_owned()).or_default();
            *worst = (*worst).max(action);
            let path = target.split('?').next().unwrap();
            log += &line(ip, secs, method, &target, app_status(method, path), ua);
            log.push('\n');
        }
        // The layer acted on every kind of client in this traffic.
        assert_eq!(live["198.51.100.60"], Action::Block);
        assert_eq!(live["192.0.2.20"], Action::Block);
        assert_eq!(live["10.1.0.2"], Action::Allow);
        assert!(live["203.0.113.30"] > Action::Allow);

        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "access.log", &log);
        let v = json(&run(&[p.to_str().unwrap(), "--output", "json", "--all"]));
        let offline: BTreeMap<String, Action> = v["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let a = match c["verdict"].as_str().unwrap() {
                    "block" => Action::Block,
                    "throttle" => Action::Throttle,
                    "step_up" => Action::StepUp,
                    _ => Action::Allow,
                };
                (c["ip"].as_str().unwrap().to_owned(), a)
            })
            .collect();
        assert_eq!(offline, live);
    }
}

#[test]
fn the_report_table_is_capped_and_keeps_the_offenders() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Vec::new();
    for i in 0..400u32 {
        log.push(line(
            &format!("10.2.{}.{}", i / 250, i % 250),
            i,
            "GET",
            "/",
            200,
            CHROME,
        ));
        if i % 100 == 50 {
            log.push(line("198.51.100.77", i, "GET", "/", 200, "sqlmap/1.7"));
        }
    }
    let p = write(dir.path(), "many.log", &(log.join("\n") + "\n"));
    let out = run(&[
        p.to_str().unwrap(),
        "--output",
        "json",
        "--all",
        "--max-clients",
        "16",
        "--threads",
        "1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = json(&out);
    let listed = v["clients"].as_array().unwrap();
    assert!(listed.len() <= 16, "{}", listed.len());
    // Each benign client came once, so the count is exact here.
    assert_eq!(v["summary"]["clients"], 401);
    assert_eq!(v["clients"][0]["ip"], "198.51.100.77");
    assert_eq!(v["clients"][0]["requests"], 4);
    assert!(stderr.contains("--max-clients"), "{stderr}");
}

/// `generate` says when it writes more lines than asked (a small `--lines` keeps every
/// attacker's traffic whole), and a reader that stops early (`generate | head`) is no error.
#[test]
fn generate_reports_its_line_count_and_stops_quietly_when_the_reader_does() {
    let out = Command::new(env!("CARGO_BIN_EXE_tower-siem"))
        .args(["generate", "--lines", "10", "--seed", "3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let written = out.stdout.iter().filter(|&&b| b == b'\n').count();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(written > 10, "{written} lines");
    assert!(
        stderr.contains(&format!("note: {written} lines, not the 10 asked for")),
        "{stderr}"
    );

    // Read one line, then close the pipe: the generator stops without an error message.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tower-siem"))
        .args(["generate", "--lines", "200000", "--seed", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("cannot write"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}
