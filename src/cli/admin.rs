//! `tower-siem offenders | explain | block | unblock | allow`: a running application's admin
//! API from the shell.
//!
//! ```text
//! export TOWER_SIEM_URL=http://127.0.0.1:3000/_siem TOWER_SIEM_ADMIN_TOKEN=…
//! tower-siem offenders [--output table|json]
//! tower-siem explain ip:203.0.113.7
//! tower-siem block ip:203.0.113.7 --for 1h
//! tower-siem unblock ip:203.0.113.7
//! tower-siem allow net:198.51.100.0/24 --for 7d
//! ```
//!
//! The URL is where the application nested `Siem::admin_router` (`--url`, else
//! `$TOWER_SIEM_URL`, else `http://127.0.0.1:3000/_siem`); the token comes from
//! `$TOWER_SIEM_ADMIN_TOKEN` (or `--token`, which other users of the machine can see in the
//! process list). Entities are named as the API names them: `ip:…`, `net:…/24`, `user:…`,
//! `session:…`, `device:…`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::Value;

/// Where the API is and how to speak to it.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The admin API's base URL [default: $TOWER_SIEM_URL, or http://127.0.0.1:3000/_siem].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The admin token [default: $TOWER_SIEM_ADMIN_TOKEN]. Prefer the variable: a flag shows
    /// in the process list.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    /// An aligned table (a list) or `key: value` lines (one entity).
    Table,
    /// The API's JSON, one document.
    Json,
}

/// `tower-siem explain` / `unblock`.
#[derive(Debug, Args)]
pub(crate) struct EntityArgs {
    /// The entity: `ip:203.0.113.7`, `net:203.0.113.0/24`, `user:alice`, …
    entity: String,
    #[command(flatten)]
    target: Target,
}

/// `tower-siem block` / `allow`.
#[derive(Debug, Args)]
pub(crate) struct ForArgs {
    /// The entity: `ip:203.0.113.7`, `net:203.0.113.0/24`, `user:alice`, …
    entity: String,
    /// For how long (30s, 10m, 2h, 7d).
    #[arg(long = "for", value_name = "DURATION")]
    duration: String,
    #[command(flatten)]
    target: Target,
}

/// Which admin command.
#[derive(Debug)]
pub(crate) enum Request {
    Offenders(Target),
    Explain(EntityArgs),
    Block(ForArgs),
    Unblock(EntityArgs),
    Allow(ForArgs),
}

pub(crate) fn run(request: Request) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tower-siem: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(request)) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tower-siem: {e}");
            ExitCode::FAILURE
        }
    }
}

fn setting(flag: Option<&String>, var: &str) -> Option<String> {
    flag.cloned()
        .or_else(|| std::env::var(var).ok())
        .filter(|v| !v.is_empty())
}

/// The entity as one path segment.
fn segment(entity: &str) -> String {
    percent_encoding::utf8_percent_encode(entity, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        // `:` and `.` read better and need no escaping in a segment.
        .replace("%3A", ":")
        .replace("%2E", ".")
}

async fn execute(request: Request) -> Result<String, String> {
    let (target, method, path, body) = match &request {
        Request::Offenders(t) => (t, "GET", "/api/offenders".to_owned(), None),
        Request::Explain(a) => (
            &a.target,
            "GET",
            format!("/api/entities/{}", segment(&a.entity)),
            None,
        ),
        Request::Unblock(a) => (
            &a.target,
            "POST",
            format!("/api/entities/{}/unblock", segment(&a.entity)),
            None,
        ),
        Request::Block(a) | Request::Allow(a) => {
            let verb = if matches!(request, Request::Block(_)) {
                "block"
            } else {
                "allow"
            };
            (
                &a.target,
                "POST",
                format!("/api/entities/{}/{verb}", segment(&a.entity)),
                Some(serde_json::json!({ "for": a.duration })),
            )
        }
    };
    let base = setting(target.url.as_ref(), "TOWER_SIEM_URL")
        .unwrap_or_else(|| "http://127.0.0.1:3000/_siem".to_owned());
    let token = setting(target.token.as_ref(), "TOWER_SIEM_ADMIN_TOKEN")
        .ok_or("no admin token: set TOWER_SIEM_ADMIN_TOKEN (or --token)")?;
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let mut req = match method {
        "GET" => client.get(&url),
        _ => client.post(&url),
    }
    .bearer_auth(&token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {}", without_url(&e)))?;
    let status = res.status();
    let text = res
        .text()
        .await
        .map_err(|e| format!("{method} {url}: {}", without_url(&e)))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|_| format!("{method} {url}: {status}, not the admin API's JSON"))?;
    if !status.is_success() {
        let why = json["error"].as_str().unwrap_or("no reason given");
        return Err(format!("{method} {url}: {status}: {why}"));
    }
    Ok(match (target.output, &request) {
        (Output::Json, _) => json.to_string(),
        (Output::Table, Request::Offenders(_)) => table(&json),
        (Output::Table, _) => one(&json),
    })
}

fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(at) = e.find(" for url (") {
        e.truncate(at);
    }
    e
}

/// What an entity's verdict is, for the table.
fn row(o: &Value) -> [String; 6] {
    let rules: Vec<&str> = o["contributions"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["rule"].as_str()).collect())
        .unwrap_or_default();
    let left = o["time_left_ms"]
        .as_i64()
        .filter(|&ms| ms > 0)
        .map(|ms| format!("{}s", (ms + 999) / 1000))
        .unwrap_or_default();
    [
        o["entity"].as_str().unwrap_or("?").to_owned(),
        o["state"].as_str().unwrap_or("").to_owned(),
        o["verdict"]["action"].as_str().unwrap_or("").to_owned(),
        o["verdict"]["score"]
            .as_f64()
            .map(|s| format!("{s:.0}"))
            .unwrap_or_default(),
        left,
        rules.join(","),
    ]
}

fn table(json: &Value) -> String {
    let rows: Vec<[String; 6]> = json
        .as_array()
        .map(|a| a.iter().map(row).collect())
        .unwrap_or_default();
    if rows.is_empty() {
        return "no offenders".to_owned();
    }
    let head = ["ENTITY", "STATE", "ACTION", "SCORE", "LEFT", "RULES"].map(str::to_owned);
    let mut width = [0usize; 6];
    for r in std::iter::once(&head).chain(&rows) {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(width)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.pop();
    out
}

fn one(json: &Value) -> String {
    if json["state"] == "none" {
        return format!("{}: nothing held", json["entity"].as_str().unwrap_or("?"));
    }
    let [entity, state, action, score, left, rules] = row(json);
    let mut out = format!("entity: {entity}\nstate:  {state}\naction: {action}\nscore:  {score}");
    if !left.is_empty() {
        out.push_str(&format!("\nleft:   {left}"));
    }
    if !rules.is_empty() {
        out.push_str(&format!("\nrules:  {rules}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_become_one_path_segment() {
        assert_eq!(segment("ip:203.0.113.7"), "ip:203.0.113.7");
        assert_eq!(segment("net:203.0.113.0/24"), "net:203.0.113.0%2F24");
        assert_eq!(segment("user:a b/../c"), "user:a%20b%2F..%2Fc");
        assert_eq!(segment("ip:2001:db8::1"), "ip:2001:db8::1");
    }

    #[test]
    fn the_table_aligns_and_says_when_empty() {
        assert_eq!(table(&serde_json::json!([])), "no offenders");
        let t = table(&serde_json::json!([
            {"entity": "ip:203.0.113.7", "state": "blocked", "time_left_ms": 599_001,
             "verdict": {"action": "block", "score": 99.9},
             "contributions": [{"rule": "sig.scanner_ua"}]},
            {"entity": "user:alice", "state": "scored",
             "verdict": {"action": "step_up", "score": 40.2},
             "contributions": [{"rule": "auth.bruteforce.user"}]},
        ]));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("ENTITY          STATE    ACTION"),
            "{t}"
        );
        assert!(
            lines[1].contains("block") && lines[1].contains("600s"),
            "{t}"
        );
        assert!(lines[2].ends_with("auth.bruteforce.user"), "{t}");
    }
}
