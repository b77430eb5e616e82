//! `tower-siem events`: query the SQLite event store from the shell.
//!
//! ```text
//! tower-siem events [--db FILE] [--ip IP] [--user U] [--name N] [--since 10m|RFC3339]
//!                   [--limit N] [--output table|json]
//! ```
//!
//! Prints the newest `--limit` matching events (default 50), oldest first, as an aligned
//! table or as JSON lines (one native event object per line). The database is `--db`, else
//! `$TOWER_SIEM_DB`, else `./tower-siem-events.db`; it is opened read-only, so the
//! application can keep writing it.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::engine::Dur;
use crate::sink::sqlite::{EventQuery, SqliteStore};
use crate::Event;

/// The default database file, relative to the working directory.
const DEFAULT_DB: &str = "tower-siem-events.db";
/// Longest request column in the table, in characters.
const MAX_REQUEST: usize = 60;

#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// The events database [default: $TOWER_SIEM_DB, or ./tower-siem-events.db].
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Only events from this client IP.
    #[arg(long, value_name = "IP")]
    ip: Option<IpAddr>,
    /// Only events about this user.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Only events with this name, such as auth.failure or http.request.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Only events since this long ago (30s, 10m, 2h, 7d) or since this time (RFC 3339).
    #[arg(long, value_name = "AGO|TIME", value_parser = parse_since)]
    since: Option<Since>,
    /// Most events to show: the newest.
    #[arg(long, value_name = "N", default_value_t = 50)]
    limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    /// An aligned table.
    Table,
    /// One JSON object per line.
    Json,
}

/// `--since`: an age or an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Since {
    Ago(std::time::Duration),
    At(jiff::Timestamp),
}

impl Since {
    fn resolve(self, now: jiff::Timestamp) -> jiff::Timestamp {
        match self {
            Since::At(t) => t,
            Since::Ago(d) => jiff::SignedDuration::try_from(d)
                .ok()
                .and_then(|d| now.checked_sub(d).ok())
                .unwrap_or(jiff::Timestamp::MIN),
        }
    }
}

fn parse_since(s: &str) -> Result<Since, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(Since::At(t));
    }
    Dur::parse(s).map(|d| Since::Ago(d.0)).map_err(|e| {
        format!("{e}; or give a time like 2026-11-27T09:00:00Z (RFC 3339, with an offset)")
    })
}

pub(crate) fn run(args: EventsArgs) -> ExitCode {
    let mut out = io::stdout().lock();
    match execute(
        &args,
        jiff::Timestamp::now(),
        std::env::var_os("TOWER_SIEM_DB"),
        &mut out,
    ) {
        Ok(0) => {
            let _ = writeln!(io::stderr(), "no matching events");
            ExitCode::SUCCESS
        }
        Ok(_) => ExitCode::SUCCESS,
        // `tower-siem events | head` closes the pipe early: not an error.
        Err(Failure::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "tower-siem events: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug)]
enum Failure {
    Store(String),
    Io(io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Store(e) => f.write_str(e),
            Failure::Io(e) => write!(f, "writing the output: {e}"),
        }
    }
}

/// Runs the query and writes the output; returns how many events were shown.
fn execute(
    args: &EventsArgs,
    now: jiff::Timestamp,
    env_db: Option<OsString>,
    out: &mut impl Write,
) -> Result<usize, Failure> {
    let db = args
        .db
        .clone()
        .or_else(|| env_db.filter(|p| !p.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    let store = SqliteStore::open(&db).map_err(|e| Failure::Store(e.to_string()))?;
    let mut query = EventQuery::new().limit(args.limit);
    if let Some(ip) = args.ip {
        query = query.ip(ip);
    }
    if let Some(user) = &args.user {
        query = query.user(user.clone());
    }
    if let Some(name) = &args.name {
        query = query.name(name.clone());
    }
    if let Some(since) = args.since {
        query = query.since(since.resolve(now));
    }
    let mut events = store
        .events(&query)
        .map_err(|e| Failure::Store(e.to_string()))?;
    // Newest N, shown oldest first like a log.
    events.reverse();
    let text = match args.output {
        Output::Table if events.is_empty() => String::new(),
        Output::Table => table(&events),
        Output::Json => json_lines(&events).map_err(|e| Failure::Store(e.to_string()))?,
    };
    out.write_all(text.as_bytes()).map_err(Failure::Io)?;
    out.flush().map_err(Failure::Io)?;
    Ok(events.len())
}

fn json_lines(events: &[Event]) -> Result<String, serde_json::Error> {
    let mut text = String::new();
    for event in events {
        text.push_str(&serde_json::to_string(event)?);
        text.push('\n');
    }
    Ok(text)
}

/// Makes a value safe for one terminal cell: control characters (which could move the
/// cursor or rewrite the screen) are shown escaped.
fn cell(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}') {
            s.extend(c.escape_default());
        } else {
            s.push(c);
        }
    }
    s
}

fn truncate(mut s: String, max: usize) -> String {
    if let Some((cut, _)) = s.char_indices().nth(max.saturating_sub(1)) {
        if s.chars().count() > max {
            s.truncate(cut);
            s.push('…');
        }
    }
    s
}

fn row(e: &Event) -> [String; 9] {
    let verdict = e.verdict.as_ref();
    let request = e.http.as_ref().map_or_else(
        || "-".into(),
        |h| {
            let mut r = format!("{} {}", h.method, h.path);
            if let Some(q) = &h.query {
                let _ = write!(r, "?{q}");
            }
            r
        },
    );
    [
        e.time
            .round(jiff::Unit::Millisecond)
            .unwrap_or(e.time)
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
        cell(e.name.as_str()),
        e.subject.ip.map_or_else(|| "-".into(), |ip| ip.to_string()),
        e.subject.user.as_deref().map_or_else(|| "-".into(), cell),
        verdict.map_or_else(|| "-".into(), |v| v.action.to_string()),
        verdict.map_or_else(|| "-".into(), |v| format!("{:.0}", v.score)),
        e.status().map_or_else(|| "-".into(), |s| s.to_string()),
        truncate(cell(&request), MAX_REQUEST),
        verdict.map_or(String::new(), |v| cell(&v.reasons.join(","))),
    ]
}

const HEADER: [&str; 9] = [
    "TIME", "NAME", "IP", "USER", "ACTION", "SCORE", "STATUS", "REQUEST", "REASONS",
];

/// An aligned table: columns separated by two spaces, no trailing spaces.
fn table(events: &[Event]) -> String {
    let rows: Vec<[String; 9]> = events.iter().map(row).collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut text = String::new();
    let header = HEADER.map(String::from);
    for r in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(c);
            if i + 1 < r.len() {
                line.extend(std::iter::repeat_n(' ', w - c.chars().count()));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{HttpInfo, SharedEvent};
    use crate::sink::{Sink, SqliteSink};
    use crate::{Action, Verdict};
    use clap::Parser;
    use std::sync::Arc;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: EventsArgs,
    }

    fn args(argv: &[&str]) -> EventsArgs {
        Wrap::try_parse_from(std::iter::once("events").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    async fn sample_db(dir: &std::path::Path) -> PathBuf {
        let db = dir.join("events.db");
        let mut events: Vec<SharedEvent> = Vec::new();
        for i in 0..5 {
            let mut e = Event::new("auth.failure")
                .at(ts("2026-11-27T12:00:00Z") + jiff::SignedDuration::from_secs(i))
                .user("alice")
                .ip("203.0.113.5".parse().unwrap());
            e.verdict = Some(Verdict {
                action: if i >= 3 {
                    Action::StepUp
                } else {
                    Action::Allow
                },
                score: 10.0 * i as f64,
                reasons: if i >= 3 {
                    vec!["login-brute-force-user".into()]
                } else {
                    vec![]
                },
                retry_after_secs: None,
            });
            events.push(Arc::new(e));
        }
        let mut req = Event::new("http.request")
            .at(ts("2026-11-27T12:00:10Z"))
            .ip("192.0.2.1".parse().unwrap())
            .user("eve\u{1b}[2J");
        req.http = Some(HttpInfo {
            method: "GET".into(),
            path: format!("/{}", "a".repeat(100)),
            query: Some("q=1".into()),
            status: Some(404),
            ..HttpInfo::default()
        });
        events.push(Arc::new(req));
        let sink = SqliteSink::new(&db).with_unbounded_retention();
        sink.write(&events).await.unwrap();
        sink.flush().await.unwrap();
        db
    }

    fn run_to_string(a: &EventsArgs, now: jiff::Timestamp) -> Result<(usize, String), Failure> {
        let mut out = Vec::new();
        let n = execute(a, now, None, &mut out)?;
        Ok((n, String::from_utf8(out).unwrap()))
    }

    #[test]
    fn since_takes_an_age_or_a_time() {
        let now = ts("2026-11-27T12:00:00Z");
        assert_eq!(
            parse_since("10m").unwrap().resolve(now),
            ts("2026-11-27T11:50:00Z")
        );
        assert_eq!(
            parse_since("2026-11-27T09:00:00+01:00")
                .unwrap()
                .resolve(now),
            ts("2026-11-27T08:00:00Z")
        );
        let err = parse_since("yesterday").unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
        assert_eq!(
            parse_since("100000000d").map(|s| s.resolve(now)).ok(),
            None,
            "out of range is an error, not a panic"
        );
    }

    #[tokio::test]
    async fn table_is_aligned_chronological_and_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let db = sample_db(dir.path()).await;
        let a = args(&["--db", db.to_str().unwrap()]);
        let (n, text) = run_to_string(&a, ts("2026-11-27T13:00:00Z")).unwrap();
        assert_eq!(n, 6);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7, "{text}");
        // Every column starts where its header does.
        for header in ["NAME", "IP", "USER", "ACTION", "SCORE", "STATUS", "REQUEST"] {
            let col = lines[0].find(header).unwrap();
            for line in &lines[1..] {
                let (at, c) = line.char_indices().nth(col).unwrap();
                assert!(
                    line[..at].ends_with("  "),
                    "{header} misaligned in {line:?}"
                );
                assert_ne!(c, ' ', "{header} misaligned in {line:?}");
            }
        }
        assert!(lines[1].starts_with("2026-11-27T12:00:00.000Z  auth.failure  203.0.113.5"));
        assert!(lines[4].contains("step_up") && lines[4].ends_with("login-brute-force-user"));
        let last = lines[6];
        assert!(
            !last.contains('\u{1b}'),
            "control characters are escaped: {last:?}"
        );
        assert!(last.contains("eve\\u{1b}[2J"), "{last}");
        assert!(last.contains("404") && last.contains("GET /aaa") && last.contains('…'));
        assert!(text.lines().all(|l| !l.ends_with(' ')));
    }

    #[tokio::test]
    async fn filters_and_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let db = sample_db(dir.path()).await;
        let d = db.to_str().unwrap();
        let now = ts("2026-11-27T12:00:12Z");

        let a = args(&[
            "--db", d, "--user", "alice", "--limit", "2", "--output", "json",
        ]);
        let (n, text) = run_to_string(&a, now).unwrap();
        assert_eq!(n, 2);
        let events: Vec<Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 2);
        assert!(events[0].time < events[1].time, "oldest first");
        assert_eq!(events[1].time, ts("2026-11-27T12:00:04Z"), "the newest two");

        let a = args(&["--db", d, "--ip", "192.0.2.1", "--output", "json"]);
        assert_eq!(run_to_string(&a, now).unwrap().0, 1);
        let a = args(&["--db", d, "--name", "auth.failure", "--since", "10s"]);
        assert_eq!(run_to_string(&a, now).unwrap().0, 3, "12:00:02 .. 12:00:04");
        let a = args(&[
            "--db",
            d,
            "--since",
            "2026-11-27T12:00:04Z",
            "--output",
            "json",
        ]);
        assert_eq!(run_to_string(&a, now).unwrap().0, 2);
        let a = args(&["--db", d, "--user", "nobody"]);
        assert_eq!(run_to_string(&a, now).unwrap(), (0, String::new()));
    }

    #[test]
    fn a_missing_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("nope.db");
        let a = args(&["--db", db.to_str().unwrap()]);
        let err = run_to_string(&a, jiff::Timestamp::now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.db"), "{err}");
        // The environment variable is the fallback for `--db`.
        let mut out = Vec::new();
        let err = execute(
            &args(&[]),
            jiff::Timestamp::now(),
            Some(db.clone().into_os_string()),
            &mut out,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("nope.db"), "{err}");
        assert!(!db.exists());
    }

    #[test]
    fn bad_arguments_are_refused_by_the_parser() {
        assert!(Wrap::try_parse_from(["events", "--ip", "not-an-ip"]).is_err());
        assert!(Wrap::try_parse_from(["events", "--limit", "-1"]).is_err());
        assert!(Wrap::try_parse_from(["events", "--output", "xml"]).is_err());
        assert!(Wrap::try_parse_from(["events", "--since", "soon"]).is_err());
    }
}
