//! Property tests of the access-log parsers: no input panics, and a valid line gives back
//! exactly the fields it was written from.
#![cfg(feature = "cli")]

use std::net::IpAddr;

use proptest::prelude::*;
use tower_siem::cli::triage::parse::{detect, parse_json, parse_line, Format};

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u16; 8]>().prop_map(IpAddr::from),
    ]
}

/// Text that a server writes inside quotes: printable, with `"` and `\` escaped.
fn quoted_text() -> impl Strategy<Value = String> {
    "[ -~]{0,60}".prop_filter("not a dash", |s| s != "-" && !s.is_empty())
}

fn escape_log(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[derive(Debug, Clone)]
struct Fields {
    ip: IpAddr,
    /// Seconds since the epoch (1970..2100).
    secs: i64,
    /// Minutes east of UTC.
    offset: i64,
    user: Option<String>,
    method: String,
    path: String,
    query: Option<String>,
    status: u16,
    bytes: Option<u64>,
    referer: Option<String>,
    agent: Option<String>,
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        ip(),
        86_400i64..4_102_444_800,
        -720i64..=840,
        proptest::option::of("[a-z][a-z0-9._@-]{0,15}"),
        "(GET|POST|PUT|DELETE|HEAD|PROPFIND)",
        "/[A-Za-z0-9/._%~-]{0,80}",
        proptest::option::of("[A-Za-z0-9=&%+._-]{0,80}"),
        100u16..=599,
        proptest::option::of(0u64..10_000_000_000),
        proptest::option::of(quoted_text()),
        proptest::option::of(quoted_text()),
    )
        .prop_map(
            |(ip, secs, offset, user, method, path, query, status, bytes, referer, agent)| Fields {
                ip,
                secs,
                offset: offset - offset % 15,
                user,
                method,
                path,
                query,
                status,
                bytes,
                referer,
                agent,
            },
        )
}

/// `10/Oct/2000:13:55:36 -0700`, written by jiff: an independent formatter for the parser
/// to agree with.
fn clf_time(secs: i64, offset: i64) -> String {
    let offset = jiff::tz::Offset::from_seconds(i32::try_from(offset * 60).unwrap()).unwrap();
    jiff::Timestamp::from_second(secs)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::fixed(offset))
        .strftime("%d/%b/%Y:%H:%M:%S %z")
        .to_string()
}

fn target(f: &Fields) -> String {
    match &f.query {
        Some(q) => format!("{}?{q}", f.path),
        None => f.path.clone(),
    }
}

fn combined_line(f: &Fields) -> String {
    format!(
        "{} - {} [{}] \"{} {} HTTP/1.1\" {} {} \"{}\" \"{}\"",
        f.ip,
        f.user.as_deref().unwrap_or("-"),
        clf_time(f.secs, f.offset),
        f.method,
        target(f),
        f.status,
        f.bytes.map_or("-".to_owned(), |b| b.to_string()),
        f.referer.as_deref().map_or("-".to_owned(), escape_log),
        f.agent.as_deref().map_or("-".to_owned(), escape_log),
    )
}

fn check(f: &Fields, l: &tower_siem::cli::triage::parse::Line<'_>, tail: bool) {
    assert_eq!(l.ip, f.ip);
    assert_eq!(l.time_ms, f.secs * 1000);
    assert_eq!(l.user.as_deref(), f.user.as_deref().map(str::as_bytes));
    assert_eq!(&*l.method, f.method.as_bytes());
    assert_eq!(l.path(), f.path.as_bytes());
    assert_eq!(l.query(), f.query.as_deref().map(str::as_bytes));
    assert_eq!(l.status, f.status);
    assert_eq!(l.bytes, f.bytes);
    if tail {
        assert_eq!(
            l.referer.as_deref(),
            f.referer.as_deref().map(str::as_bytes)
        );
        assert_eq!(
            l.user_agent.as_deref(),
            f.agent.as_deref().map(str::as_bytes)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        for f in [Format::Common, Format::Combined, Format::Json] {
            let _ = parse_line(f, &bytes);
        }
        let _ = detect(bytes.split(|&b| b == b'\n'));
    }

    #[test]
    fn mangled_valid_lines_never_panic(f in fields(), cut in any::<prop::sample::Index>(), junk in any::<u8>()) {
        let mut line = combined_line(&f).into_bytes();
        let i = cut.index(line.len());
        line[i] = junk;
        for fmt in [Format::Common, Format::Combined, Format::Json] {
            let _ = parse_line(fmt, &line);
            let _ = parse_line(fmt, &line[..i]);
        }
    }

    #[test]
    fn combined_lines_round_trip(f in fields()) {
        let line = combined_line(&f);
        let l = parse_line(Format::Combined, line.as_bytes()).unwrap();
        check(&f, &l, true);
        // With a CRLF line end, and as common (the tail ignored).
        let crlf = format!("{line}\r\n");
        check(&f, &parse_line(Format::Combined, crlf.as_bytes()).unwrap(), true);
        check(&f, &parse_line(Format::Common, line.as_bytes()).unwrap(), false);
    }

    #[test]
    fn json_lines_round_trip(f in fields(), iso in any::<bool>()) {
        let time = if iso {
            jiff::Timestamp::from_second(f.secs).unwrap().to_string()
        } else {
            clf_time(f.secs, f.offset)
        };
        let mut o = serde_json::json!({
            "remote_addr": f.ip.to_string(),
            if iso { "time_iso8601" } else { "time_local" }: time,
            "request": format!("{} {} HTTP/1.1", f.method, target(&f)),
            "status": f.status.to_string(),
            "body_bytes_sent": f.bytes.map_or("-".to_owned(), |b| b.to_string()),
            "request_time": "0.004",
            "http_referer": f.referer.clone().unwrap_or_default(),
            "http_user_agent": f.agent.clone().unwrap_or_default(),
        });
        if let Some(u) = &f.user {
            o["remote_user"] = u.clone().into();
        }
        let line = serde_json::to_string(&o).unwrap();
        let l = parse_json(line.as_bytes()).unwrap();
        check(&f, &l, true);
        prop_assert_eq!(detect([line.as_bytes()]), Some(Format::Json));
    }
}
