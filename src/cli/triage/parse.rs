//! Access-log line parsers: Apache/nginx common and combined, and JSON lines.
//!
//! Parsing works on bytes: fields are found with `memchr`, numbers and timestamps are read by
//! hand, and every text field borrows from the line unless it carried escapes that had to be
//! decoded. No regex runs here, and a line of any content (binary, invalid UTF-8, 1 MiB long)
//! gives either a [`Line`] or a [`ParseError`], never a panic.
//!
//! ```
//! use tower_siem::cli::triage::parse::{parse_line, Format};
//!
//! let raw = br#"203.0.113.7 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif?x=1 HTTP/1.0" 200 2326 "-" "curl/8.4.0""#;
//! let line = parse_line(Format::Combined, raw).unwrap();
//! assert_eq!(line.ip.to_string(), "203.0.113.7");
//! assert_eq!(line.time_ms, 971_211_336_000);
//! assert_eq!(&*line.method, b"GET");
//! assert_eq!(line.path(), &b"/a.gif"[..]);
//! assert_eq!(line.query(), Some(&b"x=1"[..]));
//! assert_eq!(line.status, 200);
//! assert_eq!(line.user.as_deref(), Some(&b"frank"[..]));
//! assert_eq!(line.user_agent.as_deref(), Some(&b"curl/8.4.0"[..]));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use memchr::{memchr, memchr2};

use crate::signature::decode::{hex, hex_pair};

/// A log format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Common Log Format: `host ident user [time] "request" status bytes`. Anything after the
    /// byte count is ignored.
    Common,
    /// Combined: common followed by `"referer" "user agent"` (Apache `combined`, nginx's default
    /// `main`/`combined`). Lines without the two quoted fields are accepted as common; fields
    /// after the user agent (nginx's `"$http_x_forwarded_for"`) are ignored. An Apache
    /// `vhost_combined` line (`host:port` first) is accepted too.
    Combined,
    /// One JSON object per line (nginx `escape=json` style and similar; see [`parse_json`]).
    Json,
}

impl Format {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Common => "common",
            Format::Combined => "combined",
            Format::Json => "json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text taken from a line: borrowed unless escapes had to be decoded.
pub type Text<'a> = Cow<'a, [u8]>;

/// One parsed access-log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// Client address.
    pub ip: IpAddr,
    /// Request time, milliseconds since the Unix epoch (UTC).
    pub time_ms: i64,
    /// Authenticated user (`%u`, `$remote_user`), if not `-`.
    pub user: Option<Text<'a>>,
    /// Request method; empty when the request line was not `METHOD TARGET [PROTOCOL]`.
    pub method: Text<'a>,
    /// Request target (`/path?query`); the whole request line when it could not be split.
    pub target: Text<'a>,
    /// Query string from a separate field (JSON `args`), when the target has none.
    pub args: Option<Text<'a>>,
    /// Response status.
    pub status: u16,
    /// Response body bytes, if logged.
    pub bytes: Option<u64>,
    /// `Referer`, if logged and not `-`.
    pub referer: Option<Text<'a>>,
    /// `User-Agent`, if logged and not `-`.
    pub user_agent: Option<Text<'a>>,
}

impl<'a> Line<'a> {
    /// The path of the target, as the server saw it: without the query, and without scheme and
    /// host for an absolute-form target (`GET http://example.com/x`).
    pub fn path(&self) -> &[u8] {
        let t = strip_origin(&self.target);
        match memchr(b'?', t) {
            Some(i) => &t[..i],
            None => t,
        }
    }

    /// The query string without `?`, from the target or from a separate field.
    pub fn query(&self) -> Option<&[u8]> {
        let t = strip_origin(&self.target);
        match memchr(b'?', t) {
            Some(i) => Some(&t[i + 1..]),
            None => self.args.as_deref().filter(|a| !a.is_empty()),
        }
    }
}

fn strip_origin(t: &[u8]) -> &[u8] {
    let rest = if let Some(r) = strip_prefix_ci(t, b"http://") {
        r
    } else if let Some(r) = strip_prefix_ci(t, b"https://") {
        r
    } else {
        return t;
    };
    match memchr2(b'/', b'?', rest) {
        Some(i) if rest[i] == b'/' => &rest[i..],
        Some(i) => &rest[i..],
        None => b"/",
    }
}

fn strip_prefix_ci<'b>(s: &'b [u8], p: &[u8]) -> Option<&'b [u8]> {
    (s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p)).then(|| &s[p.len()..])
}

/// Why a line was not parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Blank line.
    Empty,
    /// The client field is not an IP address.
    Client,
    /// The time is missing or invalid.
    Time,
    /// The quoted request is missing or unterminated.
    Request,
    /// The status is missing or not a number in 100..=999.
    Status,
    /// The byte count is not a number or `-`.
    Bytes,
    /// Not a JSON object, or broken JSON.
    Json,
    /// A JSON line without a client address, time or status.
    MissingField,
    /// Longer than the reader accepts.
    TooLong,
}

impl ParseError {
    /// A short reason for humans.
    pub fn as_str(self) -> &'static str {
        match self {
            ParseError::Empty => "empty line",
            ParseError::Client => "client is not an IP address",
            ParseError::Time => "bad or missing time",
            ParseError::Request => "bad or missing request",
            ParseError::Status => "bad or missing status",
            ParseError::Bytes => "bad byte count",
            ParseError::Json => "not a JSON object",
            ParseError::MissingField => "JSON line without client address, time or status",
            ParseError::TooLong => "line too long",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ParseError {}

/// Parses one line (without its line end; a trailing `\r` is ignored).
///
/// # Errors
/// The line does not fit `format`; see [`ParseError`].
pub fn parse_line(format: Format, line: &[u8]) -> Result<Line<'_>, ParseError> {
    let line = trim_end(line);
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    match format {
        Format::Common => parse_clf(line, false),
        Format::Combined => parse_clf(line, true),
        Format::Json => parse_json(line),
    }
}

/// Guesses the format from a file's first lines: JSON when most parseable lines are JSON
/// objects, combined when any CLF line carries a user agent, else common. `None` when no
/// line parses in any format.
pub fn detect<'l>(lines: impl IntoIterator<Item = &'l [u8]>) -> Option<Format> {
    let (mut json, mut common, mut combined) = (0u32, 0u32, 0u32);
    for l in lines.into_iter().take(64) {
        let l = trim_end(l);
        if l.is_empty() {
            continue;
        }
        if parse_json(l).is_ok() {
            json += 1;
        } else if let Ok(p) = parse_clf(l, true) {
            if p.user_agent.is_some() || p.referer.is_some() {
                combined += 1;
            } else {
                common += 1;
            }
        }
    }
    if json == 0 && common == 0 && combined == 0 {
        None
    } else if json > common + combined {
        Some(Format::Json)
    } else if combined > 0 {
        Some(Format::Combined)
    } else {
        Some(Format::Common)
    }
}

fn trim_end(mut l: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = l {
        l = rest;
    }
    l
}

fn trim_start(mut l: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = l {
        l = rest;
    }
    l
}

fn parse_ip(s: &[u8]) -> Option<IpAddr> {
    // `[v6]` and zone-less forms only; at most a full IPv6 text.
    let s = match s {
        [b'[', inner @ .., b']'] => inner,
        _ => s,
    };
    if s.is_empty() || s.len() > 45 {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Splits off the next space-separated token.
fn token(s: &[u8]) -> (&[u8], &[u8]) {
    match memchr(b' ', s) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

fn dash_none(t: &[u8]) -> Option<&[u8]> {
    (!t.is_empty() && t != b"-").then_some(t)
}

fn parse_clf(line: &[u8], tail: bool) -> Result<Line<'_>, ParseError> {
    let (host, rest) = token(line);
    let (ip, rest) = match parse_ip(host) {
        Some(ip) => (ip, rest),
        None => {
            // Apache `vhost_combined`: `host:port client …`.
            let (second, after) = token(rest);
            match (memchr(b':', host), parse_ip(second)) {
                (Some(_), Some(ip)) if after.first() != Some(&b'[') => (ip, after),
                _ => return Err(ParseError::Client),
            }
        }
    };
    let (_ident, rest) = token(rest);
    // The user may contain spaces only in broken logs; it ends before ` [`.
    let open = find_pair(rest, b' ', b'[').ok_or(ParseError::Time)?;
    let user = dash_none(&rest[..open]).map(Cow::Borrowed);
    let rest = &rest[open + 2..];
    let close = memchr(b']', rest).ok_or(ParseError::Time)?;
    let time_ms = parse_clf_time(&rest[..close]).ok_or(ParseError::Time)?;
    let rest = rest[close + 1..]
        .strip_prefix(b" \"")
        .ok_or(ParseError::Request)?;
    let (request, rest) = request_field(rest)?;
    let rest = trim_start(rest);
    let (status, rest) = token(rest);
    let status = parse_status(status).ok_or(ParseError::Status)?;
    let (bytes, rest) = token(rest);
    let bytes = match bytes {
        b"-" | b"" => None,
        b => Some(parse_u64(b).ok_or(ParseError::Bytes)?),
    };
    let (method, target) = split_request(request);
    let mut out = Line {
        ip,
        time_ms,
        user,
        method,
        target,
        args: None,
        status,
        bytes,
        referer: None,
        user_agent: None,
    };
    if tail {
        // Optional `"referer" "agent"`; anything unexpected after the byte count ends the line.
        if let Some(r) = rest.strip_prefix(b"\"") {
            if let Some((referer, rest)) = quoted(r) {
                out.referer = dash_none_text(referer);
                if let Some(r) = trim_start(rest).strip_prefix(b"\"") {
                    if let Some((ua, _)) = quoted(r) {
                        out.user_agent = dash_none_text(ua);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn dash_none_text(t: Text<'_>) -> Option<Text<'_>> {
    (!t.is_empty() && &*t != b"-").then_some(t)
}

/// The quoted request, tolerant of an unescaped quote inside it: the request ends at the
/// first `"` followed by ` NNN` (a status).
fn request_field(s: &[u8]) -> Result<(Text<'_>, &[u8]), ParseError> {
    if let Some((req, rest)) = quoted(s) {
        if looks_like_status(rest) {
            return Ok((req, rest));
        }
    }
    let mut from = 0;
    while let Some(i) = find_pair(&s[from..], b'"', b' ') {
        let at = from + i;
        if looks_like_status(&s[at + 1..]) {
            return Ok((Cow::Borrowed(&s[..at]), &s[at + 1..]));
        }
        from = at + 1;
    }
    Err(ParseError::Request)
}

/// The first `a` immediately followed by `b` (a two-byte needle without building a searcher).
fn find_pair(s: &[u8], a: u8, b: u8) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr(a, &s[from..]) {
        let at = from + i;
        if s.get(at + 1) == Some(&b) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn looks_like_status(rest: &[u8]) -> bool {
    let r = trim_start(rest);
    r.len() >= 3
        && r[..3].iter().all(u8::is_ascii_digit)
        && (r.len() == 3 || r[3] == b' ')
        && rest.first() == Some(&b' ')
}

/// A `"…"` field (opening quote already consumed) with Apache/nginx backslash escapes: the
/// text (decoded only if it had escapes) and what follows the closing quote.
fn quoted(s: &[u8]) -> Option<(Text<'_>, &[u8])> {
    let mut i = 0;
    let mut escaped = false;
    loop {
        let j = i + memchr2(b'"', b'\\', &s[i..])?;
        if s[j] == b'"' {
            let raw = &s[..j];
            let text = if escaped {
                Cow::Owned(unescape_log(raw))
            } else {
                Cow::Borrowed(raw)
            };
            return Some((text, &s[j + 1..]));
        }
        escaped = true;
        i = j + 2;
        if i > s.len() {
            return None;
        }
    }
}

/// Decodes `\"`, `\\` and `\xHH` as Apache and nginx write them; other escapes stay as is.
fn unescape_log(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 >= raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        match raw[i + 1] {
            b'"' | b'\\' => {
                out.push(raw[i + 1]);
                i += 2;
            }
            b'x' => match hex_pair(raw, i + 2) {
                Some(byte) => {
                    out.push(byte);
                    i += 4;
                }
                None => {
                    out.push(b'\\');
                    i += 1;
                }
            },
            _ => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    out
}

/// `METHOD TARGET [PROTOCOL]`; anything else (TLS bytes sent to a plain port, `-`) is kept
/// whole as the target with no method.
fn split_request(req: Text<'_>) -> (Text<'_>, Text<'_>) {
    fn split(r: &[u8]) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
        let sp = memchr(b' ', r)?;
        let m = &r[..sp];
        if m.is_empty() || m.len() > 32 || !m.iter().all(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        let rest = &r[sp + 1..];
        let end = memchr::memrchr(b' ', rest)
            .filter(|&j| rest[j + 1..].starts_with(b"HTTP/"))
            .unwrap_or(rest.len());
        Some((0..sp, sp + 1..sp + 1 + end))
    }
    match split(&req) {
        None => (Cow::Borrowed(&b""[..]), req),
        Some((m, t)) => match req {
            Cow::Borrowed(r) => (Cow::Borrowed(&r[m]), Cow::Borrowed(&r[t])),
            Cow::Owned(r) => (Cow::Owned(r[m].to_vec()), Cow::Owned(r[t].to_vec())),
        },
    }
}

fn parse_status(s: &[u8]) -> Option<u16> {
    if s.len() != 3 {
        return None;
    }
    let v = parse_u64(s)? as u16;
    (100..=999).contains(&v).then_some(v)
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(b - b'0');
    }
    Some(v)
}

fn digits(s: &[u8]) -> Option<i64> {
    parse_u64(s).map(|v| v as i64)
}

fn month(m: &[u8]) -> Option<i64> {
    const NAMES: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    if m.len() != 3 {
        return None;
    }
    let l = [
        m[0].to_ascii_lowercase(),
        m[1].to_ascii_lowercase(),
        m[2].to_ascii_lowercase(),
    ];
    NAMES.iter().position(|n| **n == l).map(|i| i as i64 + 1)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn epoch_ms(
    (y, mo, d): (i64, i64, i64),
    (h, mi, s): (i64, i64, i64),
    ms: i64,
    offset_min: i64,
) -> Option<i64> {
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// `10/Oct/2000:13:55:36 -0700` (the offset may be missing: UTC).
pub fn parse_clf_time(s: &[u8]) -> Option<i64> {
    if s.len() < 20 || s[2] != b'/' || s[6] != b'/' || s[11] != b':' {
        return None;
    }
    let d = digits(&s[0..2])?;
    let mo = month(&s[3..6])?;
    let y = digits(&s[7..11])?;
    let (h, mi, sec) = (
        digits(&s[12..14])?,
        digits(s.get(15..17)?)?,
        digits(s.get(18..20)?)?,
    );
    if s[14] != b':' || s[17] != b':' {
        return None;
    }
    let mut rest = &s[20..];
    let mut ms = 0;
    if let Some(r) = rest.strip_prefix(b".") {
        let n = r.iter().take_while(|b| b.is_ascii_digit()).count();
        ms = frac_ms(&r[..n]);
        rest = &r[n..];
    }
    let off = match trim_start(rest) {
        [] => 0,
        o => offset(o)?,
    };
    epoch_ms((y, mo, d), (h, mi, sec), ms, off)
}

fn frac_ms(f: &[u8]) -> i64 {
    let mut ms = 0;
    for i in 0..3 {
        ms = ms * 10 + f.get(i).map_or(0, |b| i64::from(b - b'0'));
    }
    ms
}

/// `+HHMM`, `+HH:MM`, `Z`: minutes east of UTC.
fn offset(o: &[u8]) -> Option<i64> {
    match o {
        b"Z" | b"z" => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let v = h * 60 + m;
            Some(if *sign == b'-' { -v } else { v })
        }
        _ => None,
    }
}

/// RFC 3339 (`2000-10-10T20:55:36Z`, `…+02:00`, fractional seconds; a space for `T` and a
/// missing offset, taken as UTC, are accepted).
pub fn parse_rfc3339(s: &[u8]) -> Option<i64> {
    if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    if !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    let y = digits(&s[0..4])?;
    let mo = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    let h = digits(&s[11..13])?;
    let mi = digits(&s[14..16])?;
    let sec = digits(&s[17..19])?;
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(r) = rest.strip_prefix(b".").or_else(|| rest.strip_prefix(b",")) {
        let n = r.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        ms = frac_ms(&r[..n]);
        rest = &r[n..];
    }
    let off = match rest {
        [] => 0,
        o => offset(o)?,
    };
    epoch_ms((y, mo, d), (h, mi, sec), ms, off)
}

/// Epoch seconds (`1700000000.123`), or milliseconds when the number is that large.
fn parse_epoch(s: &[u8]) -> Option<i64> {
    let (int, frac) = match memchr(b'.', s) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits(int)?;
    let ms = if v >= 100_000_000_000 {
        v
    } else {
        v.checked_mul(1000)? + frac_ms(frac)
    };
    // 1970 ..= 9999.
    (0..253_402_300_800_000).contains(&ms).then_some(ms)
}

fn parse_any_time(v: &[u8]) -> Option<i64> {
    if v.len() >= 20 && v[2] == b'/' {
        parse_clf_time(v)
    } else if v.len() >= 19 && v[4] == b'-' {
        parse_rfc3339(v)
    } else {
        parse_epoch(v)
    }
}

// ---- JSON --------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Key {
    Ip,
    Time,
    Request,
    Method,
    Uri,
    Args,
    Status,
    Bytes,
    Referer,
    Agent,
    User,
}

/// Maps a key, lower-cased with `_`, `-`, `.` and `@` removed, to the field it carries.
fn key_of(norm: &[u8]) -> Option<Key> {
    Some(match norm {
        b"remoteaddr" | b"remoteip" | b"clientip" | b"clientaddr" | b"clienthost" | b"client"
        | b"ip" | b"realip" | b"cip" => Key::Ip,
        b"timeiso8601" | b"timelocal" | b"time" | b"timestamp" | b"ts" | b"startutc"
        | b"starttime" | b"date" | b"datetime" | b"msec" => Key::Time,
        b"request" | b"requestline" => Key::Request,
        b"requestmethod" | b"method" | b"verb" | b"httpmethod" => Key::Method,
        b"requesturi" | b"uri" | b"path" | b"url" | b"requestpath" => Key::Uri,
        b"args" | b"querystring" | b"query" => Key::Args,
        b"status" | b"statuscode" | b"downstreamstatus" | b"httpstatus" | b"responsestatus" => {
            Key::Status
        }
        b"bodybytessent"
        | b"bytessent"
        | b"bytes"
        | b"size"
        | b"responsesize"
        | b"downstreamcontentsize" => Key::Bytes,
        b"httpreferer" | b"referer" | b"referrer" | b"requestreferer" => Key::Referer,
        b"httpuseragent" | b"useragent" | b"agent" | b"ua" | b"requestuseragent" => Key::Agent,
        b"remoteuser" | b"user" | b"username" => Key::User,
        _ => return None,
    })
}

#[derive(Default)]
struct JsonFields<'a> {
    ip: Option<Text<'a>>,
    time: Option<Text<'a>>,
    request: Option<Text<'a>>,
    method: Option<Text<'a>>,
    uri: Option<Text<'a>>,
    args: Option<Text<'a>>,
    status: Option<Text<'a>>,
    bytes: Option<Text<'a>>,
    referer: Option<Text<'a>>,
    agent: Option<Text<'a>>,
    user: Option<Text<'a>>,
}

impl<'a> JsonFields<'a> {
    fn slot(&mut self, k: Key) -> &mut Option<Text<'a>> {
        match k {
            Key::Ip => &mut self.ip,
            Key::Time => &mut self.time,
            Key::Request => &mut self.request,
            Key::Method => &mut self.method,
            Key::Uri => &mut self.uri,
            Key::Args => &mut self.args,
            Key::Status => &mut self.status,
            Key::Bytes => &mut self.bytes,
            Key::Referer => &mut self.referer,
            Key::Agent => &mut self.agent,
            Key::User => &mut self.user,
        }
    }
}

/// Nesting followed into objects (Caddy's `request.headers`) before values are skipped.
const MAX_DEPTH: u32 = 8;

/// Parses a JSON-lines access log entry.
///
/// Keys are matched case-insensitively, ignoring `_`, `-`, `.` and `@`, at any nesting depth
/// (the first occurrence wins; for an array the first string in it): client `remote_addr`,
/// `remote_ip`, `client_ip`, `ClientHost`, `ip`; time `time_iso8601`, `time_local`, `time`,
/// `timestamp`, `@timestamp`, `ts`, `msec` (RFC 3339, the CLF form, or epoch seconds); the
/// request as one `request` line or `request_method`/`method` with `request_uri`/`uri`/`path`
/// and `args`/`query_string`; `status`; `body_bytes_sent`/`bytes_sent`/`size`; `http_referer`;
/// `http_user_agent`/`user_agent`/`User-Agent`; `remote_user`. Numbers may be JSON numbers or
/// strings. Other keys (`request_time`, upstream timings…) are skipped.
///
/// # Errors
/// Not a JSON object, or no client address, time or status.
pub fn parse_json(line: &[u8]) -> Result<Line<'_>, ParseError> {
    let mut p = JsonParser { s: line, i: 0 };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(ParseError::Json);
    }
    let mut f = JsonFields::default();
    p.object(&mut f, 0).ok_or(ParseError::Json)?;
    let ip =
        f.ip.as_deref()
            .and_then(|v| {
                // `ip:port` and `x-forwarded-for`-style lists: the first address.
                let v = v.split(|&b| b == b',').next().unwrap_or(v);
                let v = trim_start(v);
                parse_ip(v).or_else(|| {
                    let c = memchr::memrchr(b':', v)?;
                    parse_ip(&v[..c])
                })
            })
            .ok_or(ParseError::MissingField)?;
    let time_ms = f
        .time
        .as_deref()
        .ok_or(ParseError::MissingField)
        .and_then(|t| parse_any_time(t).ok_or(ParseError::Time))?;
    let status = f
        .status
        .as_deref()
        .ok_or(ParseError::MissingField)
        .and_then(|s| parse_status(s).ok_or(ParseError::Status))?;
    let bytes = match f.bytes.as_deref() {
        None | Some(b"-" | b"") => None,
        Some(b) => Some(parse_u64(b).ok_or(ParseError::Bytes)?),
    };
    let (method, target) = match (f.method, f.uri, f.request) {
        (Some(m), Some(u), _) => (m, u),
        (m, u, Some(r)) => {
            let (rm, rt) = split_request(r);
            (m.unwrap_or(rm), u.unwrap_or(rt))
        }
        (m, Some(u), None) => (m.unwrap_or(Cow::Borrowed(b"")), u),
        (_, None, None) => return Err(ParseError::Request),
    };
    Ok(Line {
        ip,
        time_ms,
        user: f.user.and_then(dash_none_text),
        method,
        target,
        args: f.args.filter(|a| !a.is_empty() && &**a != b"-"),
        status,
        bytes,
        referer: f.referer.and_then(dash_none_text),
        user_agent: f.agent.and_then(dash_none_text),
    })
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> JsonParser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.ws();
        (self.peek()? == b).then(|| self.i += 1)
    }

    /// A string (opening quote at `i`): borrowed unless it had escapes.
    fn string(&mut self) -> Option<Text<'a>> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            let j = self.i + memchr2(b'"', b'\\', &self.s[self.i..])?;
            if self.s[j] == b'"' {
                self.i = j + 1;
                let raw = &self.s[start..j];
                return Some(if escaped {
                    Cow::Owned(unescape_json(raw)?)
                } else {
                    Cow::Borrowed(raw)
                });
            }
            escaped = true;
            self.i = j + 2;
            if self.i > self.s.len() {
                return None;
            }
        }
    }

    /// A number, `true`, `false` or `null`: the raw text.
    fn scalar(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    fn object(&mut self, f: &mut JsonFields<'a>, depth: u32) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.eat(b':')?;
            self.ws();
            let slot = normalise_key(&key).and_then(|n| key_of(&n.0[..n.1]));
            self.value(f, slot, depth)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn value(&mut self, f: &mut JsonFields<'a>, slot: Option<Key>, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => {
                let v = self.string()?;
                if let Some(k) = slot {
                    f.slot(k).get_or_insert(v);
                }
            }
            b'{' => {
                if depth >= MAX_DEPTH {
                    return self.skip_nested();
                }
                self.object(f, depth + 1)?;
            }
            b'[' => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    match self.peek()? {
                        b'"' => {
                            let v = self.string()?;
                            if let Some(k) = slot {
                                f.slot(k).get_or_insert(v);
                            }
                        }
                        b'{' | b'[' => self.skip_nested()?,
                        _ => {
                            self.scalar()?;
                        }
                    }
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
            }
            _ => {
                let v = self.scalar()?;
                if let Some(k) = slot {
                    if v != b"null" {
                        f.slot(k).get_or_insert(Cow::Borrowed(v));
                    }
                }
            }
        }
        Some(())
    }

    /// Skips a nested object or array, strings included, without recursion.
    fn skip_nested(&mut self) -> Option<()> {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        self.i += 1;
                        return Some(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        None
    }
}

fn normalise_key(key: &[u8]) -> Option<([u8; 32], usize)> {
    let mut out = [0u8; 32];
    let mut n = 0;
    for &b in key {
        if matches!(b, b'_' | b'-' | b'.' | b'@') {
            continue;
        }
        *out.get_mut(n)? = b.to_ascii_lowercase();
        n += 1;
    }
    Some((out, n))
}

/// Decodes JSON string escapes (`\uXXXX` with surrogate pairs included); `None` when broken.
fn unescape_json(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let e = *raw.get(i + 1)?;
        i += 2;
        let c = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut cp = u32::from(hex4(raw.get(i..i + 4)?)?);
                i += 4;
                if (0xD800..0xDC00).contains(&cp) && raw.get(i..i + 2) == Some(b"\\u") {
                    if let Some(lo) = raw.get(i + 2..i + 6).and_then(hex4) {
                        if (0xDC00..0xE000).contains(&lo) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
                            i += 6;
                        }
                    }
                }
                let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            _ => return None,
        };
        out.push(c);
    }
    Some(out)
}

fn hex4(h: &[u8]) -> Option<u16> {
    let mut v = 0u16;
    for &b in h {
        v = v << 4 | u16::from(hex(b)?);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combined(l: &str) -> Line<'_> {
        parse_line(Format::Combined, l.as_bytes()).unwrap()
    }

    #[test]
    fn apache_combined_with_escapes() {
        let l = combined(
            r#"10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET /q?a=\"x\" HTTP/1.1" 404 - "http://r/" "Mo\"z\x41""#,
        );
        assert_eq!(&*l.target, br#"/q?a="x""#);
        assert_eq!(l.status, 404);
        assert_eq!(l.bytes, None);
        assert_eq!(l.referer.as_deref(), Some(&b"http://r/"[..]));
        assert_eq!(l.user_agent.as_deref(), Some(&b"Mo\"zA"[..]));
        assert_eq!(l.time_ms, 1_704_067_200_000);
    }

    #[test]
    fn unescaped_quote_in_request_still_parses() {
        let l = combined(
            r#"10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET /a"b HTTP/1.1" 200 5 "-" "x""#,
        );
        assert_eq!(&*l.target, br#"/a"b"#);
        assert_eq!(l.bytes, Some(5));
    }

    #[test]
    fn garbage_request_keeps_the_client() {
        let l = combined(
            "10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] \"\\x16\\x03\\x01\" 400 157 \"-\" \"-\"",
        );
        assert_eq!(&*l.method, b"");
        assert_eq!(l.status, 400);
        assert_eq!(l.user_agent, None);
    }

    #[test]
    fn common_ignores_the_tail_and_vhost_prefix_is_skipped() {
        let raw = br#"example.com:443 2001:db8::1 - bob [10/Oct/2000:13:55:36 -0700] "POST /login HTTP/1.1" 401 12 "-" "ua""#;
        let l = parse_line(Format::Common, raw).unwrap();
        assert_eq!(l.ip.to_string(), "2001:db8::1");
        assert_eq!(l.user_agent, None);
        assert_eq!(l.user.as_deref(), Some(&b"bob"[..]));
        let l = parse_line(Format::Combined, raw).unwrap();
        assert_eq!(l.user_agent.as_deref(), Some(&b"ua"[..]));
    }

    #[test]
    fn absolute_targets_are_reduced_to_the_path() {
        let l = combined(
            r#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET http://evil.test/x?y=1 HTTP/1.1" 200 1 "-" "-""#,
        );
        assert_eq!(l.path(), b"/x");
        assert_eq!(l.query(), Some(&b"y=1"[..]));
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_clf_time(b"10/Oct/2000:13:55:36 -0700"),
            Some(971_211_336_000)
        );
        assert_eq!(
            parse_rfc3339(b"2000-10-10T20:55:36Z"),
            Some(971_211_336_000)
        );
        assert_eq!(
            parse_rfc3339(b"2000-10-10T22:55:36.250+02:00"),
            Some(971_211_336_250)
        );
        assert_eq!(parse_rfc3339(b"2000-13-10T22:55:36Z"), None);
        assert_eq!(parse_clf_time(b"10/Foo/2000:13:55:36 -0700"), None);
        assert_eq!(parse_epoch(b"971211336.25"), Some(971_211_336_250));
    }

    #[test]
    fn nginx_escape_json() {
        let raw = br#"{"time_iso8601":"2024-01-01T00:00:00+00:00","remote_addr":"10.1.2.3","remote_user":"","request":"GET /a?b=\u0022c HTTP/1.1","status": "200","body_bytes_sent":"12","request_time":"0.001","http_referer":"","http_user_agent":"curl/8"}"#;
        let l = parse_json(raw).unwrap();
        assert_eq!(l.ip.to_string(), "10.1.2.3");
        assert_eq!(l.path(), b"/a");
        assert_eq!(l.query(), Some(&b"b=\"c"[..]));
        assert_eq!(l.user, None);
        assert_eq!(l.referer, None);
        assert_eq!(l.bytes, Some(12));
        assert_eq!(l.status, 200);
    }

    #[test]
    fn nested_json_and_method_uri_args() {
        let raw = br#"{"ts":1704067200.5,"request":{"remote_ip":"10.0.0.9","method":"POST","uri":"/login","headers":{"User-Agent":["sqlmap/1.7"],"X":[{"a":"}"}]}},"status":401,"size":0}"#;
        let l = parse_json(raw).unwrap();
        assert_eq!(l.ip.to_string(), "10.0.0.9");
        assert_eq!(l.time_ms, 1_704_067_200_500);
        assert_eq!(&*l.method, b"POST");
        assert_eq!(l.user_agent.as_deref(), Some(&b"sqlmap/1.7"[..]));
        let raw = br#"{"remote_addr":"10.0.0.1:5555","time_local":"01/Jan/2024:00:00:00 +0000","request_method":"GET","uri":"/s","args":"q=1","status":404}"#;
        let l = parse_json(raw).unwrap();
        assert_eq!(l.ip.to_string(), "10.0.0.1");
        assert_eq!(l.query(), Some(&b"q=1"[..]));
    }

    #[test]
    fn detection() {
        let c: &[u8] =
            br#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "x""#;
        let m: &[u8] = br#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1"#;
        let j: &[u8] = br#"{"remote_addr":"1.2.3.4","time":"2024-01-01T00:00:00Z","request":"GET / HTTP/1.1","status":200}"#;
        assert_eq!(detect([c, m]), Some(Format::Combined));
        assert_eq!(detect([m, m]), Some(Format::Common));
        assert_eq!(detect([j, b"junk".as_slice()]), Some(Format::Json));
        assert_eq!(detect([b"junk".as_slice()]), None);
    }

    #[test]
    fn malformed_lines_are_errors() {
        for raw in [
            &b"nonsense"[..],
            b"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1",
            b"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1\" 2000 1",
            b"1.2.3.4 - - [01/Jan/2024] \"GET / HTTP/1.1\" 200 1",
            b"\xff\xfe\x00",
            b"{\"remote_addr\":\"1.2.3.4\"",
            b"{\"a\":[[[[[[[[}",
        ] {
            assert!(parse_line(Format::Combined, raw).is_err());
            assert!(parse_line(Format::Json, raw).is_err());
        }
    }
}
