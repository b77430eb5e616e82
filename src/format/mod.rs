//! Output formats: the native event JSON, Elastic Common Schema, and OCSF.
//!
//! Every sink that writes JSON takes a [`Format`]. The same [`Event`] then comes out in the
//! shape the receiving system already understands:
//!
//! - [`Format::Native`] — the event's own serde representation (the default; it reads back
//!   into an [`Event`]).
//! - [`Format::Ecs`] — Elastic Common Schema **8.17** field names, for Elasticsearch, Kibana,
//!   Elastic Security, and anything else that speaks ECS.
//! - [`Format::Ocsf`] — Open Cybersecurity Schema Framework **1.3.0** classes: HTTP Activity,
//!   Authentication, Account Change, Detection Finding, or the Base Event.
//!
//! Formats only rename and regroup what the event holds. Redaction happened before the event
//! was built (secret query values are `[REDACTED]`, session and device ids are keyed hashes,
//! only allow-listed headers were captured), and no format adds anything that the native form
//! does not contain. [`Format::write_json`] writes exactly one line: control characters are
//! escaped as JSON requires, and U+2028, U+2029 and U+0085, which some readers take for line
//! breaks, are escaped too. The native form is written by a hand-made writer that produces
//! the same bytes as `serde_json` does from the event's `Serialize`, in a third of the
//! instructions; ECS and OCSF go through `serde_json`.
//!
//! ```
//! use tower_siem::format::Format;
//! use tower_siem::Event;
//!
//! let event = Event::new("auth.failure").user("alice").ip([192, 0, 2, 7].into());
//!
//! let ecs = Format::Ecs.to_json(&event);
//! assert_eq!(ecs["event"]["outcome"], "failure");
//! assert_eq!(ecs["user"]["name"], "alice");
//!
//! let ocsf = Format::Ocsf.to_json(&event);
//! assert_eq!(ocsf["class_uid"], 3002); // Authentication
//! assert_eq!(ocsf["type_uid"], 300201); // … Logon
//! assert_eq!(ocsf["status_id"], 2); // Failure
//!
//! let mut line = Vec::new();
//! "ecs".parse::<Format>().unwrap().write_json(&event, &mut line);
//! assert!(!line.contains(&b'\n'));
//! ```
//!
//! # Elastic Common Schema (8.17)
//!
//! | event | ECS field |
//! |---|---|
//! | `time` | `@timestamp` (RFC 3339, milliseconds) |
//! | `id` | `event.id` |
//! | `name` | `event.action` |
//! | (from the name) | `event.kind`: `alert` for `siem.alert`, else `event` |
//! | (from the name) | `event.category` / `event.type`: `http.request` → `web` / `access` (+ `error` for status ≥ 400); `auth.success`, `auth.failure` → `authentication` / `start`; `auth.logout` → `authentication`, `session` / `end`; `mfa.*` → `authentication` / `info`; `account.create` → `iam` / `user`, `creation`; other `account.*` → `iam` / `user`, `change`; `siem.alert` → `intrusion_detection` / `info`; any other name: none |
//! | (from the name or status) | `event.outcome`: `success` / `failure` for `*.success` / `*.failure` names, and by status (< 400 / ≥ 400) for HTTP; otherwise absent |
//! | `http.latency_us` | `event.duration` (nanoseconds) |
//! | `verdict.score` | `event.risk_score`, and `labels.siem_score` |
//! | `verdict.action` | `labels.siem_action` |
//! | `verdict.reasons` | `rule.name` (a list of rule ids), `event.reason` (joined with `,`) |
//! | `ip` | `source.ip` |
//! | `user` | `user.name` (a keyed hash when the SIEM hashes user ids) |
//! | `session` | `tower_siem.session` (a keyed hash) |
//! | `device` | `device.id` (a keyed hash) |
//! | `user_agent` | `user_agent.original` |
//! | `http.method` | `http.request.method` |
//! | `http.path` | `url.path` |
//! | `http.query` | `url.query` (secret values already `[REDACTED]`) |
//! | `http.status` | `http.response.status_code` |
//! | `http.bytes` | `http.response.body.bytes` |
//! | `http.request_id` | `http.request.id` |
//! | header `referer` | `http.request.referrer` |
//! | `http.route` | `tower_siem.route` |
//! | other allow-listed headers | `tower_siem.headers` (object, lower-case names) |
//! | `verdict.retry_after_secs` | `tower_siem.retry_after_secs` |
//! | `attrs` | `tower_siem.attrs` (object; a repeated key becomes a list) |
//! | — | `tags: ["tower-siem"]`, `ecs.version: "8.17.0"`, `observer.product: "tower-siem"` |
//!
//! # OCSF (1.3.0)
//!
//! | event name | class (`class_uid`, `category_uid`) | `activity_id` |
//! |---|---|---|
//! | `http.request` | HTTP Activity (4002, 4 Network Activity) | from the method: Connect 1, Delete 2, Get 3, Head 4, Options 5, Post 6, Put 7, Trace 8, Other 99 (`activity_name` is then the method, e.g. `Patch` or `PROPFIND`: 1.3.0 has no id for PATCH) |
//! | `auth.success`, `auth.failure`, `mfa.success`, `mfa.failure` | Authentication (3002, 3 Identity & Access Management) | Logon 1 (`is_mfa: true` for `mfa.*`) |
//! | `auth.logout` | Authentication (3002, 3) | Logoff 2 |
//! | `account.create` / `account.password_change` / `account.password_reset` / `account.update` | Account Change (3001, 3) | Create 1 / Password Change 3 / Password Reset 4 / Other 99 |
//! | `siem.alert` | Detection Finding (2004, 2 Findings) | Create 1 |
//! | any other name | Base Event (0, 0 Uncategorized) | Other 99 |
//!
//! `type_uid` is always `class_uid * 100 + activity_id`.
//!
//! | event | OCSF attribute |
//! |---|---|
//! | `time` | `time` (milliseconds since the epoch) |
//! | `id` | `metadata.uid` |
//! | `name` | `metadata.event_code` |
//! | — | `metadata.version: "1.3.0"`, `metadata.product {name, vendor_name, version}`; `metadata.profiles: ["security_control"]` when the event carries a verdict |
//! | (from the name or status) | `status_id` / `status`: Success 1 / Failure 2 for `*.success` / `*.failure` names, by status (< 400 / ≥ 400) for HTTP, else Unknown 0 |
//! | `verdict.action` | `severity_id`: Allow or no verdict 1 Informational (2 Low for a failed logon), Step up 3 Medium, Throttle 3 Medium, Block 4 High. `action_id` / `disposition_id` (security control profile): Allow 1 Allowed / 1 Allowed, Step up 1 Allowed / 23 Challenge, Throttle 2 Denied / 2 Blocked, Block 2 Denied / 2 Blocked; present only when the event carries a verdict |
//! | `verdict.reasons`, `score` | `unmapped.tower_siem.reasons`, `unmapped.tower_siem.score`; for a Detection Finding also `finding_info.types` and `risk_score` |
//! | `ip` | `src_endpoint.ip` |
//! | `user` | `actor.user.name`; for Authentication and Account Change also `user.name` (the account concerned) |
//! | `session` | `actor.session.uid` (a keyed hash) |
//! | `device` | `src_endpoint.uid` (a keyed hash) |
//! | `user_agent` | `http_request.user_agent` |
//! | `http.method` | `http_request.http_method` |
//! | `http.path` / `http.query` | `http_request.url.path` / `http_request.url.query_string` |
//! | `http.request_id` | `http_request.uid` |
//! | header `referer` | `http_request.referrer` |
//! | other allow-listed headers | `http_request.http_headers` (`[{name, value}]`) |
//! | `http.status` | `http_response.code` |
//! | `http.bytes` | `http_response.length` (the body size; headers are not counted) |
//! | `http.latency_us` | `duration` and `http_response.latency` (milliseconds) |
//! | `http.route`, `attrs`, `retry_after_secs` | `unmapped.tower_siem.*` |
//!
//! Names not in the tables (custom events) keep everything they carry under `tower_siem`
//! (ECS) or `unmapped.tower_siem` (OCSF), so nothing the native form holds is lost.

mod ecs;
mod ocsf;

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::event::Event;

/// How a sink encodes an event as JSON.
///
/// Parses from and displays as `native`, `ecs` or `ocsf` (parsing ignores ASCII case).
///
/// ```
/// use tower_siem::format::Format;
/// assert_eq!(Format::default(), Format::Native);
/// assert_eq!("OCSF".parse::<Format>().unwrap(), Format::Ocsf);
/// assert_eq!(Format::Ecs.to_string(), "ecs");
/// assert!("cef".parse::<Format>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// The event's own JSON (`serde_json` of [`Event`]); reads back into an `Event`.
    #[default]
    Native,
    /// Elastic Common Schema 8.17 field names.
    Ecs,
    /// OCSF 1.3.0 event classes.
    Ocsf,
}

/// The ECS version the [`Format::Ecs`] mapping follows.
pub const ECS_VERSION: &str = "8.17.0";
/// The OCSF schema version the [`Format::Ocsf`] mapping follows.
pub const OCSF_VERSION: &str = "1.3.0";
/// The product name written into ECS `observer.product` and OCSF `metadata.product.name`.
pub const PRODUCT: &str = "tower-siem";

impl Format {
    /// Every format, in declaration order.
    pub const ALL: &'static [Format] = &[Format::Native, Format::Ecs, Format::Ocsf];

    /// The format's name: `native`, `ecs` or `ocsf`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Ecs => "ecs",
            Format::Ocsf => "ocsf",
        }
    }

    /// The event as a JSON value in this format.
    ///
    /// ```
    /// use tower_siem::format::Format;
    /// let e = tower_siem::Event::new("http.request");
    /// assert_eq!(Format::Native.to_json(&e)["name"], "http.request");
    /// assert_eq!(Format::Ecs.to_json(&e)["event"]["action"], "http.request");
    /// ```
    pub fn to_json(&self, event: &Event) -> Value {
        let value = match self {
            Format::Native => serde_json::to_value(event),
            Format::Ecs => serde_json::to_value(ecs::view(event)),
            Format::Ocsf => serde_json::to_value(ocsf::view(event)),
        };
        value.unwrap_or_else(|e| encode_failure(event, &e))
    }

    /// Appends the event to `out` as one line of JSON in this format, without a trailing
    /// newline.
    ///
    /// The line never contains a raw line break: control characters are escaped by
    /// `serde_json`, and U+2028, U+2029 and U+0085 are written as `\u2028`, `\u2029` and
    /// `\u0085`.
    ///
    /// ```
    /// use tower_siem::format::Format;
    /// let e = tower_siem::Event::new("x").attr("note", "two\nlines\u{2028}here");
    /// let mut out = Vec::new();
    /// Format::Native.write_json(&e, &mut out);
    /// assert!(!out.contains(&b'\n'));
    /// let back: serde_json::Value = serde_json::from_slice(&out).unwrap();
    /// assert_eq!(back["attrs"][0][1], "two\nlines\u{2028}here");
    /// ```
    pub fn write_json(&self, event: &Event, out: &mut Vec<u8>) {
        let start = out.len();
        // Every format serializes straight from the event: no intermediate `Value`.
        let written = match self {
            Format::Native => {
                if crate::event::json::write_event_ascii(out, event) {
                    // Nothing but ASCII: no line separator to escape.
                    return;
                }
                Ok(())
            }
            Format::Ecs => serde_json::to_writer(&mut *out, &ecs::view(event)),
            Format::Ocsf => serde_json::to_writer(&mut *out, &ocsf::view(event)),
        };
        if let Err(e) = written {
            out.truncate(start);
            // A `Value` always serializes; this keeps the line well-formed and says why.
            let fallback = encode_failure(event, &e);
            let _ = serde_json::to_writer(&mut *out, &fallback);
        }
        escape_line_separators(out, start);
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error from parsing an unknown format name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseFormatError {
    input: String,
}

impl fmt::Display for ParseFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown format {:?}: expected one of native, ecs, ocsf",
            crate::event::escape_control(&self.input)
        )
    }
}

impl std::error::Error for ParseFormatError {}

impl FromStr for Format {
    type Err = ParseFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ParseFormatError {
                input: s.chars().take(64).collect(),
            })
    }
}

impl serde::Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What is written if an event cannot be encoded (no known input does this): its id and name,
/// and the encoder's message, so the line still parses and the loss is visible.
fn encode_failure(event: &Event, error: &dyn fmt::Display) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(event.id.to_string()));
    m.insert("name".into(), Value::String(event.name.as_str().to_owned()));
    m.insert("encode_error".into(), Value::String(error.to_string()));
    Value::Object(m)
}

/// Replaces U+2028, U+2029 and U+0085 (raw in `serde_json` output) in `buf[start..]` by JSON
/// escapes. Non-ASCII bytes only occur inside JSON strings, where the escapes are valid.
pub(crate) fn escape_line_separators(buf: &mut Vec<u8>, start: usize) {
    let tail = &buf[start..];
    // Most events are pure ASCII: one word-at-a-time scan, and done.
    if tail.is_ascii()
        || !tail
            .windows(2)
            .any(|w| matches!(w, [0xE2, 0x80] | [0xC2, 0x85]))
    {
        return;
    }
    let mut out = Vec::with_capacity(tail.len() + 12);
    let mut i = 0;
    while i < tail.len() {
        match &tail[i..] {
            [0xE2, 0x80, 0xA8, ..] => {
                out.extend_from_slice(b"\\u2028");
                i += 3;
            }
            [0xE2, 0x80, 0xA9, ..] => {
                out.extend_from_slice(b"\\u2029");
                i += 3;
            }
            [0xC2, 0x85, ..] => {
                out.extend_from_slice(b"\\u0085");
                i += 2;
            }
            [b, ..] => {
                out.push(*b);
                i += 1;
            }
            [] => break,
        }
    }
    buf.truncate(start);
    buf.extend_from_slice(&out);
}

/// How an event's name or HTTP status says it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    Unknown,
}

fn outcome(event: &Event) -> Outcome {
    let name = event.name.as_str();
    if name.ends_with(".success") {
        return Outcome::Success;
    }
    if name.ends_with(".failure") {
        return Outcome::Failure;
    }
    match event.status() {
        Some(s) if s < 400 => Outcome::Success,
        Some(_) => Outcome::Failure,
        None => Outcome::Unknown,
    }
}

/// Name-value pairs (attributes, headers) as a JSON object. A name given more than once keeps
/// every value, in order, as a list; one name can be left out (the referrer, which ECS and
/// OCSF give a field of its own).
#[derive(Clone, Copy)]
pub(super) struct Grouped<'a> {
    pairs: &'a [(String, String)],
    skip: Option<&'static str>,
}

/// An event's attributes, or `None` when it has none.
pub(super) type Attrs<'a> = Grouped<'a>;
/// Allow-listed headers other than `referer`.
pub(super) type Headers<'a> = Grouped<'a>;

impl<'a> Grouped<'a> {
    pub(super) fn of(pairs: &'a [(String, String)]) -> Option<Self> {
        Some(Grouped { pairs, skip: None }).filter(|g| !g.is_empty())
    }

    pub(super) fn except_referer(pairs: &'a [(String, String)]) -> Self {
        Grouped {
            pairs,
            skip: Some("referer"),
        }
    }

    fn kept(&self) -> impl Iterator<Item = (usize, &'a (String, String))> + '_ {
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| self.skip.is_none_or(|skip| !k.eq_ignore_ascii_case(skip)))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.kept().next().is_none()
    }

    /// The pairs as `[{"name": …, "value": …}]` (OCSF `http_headers`).
    pub(super) fn as_list(self) -> NameValueList<'a> {
        NameValueList(self)
    }
}

/// Up to this many pairs, names are matched by scanning (no allocation); beyond, by a map, so
/// an event with thousands of attributes still encodes in linear time.
const SCAN_MAX: usize = 32;

impl serde::Serialize for Grouped<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        if self.pairs.len() <= SCAN_MAX {
            for (i, (k, v)) in self.kept() {
                if self.pairs[..i].iter().any(|(earlier, _)| earlier == k) {
                    continue;
                }
                if self.pairs[i + 1..].iter().any(|(later, _)| later == k) {
                    let values = Values {
                        pairs: &self.pairs[i..],
                        name: k,
                    };
                    map.serialize_entry(k, &values)?;
                } else {
                    map.serialize_entry(k, v)?;
                }
            }
        } else {
            let mut order: Vec<&str> = Vec::new();
            let mut by_name: std::collections::HashMap<&str, Vec<&str>> =
                std::collections::HashMap::new();
            for (_, (k, v)) in self.kept() {
                by_name
                    .entry(k.as_str())
                    .or_insert_with(|| {
                        order.push(k);
                        Vec::new()
                    })
                    .push(v);
            }
            for k in order {
                match by_name[k].as_slice() {
                    [one] => map.serialize_entry(k, one)?,
                    many => map.serialize_entry(k, many)?,
                }
            }
        }
        map.end()
    }
}

/// Every value of one name, in order.
struct Values<'a> {
    pairs: &'a [(String, String)],
    name: &'a str,
}

impl serde::Serialize for Values<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.pairs
                .iter()
                .filter(|(k, _)| k == self.name)
                .map(|(_, v)| v),
        )
    }
}

/// [`Grouped`] as a list of `{name, value}` objects, one per pair.
pub(super) struct NameValueList<'a>(Grouped<'a>);

impl serde::Serialize for NameValueList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Pair<'a> {
            name: &'a str,
            value: &'a str,
        }
        s.collect_seq(self.0.kept().map(|(_, (name, value))| Pair { name, value }))
    }
}

/// Rule ids joined with commas, as one string.
#[derive(Clone, Copy)]
pub(super) struct Joined<'a>(pub(super) &'a [String]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(r)?;
        }
        Ok(())
    }
}

impl serde::Serialize for Joined<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_become_lists() {
        let pairs: Vec<(String, String)> = [("k", "1"), ("j", "x"), ("k", "2"), ("Referer", "r")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let all = Grouped::of(&pairs).unwrap();
        assert_eq!(
            serde_json::to_value(all).unwrap(),
            serde_json::json!({"k": ["1", "2"], "j": "x", "Referer": "r"})
        );
        let headers = Grouped::except_referer(&pairs);
        assert_eq!(
            serde_json::to_value(headers).unwrap(),
            serde_json::json!({"k": ["1", "2"], "j": "x"})
        );
        assert_eq!(
            serde_json::to_value(headers.as_list()).unwrap(),
            serde_json::json!([
                {"name": "k", "value": "1"},
                {"name": "j", "value": "x"},
                {"name": "k", "value": "2"},
            ])
        );
        assert!(Grouped::of(&[]).is_none());
        // Past the scanning limit, the same result.
        let many: Vec<(String, String)> = (0..100)
            .map(|i| (format!("k{}", i % 40), i.to_string()))
            .collect();
        let v = serde_json::to_value(Grouped::of(&many).unwrap()).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 40);
        assert_eq!(v["k0"], serde_json::json!(["0", "40", "80"]));
        assert_eq!(v["k39"], serde_json::json!(["39", "79"]));
        assert!(Grouped::except_referer(&pairs[3..]).is_empty());
    }

    #[test]
    fn line_separators_are_escaped() {
        let mut buf = b"keep\xE2\x80\xA8".to_vec();
        let start = buf.len();
        buf.extend_from_slice("\"a\u{2028}b\u{2029}c\u{85}d é\"".as_bytes());
        escape_line_separators(&mut buf, start);
        assert_eq!(&buf[..start], b"keep\xE2\x80\xA8");
        assert_eq!(&buf[start..], br#""a\u2028b\u2029c\u0085d "#.iter().chain("é\"".as_bytes()).copied().collect::<Vec<u8>>().as_slice());
    }
}
