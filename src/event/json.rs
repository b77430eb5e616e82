//! The native JSON form of an [`Event`], written by hand.
//!
//! Every sink turns each event into JSON on the pipeline's worker, which shares the CPU with the
//! application. Through `serde_json` and the derived `Serialize`, half of that time went to
//! escaping strings one byte at a time (the user agent alone is over 100 bytes), and the
//! flattened subject made the event a map rather than a struct. This writer produces the same
//! bytes as `serde_json::to_writer(out, event)` — the unit tests below compare the two on
//! generated events, control characters, quotes and non-ASCII text included — while checking
//! strings for characters to escape eight bytes at a time.

use std::io::Write as _;
use std::net::IpAddr;

use super::{Event, HttpInfo, Subject};
use crate::engine::Verdict;

/// Appends `event` as one JSON object, byte for byte what `serde_json::to_writer` writes for it.
pub(crate) fn write_event(out: &mut Vec<u8>, event: &Event) {
    write_event_ascii(out, event);
}

/// [`write_event`], returning whether every byte written is ASCII (then no line separator such
/// as U+2028 can be in it, and the caller's scan for them can be skipped).
pub(crate) fn write_event_ascii(out: &mut Vec<u8>, event: &Event) -> bool {
    // The OR of every string's bytes: its high bit says whether one was not ASCII. Numbers,
    // the id, the time and the IP are ASCII.
    let mut hi = 0;
    let hi = &mut hi;
    out.reserve(256 + event.user_agent.as_ref().map_or(0, String::len));
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(&super::id::hyphenated(&event.id));
    out.extend_from_slice(b"\",\"name\":");
    write_str(out, hi, event.name.as_str());
    out.extend_from_slice(b",\"time\":\"");
    write_time(out, event.time);
    out.push(b'"');
    write_subject(out, hi, &event.subject);
    if let Some(ua) = &event.user_agent {
        out.extend_from_slice(b",\"user_agent\":");
        write_str(out, hi, ua);
    }
    if let Some(http) = &event.http {
        out.extend_from_slice(b",\"http\":");
        write_http(out, hi, http);
    }
    if let Some(v) = &event.verdict {
        out.extend_from_slice(b",\"verdict\":");
        write_verdict(out, hi, v);
    }
    if !event.attrs.is_empty() {
        out.extend_from_slice(b",\"attrs\":");
        write_pairs(out, hi, &event.attrs);
    }
    out.push(b'}');
    *hi & HIGHS == 0
}

/// `Timestamp`'s `Serialize` is its `Display`: RFC 3339 in UTC, `Z`, and the fraction of a
/// second only when there is one, without trailing zeros. Written here without `fmt` for years
/// 0 to 9999; any other year goes through `Display` itself.
fn write_time(out: &mut Vec<u8>, ts: jiff::Timestamp) {
    let dt = jiff::tz::Offset::UTC.to_datetime(ts);
    let year = match u16::try_from(dt.year()) {
        Ok(year) if year <= 9999 => year,
        // Writing to a `Vec` cannot fail.
        _ => {
            let _ = write!(out, "{ts}");
            return;
        }
    };
    // Each value is in range for its field (a civil date-time), so every `as u8` below fits.
    let two = |v: i8| [b'0' + (v as u8) / 10, b'0' + (v as u8) % 10];
    let [mo0, mo1] = two(dt.month());
    let [d0, d1] = two(dt.day());
    let [h0, h1] = two(dt.hour());
    let [mi0, mi1] = two(dt.minute());
    let [s0, s1] = two(dt.second());
    out.extend_from_slice(&[
        b'0' + (year / 1000) as u8,
        b'0' + (year / 100 % 10) as u8,
        b'0' + (year / 10 % 10) as u8,
        b'0' + (year % 10) as u8,
        b'-',
        mo0,
        mo1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b':',
        mi0,
        mi1,
        b':',
        s0,
        s1,
    ]);
    let mut nanos = dt.subsec_nanosecond().unsigned_abs();
    if nanos != 0 {
        let mut digits = [0u8; 10];
        digits[0] = b'.';
        for d in digits[1..].iter_mut().rev() {
            *d = b'0' + (nanos % 10) as u8;
            nanos /= 10;
        }
        let end = digits.iter().rposition(|&d| d != b'0').map_or(1, |i| i + 1);
        out.extend_from_slice(&digits[..end]);
    }
    out.push(b'Z');
}

/// The subject's fields, flattened into the event (each preceded by a comma).
fn write_subject(out: &mut Vec<u8>, hi: &mut u64, s: &Subject) {
    if let Some(ip) = s.ip {
        out.extend_from_slice(b",\"ip\":\"");
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    out.extend_from_slice(itoa::Buffer::new().format(octet).as_bytes());
                }
            }
            // Writing to a `Vec` cannot fail.
            IpAddr::V6(_) => {
                let _ = write!(out, "{ip}");
            }
        }
        out.push(b'"');
    }
    opt_str(out, hi, b",\"user\":", s.user.as_deref());
    opt_str(out, hi, b",\"session\":", s.session.as_deref());
    opt_str(out, hi, b",\"device\":", s.device.as_deref());
}

fn write_http(out: &mut Vec<u8>, hi: &mut u64, h: &HttpInfo) {
    out.extend_from_slice(b"{\"method\":");
    write_str(out, hi, &h.method);
    opt_str(out, hi, b",\"route\":", h.route.as_deref());
    out.extend_from_slice(b",\"path\":");
    write_str(out, hi, &h.path);
    opt_str(out, hi, b",\"query\":", h.query.as_deref());
    opt_u64(out, b",\"status\":", h.status.map(u64::from));
    opt_u64(out, b",\"latency_us\":", h.latency_us);
    opt_u64(out, b",\"bytes\":", h.bytes);
    opt_str(out, hi, b",\"request_id\":", h.request_id.as_deref());
    if !h.headers.is_empty() {
        out.extend_from_slice(b",\"headers\":");
        write_pairs(out, hi, &h.headers);
    }
    out.push(b'}');
}

fn write_verdict(out: &mut Vec<u8>, hi: &mut u64, v: &Verdict) {
    out.extend_from_slice(b"{\"action\":\"");
    out.extend_from_slice(v.action.as_str().as_bytes());
    out.extend_from_slice(b"\",\"score\":");
    // serde_json's own float form (shortest round-trip; `null` for NaN and infinities).
    let _ = serde_json::to_writer(&mut *out, &v.score);
    if !v.reasons.is_empty() {
        out.extend_from_slice(b",\"reasons\":[");
        for (i, r) in v.reasons.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, hi, r);
        }
        out.push(b']');
    }
    opt_u64(out, b",\"retry_after_secs\":", v.retry_after_secs);
    out.push(b'}');
}

/// Key-value pairs as serde writes a `Vec<(String, String)>`: an array of two-element arrays.
fn write_pairs(out: &mut Vec<u8>, hi: &mut u64, pairs: &[(String, String)]) {
    out.push(b'[');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        write_str(out, hi, k);
        out.push(b',');
        write_str(out, hi, v);
        out.push(b']');
    }
    out.push(b']');
}

fn opt_str(out: &mut Vec<u8>, hi: &mut u64, key: &[u8], value: Option<&str>) {
    if let Some(v) = value {
        out.extend_from_slice(key);
        write_str(out, hi, v);
    }
}

fn opt_u64(out: &mut Vec<u8>, key: &[u8], value: Option<u64>) {
    if let Some(v) = value {
        out.extend_from_slice(key);
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Has the high bit of each byte of `w` set that is below 0x20, a `"` or a `\\` (the bytes
/// JSON escapes), and maybe of bytes above such a one, never in a word without one. (A byte
/// `b` is zero exactly when `(b - 1) & !b` has its high bit set, and below `n <= 0x80` exactly
/// when `(b - n) & !b` has; a borrow only ever runs upwards from a byte that matched.)
#[inline]
fn escape_bits(w: u64) -> u64 {
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (control | quote | backslash) & HIGHS
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it: `"` and `\\`, and
/// every byte below 0x20 (`\b \t \n \f \r`, otherwise `\u00xx`). Anything else, non-ASCII
/// included, is copied as is. ORs every byte of `s` into `hi`.
pub(crate) fn write_str(out: &mut Vec<u8>, hi: &mut u64, s: &str) {
    let bytes = s.as_bytes();
    let (esc, or) = scan(bytes);
    *hi |= or;
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if esc == 0 {
        out.extend_from_slice(bytes);
    } else {
        write_escaped(out, bytes);
    }
    out.push(b'"');
}

/// For `bytes`: nonzero when one may need an escape (see [`escape_bits`]), and the OR of all
/// of them (its high bits say whether one was not ASCII). One pass over eight-byte words
/// without a branch on each: most strings need no escape and are then copied whole. A tail
/// shorter than a word is read as the string's last eight bytes, overlapping the words before.
#[inline]
fn scan(bytes: &[u8]) -> (u64, u64) {
    let word = |i: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let n = bytes.len();
    let (mut esc, mut or) = (0, 0);
    if n >= 8 {
        let mut i = 0;
        while i + 8 <= n {
            let w = word(i);
            esc |= escape_bits(w);
            or |= w;
            i += 8;
        }
        if i < n {
            let w = word(n - 8);
            esc |= escape_bits(w);
            or |= w;
        }
    } else {
        for &b in bytes {
            or |= u64::from(b);
            esc |= u64::from(b < 0x20 || b == b'"' || b == b'\\');
        }
    }
    (esc, or)
}

/// The bytes of a string that holds something to escape, byte by byte.
#[cold]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0C => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1F => {
                out.extend_from_slice(&bytes[run..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xF)],
                ]);
                run = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(escape);
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;
    use crate::engine::Action;

    fn serde_bytes(e: &Event) -> Vec<u8> {
        serde_json::to_vec(e).unwrap()
    }

    fn ours(e: &Event) -> Vec<u8> {
        let mut out = Vec::new();
        write_event(&mut out, e);
        out
    }

    #[test]
    fn an_escape_or_a_non_ascii_byte_is_found_at_any_position_of_any_length() {
        for len in 1..=33 {
            for at in 0..len {
                for (c, ascii) in [('"', true), ('\n', true), ('\u{7f}', true), ('é', false)] {
                    let mut s: String = "a".repeat(len);
                    s.replace_range(at..at + 1, &c.to_string());
                    let mut out = Vec::new();
                    let mut hi = 0;
                    write_str(&mut out, &mut hi, &s);
                    assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{s:?}");
                    assert_eq!(hi & HIGHS == 0, ascii, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn an_event_says_whether_it_was_all_ascii() {
        let ascii = Event::new("auth.failure").user("alice");
        assert!(write_event_ascii(&mut Vec::new(), &ascii));
        let accented = Event::new("auth.failure").user("zoë");
        assert!(!write_event_ascii(&mut Vec::new(), &accented));
        let in_attrs = Event::new("auth.failure").attr("note", "a\u{2028}b");
        assert!(!write_event_ascii(&mut Vec::new(), &in_attrs));
    }

    #[test]
    fn every_byte_below_0x80_is_escaped_as_serde_json_does() {
        for b in 0u8..0x80 {
            let s = String::from(char::from(b));
            let mut out = Vec::new();
            write_str(&mut out, &mut 0, &s);
            assert_eq!(out, serde_json::to_vec(&s).unwrap(), "byte {b:#04x}");
            // Also inside a long run, where the word-at-a-time check is the one that finds it.
            let long = format!("abcdefghij{s}klmnopqrstuv{s}");
            out.clear();
            write_str(&mut out, &mut 0, &long);
            assert_eq!(out, serde_json::to_vec(&long).unwrap(), "byte {b:#04x}");
        }
    }

    #[test]
    fn a_typical_request_event_is_identical() {
        let mut e = Event::new("http.request")
            .ip(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)))
            .user("o'neill \"the\" \\admin\\")
            .session("3f1a9c0e5b7d2a4c")
            .user_agent("Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0 Safari/537.36")
            .attr("note", "two\nlines\u{2028}here\u{0}");
        e.http = Some(HttpInfo {
            method: "GET".into(),
            route: Some("/products/{id}".into()),
            path: "/products/42".into(),
            query: Some("q=%27&password=[REDACTED]".into()),
            status: Some(200),
            latency_us: Some(1234),
            bytes: Some(u64::MAX),
            request_id: Some("0190a3c4-1d2e-7f00-8000-000000000000".into()),
            headers: vec![("x-tenant".into(), "acme\t1".into())],
        });
        e.verdict = Some(Verdict {
            action: Action::StepUp,
            score: 42.125,
            reasons: vec!["auth.brute_force".into(), "http.probe_burst".into()],
            retry_after_secs: Some(600),
        });
        assert_eq!(
            String::from_utf8(ours(&e)).unwrap(),
            String::from_utf8(serde_bytes(&e)).unwrap()
        );
    }

    #[test]
    fn times_are_written_as_their_display() {
        for text in [
            "2026-11-28T18:00:00Z",
            "2026-11-28T18:00:00.1Z",
            "2026-11-28T18:00:00.000000001Z",
            "2026-11-28T18:00:00.123456789Z",
            "0000-01-01T00:00:00Z",
            "9999-12-30T21:59:59.999999999Z",
            "-000001-06-01T12:00:00.5Z",
            "1970-01-01T00:00:00Z",
        ] {
            let ts: jiff::Timestamp = text.parse().unwrap();
            let mut out = Vec::new();
            write_time(&mut out, ts);
            assert_eq!(String::from_utf8(out).unwrap(), ts.to_string(), "{text}");
        }
    }

    #[test]
    fn scores_that_are_not_finite_are_null_as_in_serde_json() {
        for score in [f64::NAN, f64::INFINITY, -0.0, 1e300, 5e-324, 0.1 + 0.2] {
            let mut e = Event::new("x");
            e.verdict = Some(Verdict {
                action: Action::Block,
                score,
                reasons: Vec::new(),
                retry_after_secs: None,
            });
            assert_eq!(ours(&e), serde_bytes(&e), "score {score}");
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 /?=&%._-]{0,40}",
            any::<String>(),
            proptest::collection::vec(0u8..0x80, 0..40)
                .prop_map(|b| b.into_iter().map(char::from).collect()),
        ]
    }

    fn opt_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(text())
    }

    fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec((text(), text()), 0..3)
    }

    prop_compose! {
        fn event()(
            name in text(),
            millis in -377_705_000_000_000i64..253_402_000_000_000,
            nanos in 0i32..1_000_000,
            ip in proptest::option::of(prop_oneof![
                any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
                any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
            ]),
            (user, session, device, ua) in (opt_text(), opt_text(), opt_text(), opt_text()),
            http in proptest::option::of((
                text(), opt_text(), text(), opt_text(),
                proptest::option::of(any::<u16>()),
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u64>()),
                opt_text(), pairs(),
            )),
            verdict in proptest::option::of((
                0usize..4, any::<f64>(),
                proptest::collection::vec(text(), 0..3),
                proptest::option::of(any::<u64>()),
            )),
            attrs in pairs(),
        ) -> Event {
            let time = jiff::Timestamp::from_millisecond(millis)
                .unwrap()
                .checked_add(jiff::SignedDuration::from_nanos(i64::from(nanos)))
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            let mut e = Event::new_at(name, time);
            e.subject = Subject { ip, user, session, device };
            e.user_agent = ua;
            e.http = http.map(|(method, route, path, query, status, latency_us, bytes, request_id, headers)| {
                HttpInfo { method, route, path, query, status, latency_us, bytes, request_id, headers }
            });
            e.verdict = verdict.map(|(a, score, reasons, retry_after_secs)| Verdict {
                action: [Action::Allow, Action::StepUp, Action::Throttle, Action::Block][a],
                score,
                reasons,
                retry_after_secs,
            });
            e.attrs = attrs;
            e
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn any_event_is_written_exactly_as_serde_json_writes_it(e in event()) {
            prop_assert_eq!(ours(&e), serde_bytes(&e));
        }
    }
}
