//! Redaction: what may leave the process, and in what form.

use std::borrow::Cow;
use std::fmt;
use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher13};

/// The placeholder written in place of a secret value.
pub const REDACTED: &str = "[REDACTED]";

/// Decides what of a request may be recorded.
///
/// - Headers are captured from an allow-list only; `Authorization`, `Proxy-Authorization`,
///   `Cookie` and `Set-Cookie` are refused even if someone adds them to it.
/// - Query values (pairs separated by `&` or `;`) become `[REDACTED]` when their name is
///   secret ([`is_secret_name`]: `client_secret`, `newPassword`, `user[password]`,
///   `X-Auth-Token`, `otp_code`, `SAMLResponse`, …, or a configured key), and wherever they
///   are secret-shaped: JWTs, ≥ 32 hex digits, ≥ 32 base64/base64url characters of mixed
///   classes, AWS/GitHub/Slack/Stripe/Google keys, PEM blocks.
/// - Paths ([`Redactor::path`]) lose the token-like segments of reset, verify, invite,
///   unsubscribe, confirm, activate and magic links, and any secret-shaped segment; a
///   `Referer` is redacted the same way (its query, its path, its user info; its fragment is
///   dropped).
/// - Signature samples kept for `/offenders`, alerts and triage reports are masked where they
///   overlap a secret parameter's value, and wherever they hold a secret shape.
/// - Session and device ids are stored as keyed hashes (SipHash-1-3, 128 bits, a per-process
///   random key unless one is configured), so a sink never holds a usable session id.
#[derive(Clone)]
pub struct Redactor {
    query_keys: Vec<String>,
    header_allow: Vec<http::HeaderName>,
    /// Bit `n` is set when an allow-listed name is `n` bytes long (bit 127: 127 or more), so
    /// most request headers are passed over on their length alone. Only `capture_header`
    /// adds to the list, and it sets the bit.
    header_lens: u128,
    key: (u64, u64),
    hash_users: bool,
}

const NEVER_CAPTURED: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Query keys whose values are redacted by default (compared without case).
pub const DEFAULT_SECRET_QUERY_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "key",
    "auth",
    "code",
    "session",
    "sessionid",
    "sid",
    "signature",
    "sig",
    "otp",
];

impl Default for Redactor {
    fn default() -> Self {
        Redactor {
            query_keys: DEFAULT_SECRET_QUERY_KEYS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            header_allow: Vec::new(),
            header_lens: 0,
            key: random_key(),
            hash_users: false,
        }
        // Through `capture_header`, which keeps the list and its length mask together.
        .capture_header(http::header::REFERER)
        .capture_header(http::header::CONTENT_TYPE)
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("query_keys", &self.query_keys)
            .field("header_allow", &self.header_allow)
            .field("hash_users", &self.hash_users)
            .finish_non_exhaustive()
    }
}

/// The bit for a header name's length in `Redactor::header_lens`.
fn len_bit(name: &http::HeaderName) -> u128 {
    1 << name.as_str().len().min(127)
}

fn random_key() -> (u64, u64) {
    let id = uuid::Uuid::new_v4().as_u128();
    (id as u64, (id >> 64) as u64)
}

impl Redactor {
    /// Adds a query key whose value is never recorded.
    pub fn secret_query_key(mut self, key: impl Into<String>) -> Self {
        self.query_keys.push(key.into().to_ascii_lowercase());
        self
    }

    /// Adds a request header to the capture allow-list. Credential headers are refused.
    pub fn capture_header(mut self, name: http::HeaderName) -> Self {
        if !NEVER_CAPTURED.contains(&name.as_str()) && !self.header_allow.contains(&name) {
            self.header_lens |= len_bit(&name);
            self.header_allow.push(name);
        }
        self
    }

    /// Uses a fixed key for hashing ids, so hashes stay stable across restarts and replicas.
    pub fn hash_key(mut self, key: [u8; 16]) -> Self {
        let k = u128::from_le_bytes(key);
        self.key = (k as u64, (k >> 64) as u64);
        self
    }

    /// Also stores user ids as keyed hashes.
    pub fn hash_user_ids(mut self, yes: bool) -> Self {
        self.hash_users = yes;
        self
    }

    /// Whether user ids are hashed.
    pub fn hashes_user_ids(&self) -> bool {
        self.hash_users
    }

    /// A keyed hash of an identifier, as 32 hex digits.
    pub fn hash_id(&self, id: &str) -> String {
        let mut h = SipHasher13::new_with_keys(self.key.0, self.key.1);
        h.write(id.as_bytes());
        format!("{:032x}", h.finish128().as_u128())
    }

    /// The user id as it may be stored.
    pub fn user_id(&self, user: &str) -> String {
        if self.hash_users {
            self.hash_id(user)
        } else {
            user.to_owned()
        }
    }

    /// [`Redactor::user_id`] without copying when ids are not hashed.
    pub fn user_id_owned(&self, user: String) -> String {
        if self.hash_users {
            self.hash_id(&user)
        } else {
            user
        }
    }

    /// The allow-listed headers of a request, lower-case names, values escaped.
    ///
    /// In allow-list order, then in the order the request gave a header's values.
    pub fn headers(&self, headers: &http::HeaderMap) -> Vec<(String, String)> {
        let mut out = Vec::new();
        // Most requests carry none of them: walking the few names a request has, and comparing
        // only those of an allow-listed length, is cheaper than a hashed lookup per allow-listed
        // name.
        let listed = |k: &http::HeaderName| {
            self.header_lens & len_bit(k) != 0 && self.header_allow.contains(k)
        };
        if !headers.keys().any(listed) {
            return out;
        }
        for name in &self.header_allow {
            for v in headers.get_all(name) {
                let text = match std::str::from_utf8(v.as_bytes()) {
                    Ok(s) => std::borrow::Cow::Borrowed(s),
                    Err(_) => String::from_utf8_lossy(v.as_bytes()),
                };
                out.push((name.as_str().to_owned(), escape_control(&self.url(&text))));
            }
        }
        out
    }

    /// An application's event as it may leave the process: an attribute whose name is secret
    /// ([`is_secret_name`]: `new_password`, `reset_token`, `otp`, …) has its value replaced
    /// whole; every other attribute, the user agent and the request line are redacted as
    /// text, path and query. The engine has already seen the event as fired; this is what
    /// sinks, alerts and the store get.
    ///
    /// ```
    /// # use tower_siem::{Event, event::Redactor};
    /// let mut e = Event::new("auth.password_changed")
    ///     .attr("new_password", "correct horse battery staple")
    ///     .attr("link", "https://example.com/reset/Xk3pQ9zL2vB8wR4t");
    /// Redactor::default().event(&mut e);
    /// assert_eq!(e.get_attr("new_password"), Some("[REDACTED]"));
    /// assert_eq!(e.get_attr("link"), Some("https://example.com/reset/[REDACTED]"));
    /// ```
    pub fn event(&self, e: &mut super::Event) {
        for (name, value) in &mut e.attrs {
            if is_secret_name(name) || self.query_keys.iter().any(|k| k.eq_ignore_ascii_case(name))
            {
                if value != REDACTED {
                    REDACTED.clone_into(value);
                }
            } else {
                let redacted = escape_control(&self.url(value));
                if redacted != *value {
                    *value = redacted;
                }
            }
        }
        if let Some(ua) = &mut e.user_agent {
            if let Cow::Owned(text) = self.text(ua) {
                *ua = text;
            }
        }
        if let Some(http) = &mut e.http {
            if let Cow::Owned(path) = self.path(&http.path) {
                http.path = path;
            }
            if let Some(q) = &http.query {
                http.query = self.query(q);
            }
            for (name, value) in &mut http.headers {
                if is_secret_name(name) || NEVER_CAPTURED.contains(&name.as_str()) {
                    REDACTED.clone_into(value);
                } else {
                    *value = escape_control(&self.url(value));
                }
            }
        }
    }

    /// The query string with secret values replaced. Returns `None` for an empty query.
    ///
    /// Pairs are separated by `&` or `;`. A value is replaced when its name is secret (see
    /// [`is_secret_name`]), when it is secret-shaped as a whole (a JWT, a long hex or base64
    /// token, a cloud provider key), and in part when it holds such a token or a nested URL
    /// with secrets of its own.
    pub fn query(&self, query: &str) -> Option<String> {
        if query.is_empty() {
            return None;
        }
        Some(escape_control(&self.query_unescaped(query)))
    }

    /// The request path with secret segments replaced by `[REDACTED]`: the token-like
    /// segments that follow a `reset`, `verify`, `invite`, `unsubscribe`, `confirm`,
    /// `activate`, `magic`, `token`, `password` (and similar) segment, every secret-shaped
    /// segment, and the values of secret matrix parameters (`;jsessionid=…`). Borrowed when
    /// there is nothing to replace (the common case: one scan, no allocation).
    ///
    /// ```
    /// let r = tower_siem::event::Redactor::default();
    /// assert_eq!(r.path("/products/42"), "/products/42");
    /// assert_eq!(r.path("/reset/Xk3pQ9zL2vB8"), "/reset/[REDACTED]");
    /// ```
    pub fn path<'a>(&self, path: &'a str) -> Cow<'a, str> {
        match path_spans_fast(path.as_bytes()) {
            Some(spans) => apply_spans(path, spans),
            // Matrix parameters, user info, PEM markers: the general scan.
            None => self.text(path),
        }
    }

    /// Free text (a URL, a log line, a sample of matched text) with what looks secret
    /// replaced: values of secret-named `name=value` pairs, token-like path segments after
    /// `reset`/`verify`/… segments, URL user-info, JWTs, long hex/base64 tokens, cloud keys
    /// and PEM blocks. Borrowed when there is nothing to replace.
    pub fn text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let mut spans = Vec::new();
        self.secret_spans(s, &mut spans);
        apply_spans(s, spans)
    }

    /// A signature sample for a sink: the sample masked where it overlaps a secret of the
    /// field it was taken from (the raw `path` or `query`; the sample is of their decoded
    /// form), then [`text`](Redactor::text).
    pub(crate) fn hit_sample<'a>(
        &self,
        h: &'a crate::signature::Hit,
        path: &str,
        query: Option<&str>,
    ) -> Cow<'a, str> {
        use crate::signature::Field;
        let mut secrets = Vec::new();
        match h.field {
            Field::Query => {
                if let Some(q) = query {
                    self.query_secrets(q, &mut secrets);
                }
            }
            Field::Path => {
                let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
                let mut spans = Vec::new();
                self.secret_spans(&decoded, &mut spans);
                secrets.extend(spans.iter().map(|&(a, b)| decoded[a..b].to_owned()));
            }
            Field::UserAgent => {}
        }
        let mut sample = Cow::Borrowed(h.sample.as_str());
        for secret in &secrets {
            if let Some(masked) = mask_overlap(&sample, &escape_control(secret)) {
                sample = Cow::Owned(masked);
            }
        }
        match sample {
            Cow::Borrowed(s) => self.text(s),
            Cow::Owned(s) => Cow::Owned(self.text(&s).into_owned()),
        }
    }

    /// The decoded secret values of a raw query: whole values of secret-named parameters
    /// (percent-decoded, and form-decoded too), and the secret parts of other values.
    fn query_secrets(&self, query: &str, out: &mut Vec<String>) {
        for pair in query.split(['&', ';']) {
            let Some((k, v)) = pair.split_once('=') else {
                let d = percent_encoding::percent_decode_str(pair).decode_utf8_lossy();
                let mut spans = Vec::new();
                self.secret_spans(&d, &mut spans);
                out.extend(spans.iter().map(|&(a, b)| d[a..b].to_owned()));
                continue;
            };
            if v.is_empty() {
                continue;
            }
            let d = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
            let form = v.replace('+', " ");
            let form = percent_encoding::percent_decode_str(&form).decode_utf8_lossy();
            if self.is_secret_key(k) {
                out.push(d.trim().to_owned());
                out.push(form.trim().to_owned());
            } else {
                for d in [&d, &form] {
                    let mut spans = Vec::new();
                    self.secret_spans(d, &mut spans);
                    out.extend(spans.iter().map(|&(a, b)| d[a..b].to_owned()));
                }
            }
        }
        out.retain(|s| !s.is_empty());
    }

    /// A URL-like value (a `Referer`) with its fragment dropped and its secrets redacted: a
    /// password-reset link must not reach a sink through the next page's `Referer`.
    fn url(&self, value: &str) -> String {
        let value = value.split('#').next().unwrap_or_default();
        match value.split_once('?') {
            Some((base, q)) if !q.is_empty() => {
                format!("{}?{}", self.text(base), self.query_unescaped(q))
            }
            _ => self.text(value).into_owned(),
        }
    }

    fn query_unescaped(&self, query: &str) -> String {
        let mut out = String::with_capacity(query.len());
        let mut rest = query;
        loop {
            let end = rest.find(['&', ';']).unwrap_or(rest.len());
            self.push_pair(&mut out, &rest[..end]);
            if end == rest.len() {
                break;
            }
            out.push_str(&rest[end..=end]);
            rest = &rest[end + 1..];
        }
        out
    }

    /// One `name=value` pair of a query, redacted.
    fn push_pair(&self, out: &mut String, pair: &str) {
        let Some((k, v)) = pair.split_once('=') else {
            // A bare word can still be a token.
            out.push_str(&self.text(pair));
            return;
        };
        if self.is_secret_key(k) {
            out.push_str(k);
            out.push('=');
            out.push_str(REDACTED);
            return;
        }
        if may_hold_secrets(k) {
            out.push_str(&self.text(k));
        } else {
            out.push_str(k);
        }
        out.push('=');
        if !may_hold_secrets(v) {
            out.push_str(v);
            return;
        }
        // Percent-decoded only (`+` kept), so a standard base64 token stays in one piece.
        let d = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
        if is_secret_token(d.trim().as_bytes()) {
            out.push_str(REDACTED);
            return;
        }
        match self.text(&d) {
            Cow::Borrowed(_) => out.push_str(v),
            Cow::Owned(red) => out.extend(percent_encoding::utf8_percent_encode(&red, REENCODE)),
        }
    }

    fn is_secret_key(&self, raw: &str) -> bool {
        let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        let k = decoded.trim();
        if is_secret_name(k) {
            return true;
        }
        if self.query_keys.is_empty() {
            return false;
        }
        // `user[password]` and `user.password` forms count too.
        let leaf = k
            .rsplit(['[', '.'])
            .next()
            .unwrap_or(k)
            .trim_end_matches(']');
        self.query_keys
            .iter()
            .any(|s| s.eq_ignore_ascii_case(k) || s.eq_ignore_ascii_case(leaf))
    }

    /// Where `s` holds secrets, as byte ranges (unsorted, possibly overlapping).
    fn secret_spans(&self, s: &str, spans: &mut Vec<(usize, usize)>) {
        let b = s.as_bytes();
        // `name=value` pairs with a secret name.
        let mut from = 0;
        while let Some(i) = b[from..].iter().position(|&c| c == b'=') {
            let eq = from + i;
            from = eq + 1;
            let mut start = eq;
            while start > 0 && is_name_byte(b[start - 1]) {
                start -= 1;
            }
            if start == eq || !self.is_secret_key(&s[start..eq]) {
                continue;
            }
            let end = b[eq + 1..]
                .iter()
                .position(|&c| is_value_end(c))
                .map_or(b.len(), |j| eq + 1 + j);
            if end > eq + 1 {
                spans.push((eq + 1, end));
                from = end;
            }
        }
        // User info in a URL: `https://user:pass@host/`.
        if let Some(i) = s.find("://") {
            let auth_start = i + 3;
            let auth_end = b[auth_start..]
                .iter()
                .position(|&c| matches!(c, b'/' | b'?' | b'#') || is_value_end(c))
                .map_or(b.len(), |j| auth_start + j);
            if let Some(at) = s[auth_start..auth_end].rfind('@') {
                spans.push((auth_start, auth_start + at));
            }
        }
        path_spans(b, spans);
        shape_spans(b, spans);
        let n = b.len();
        // PEM blocks, to their end line (or the end of the text).
        let mut from = 0;
        while let Some(k) = find(&b[from..], b"-----BEGIN") {
            let a = from + k;
            let end = find(&b[a..], b"-----END")
                .map(|e| {
                    let e = a + e + 8;
                    find(&b[e..], b"-----").map_or(n, |x| e + x + 5)
                })
                .unwrap_or(n);
            spans.push((a, end));
            from = end;
        }
    }
}

/// Whether a raw query name or value could hold anything [`Redactor::text`] finds: most
/// (`page`, `2`, `price_asc`) are too short to hold a token and hold no nested pair, path
/// or escape.
fn may_hold_secrets(s: &str) -> bool {
    s.len() >= 20 || s.bytes().any(|c| matches!(c, b'=' | b'/' | b'%' | b'@'))
}

/// Byte classes, looked up in [`CLASSES`]: the scans run on every recorded path.
const NAME: u8 = 1;
const VALUE_END: u8 = 2;
const PATH_END: u8 = 4;
const TOKEN: u8 = 8;
const DIGIT: u8 = 16;
const ALPHA: u8 = 32;
/// `-` and `@`: the path scan looks closer at them.
const SPECIAL: u8 = 64;

static CLASSES: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut k = 0;
        // Bytes of a parameter name in free text.
        if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'[' | b']' | b'%') {
            k |= NAME;
        }
        // Bytes that end a value in free text.
        if c.is_ascii_whitespace()
            || c.is_ascii_control()
            || matches!(
                c,
                b'&' | b';' | b'#' | b'"' | b'\'' | b'<' | b'>' | b',' | b'\\' | b')' | b'}' | b'|'
            )
        {
            k |= VALUE_END | PATH_END;
        }
        // Bytes that end a path in free text (its segments are then done).
        if matches!(c, b'?' | b'=' | b'(' | b'[' | b']' | b'{') {
            k |= PATH_END;
        }
        // The alphabet of base64/base64url tokens.
        if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'/' | b'=') {
            k |= TOKEN;
        }
        if c.is_ascii_digit() {
            k |= DIGIT;
        }
        if c.is_ascii_alphabetic() {
            k |= ALPHA;
        }
        if matches!(c, b'-' | b'@') {
            k |= SPECIAL;
        }
        t[i] = k;
        i += 1;
    }
    t
}

#[inline]
fn is_name_byte(c: u8) -> bool {
    CLASSES[usize::from(c)] & NAME != 0
}

#[inline]
fn is_value_end(c: u8) -> bool {
    CLASSES[usize::from(c)] & VALUE_END != 0
}

/// Characters re-encoded in a query value that had a part redacted.
const REENCODE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'%')
    .add(b'&')
    .add(b';')
    .add(b'#')
    .add(b'+')
    .add(b'=')
    .add(b'"');

/// Replaces the byte ranges by [`REDACTED`].
fn apply_spans(s: &str, mut spans: Vec<(usize, usize)>) -> Cow<'_, str> {
    if spans.is_empty() {
        return Cow::Borrowed(s);
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for (a, b) in spans {
        if b <= at {
            continue;
        }
        let a = a.max(at);
        out.push_str(&s[at..a]);
        out.push_str(REDACTED);
        at = b;
    }
    out.push_str(&s[at..]);
    Cow::Owned(out)
}

/// `sample` with the parts that overlap `secret` masked, or `None` when they do not meet.
fn mask_overlap(sample: &str, secret: &str) -> Option<String> {
    if secret.is_empty() || sample.is_empty() {
        return None;
    }
    if sample.contains(secret) {
        return Some(sample.replace(secret, REDACTED));
    }
    if secret.contains(sample) {
        return Some(REDACTED.to_owned());
    }
    // The sample ends inside the secret (it was cut, or the match ran into the value) …
    let tail = (1..secret.len().min(sample.len()))
        .rev()
        .filter(|&k| secret.is_char_boundary(k))
        .find(|&k| sample.ends_with(&secret[..k]));
    // … or begins inside it.
    let head = (1..secret.len().min(sample.len()))
        .rev()
        .filter(|&k| secret.is_char_boundary(secret.len() - k))
        .find(|&k| sample.starts_with(&secret[secret.len() - k..]));
    if tail.is_none() && head.is_none() {
        return None;
    }
    let mut spans = Vec::new();
    if let Some(k) = tail {
        spans.push((sample.len() - k, sample.len()));
    }
    if let Some(k) = head {
        spans.push((0, k));
    }
    Some(apply_spans(sample, spans).into_owned())
}

/// Splits a parameter name into words: at case changes (`newPassword`, `SAMLResponse`),
/// digits and anything not a letter (`_`, `-`, `.`, `[`, `]`, …). Calls `f` on each word
/// (letters as given) until it returns true.
fn any_word(name: &[u8], mut f: impl FnMut(&[u8]) -> bool) -> bool {
    let n = name.len();
    let letter = |c: u8| c.is_ascii_alphabetic() || c >= 0x80;
    let mut i = 0;
    while i < n {
        if !letter(name[i]) {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < n && letter(name[i]) {
            let (p, c) = (name[i - 1], name[i]);
            if c.is_ascii_uppercase() && p.is_ascii_lowercase() {
                break;
            }
            // `SAMLResponse`: an upper-case run ends before the capital of the next word.
            if c.is_ascii_lowercase() && p.is_ascii_uppercase() && i - 1 > start {
                i -= 1;
                break;
            }
            i += 1;
        }
        if f(&name[start..i]) {
            return true;
        }
    }
    false
}

/// A list of lower-case words, with an index of the (length, first letter) pairs it holds:
/// most words are ruled out by one lookup, before any comparison.
struct Words {
    list: &'static [&'static str],
    /// Bit `l - 'a'` of entry `n` is set when a word of length `n` begins with `l`.
    index: [u32; 32],
}

impl Words {
    const fn new(list: &'static [&'static str]) -> Self {
        let mut index = [0u32; 32];
        let mut i = 0;
        while i < list.len() {
            let w = list[i].as_bytes();
            assert!(!w.is_empty() && w.len() < 32 && w[0].is_ascii_lowercase());
            index[w.len()] |= 1 << (w[0] - b'a');
            i += 1;
        }
        Words { list, index }
    }
}

fn eq_any(w: &[u8], words: &Words) -> bool {
    let Some(&first) = w.first() else {
        return false;
    };
    let first = first.to_ascii_lowercase();
    if w.len() >= 32 || !first.is_ascii_lowercase() {
        return false;
    }
    words.index[w.len()] & 1 << (first - b'a') != 0
        && words.list.iter().any(|s| {
            let s = s.as_bytes();
            s.len() == w.len() && s[0] == first && w.eq_ignore_ascii_case(s)
        })
}

fn contains_ci(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.len() >= n.len() && hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

fn ends_with_ci(hay: &[u8], needle: &str) -> bool {
    hay.len() >= needle.len()
        && hay[hay.len() - needle.len()..].eq_ignore_ascii_case(needle.as_bytes())
}

/// Words that make a parameter name secret on their own.
const SECRET_WORDS: Words = Words::new(&[
    "secret",
    "secrets",
    "token",
    "tokens",
    "password",
    "passwords",
    "passwd",
    "passwort",
    "pass",
    "passcode",
    "passphrase",
    "passkey",
    "pwd",
    "pw",
    "pswd",
    "key",
    "keys",
    "apikey",
    "auth",
    "jwt",
    "jwe",
    "jws",
    "session",
    "sessions",
    "sessionid",
    "sid",
    "sessid",
    "credential",
    "credentials",
    "cred",
    "creds",
    "otp",
    "totp",
    "hotp",
    "mfa",
    "pin",
    "pincode",
    "signature",
    "sig",
    "sign",
    "hash",
    "hmac",
    "nonce",
    "salt",
    "saml",
    "assertion",
    "ticket",
    "verifier",
    "csrf",
    "xsrf",
    "bearer",
    "cookie",
    "private",
    "privatekey",
    "cvv",
    "cvc",
    "ssn",
    "captcha",
    "recaptcha",
    "magic",
]);

/// Fragments that make a name secret wherever they appear in it, separators left out
/// (`newpassword`, `accesstoken`, `clientsecret`, `JSESSIONID`, `SAMLart`).
const SECRET_STEMS: &[&str] = &[
    "secret",
    "token",
    "passw",
    "pwd",
    "passcode",
    "passphrase",
    "jwt",
    "session",
    "sessid",
    "credential",
    "apikey",
    "privatekey",
    "saml",
    "signature",
    "hmac",
    "csrf",
    "xsrf",
];

/// Words before `code` that keep it from being a secret (`zip_code`, `country_code`…).
const PLAIN_CODE_WORDS: Words = Words::new(&[
    "zip", "postal", "post", "country", "currency", "lang", "language", "locale", "status",
    "error", "product", "area", "region", "state", "iso", "http", "color", "colour", "item", "sku",
    "tax", "airport", "city", "phone", "dial", "bar", "qr", "source", "program", "class", "course",
    "event", "exit", "return", "reason", "unit", "zone", "station", "store", "shop", "branch",
    "sort", "swift", "bic", "ean", "upc", "gtin", "iata", "icao", "response", "result", "hs",
    "naics", "sic", "lookup", "type", "category", "campaign",
]);

/// Glued prefixes of `code` that make it secret (`otpcode`, `smscode`).
const SECRET_CODE_PREFIXES: Words = Words::new(&[
    "otp",
    "totp",
    "mfa",
    "sms",
    "auth",
    "verification",
    "verify",
    "reset",
    "confirm",
    "confirmation",
    "security",
    "access",
    "pin",
    "pass",
    "login",
    "invite",
    "email",
    "one",
    "recovery",
    "backup",
    "activation",
    "fa",
]);

/// Words that end like `key` but are not one.
const NOT_KEYS: Words = Words::new(&["monkey", "turkey", "donkey", "hockey", "jockey", "whiskey"]);

/// Whether a parameter (or header) name names a secret.
///
/// The name is split into words (case changes, digits, `_`, `-`, `.`, `[`, `]`), and it is
/// secret when a word is one of the secret words (`secret`, `token`, `password`, `pass`,
/// `pwd`, `key`, `auth`, `jwt`, `session`, `sid`, `credential`, `otp`, `mfa`, `pin`,
/// `signature`, `sig`, `hash`, `nonce`, `saml`, `ticket`, `csrf`, `cvv`, …), ends in `key`
/// (`apikey`, `secretKey`), holds `auth` (`oauth`, `authorization`, but not `author`), or is
/// `code` without a word that makes it an ordinary code (`zip_code`, `country_code`,
/// `status_code`); or when the name with separators left out holds a stem such as `token`,
/// `secret`, `passw`, `session`, `credential`, `apikey` (`newpassword`, `accesstoken`).
///
/// Not secret: `q`, `page`, `sort`, `author`, `authority`, `shipping`, `spinner`, `keyword`
/// (a search term), `monkey`. Over-redacting an odd name (`sort_key`, `promo_code`) is the
/// price of never missing one.
///
/// ```
/// use tower_siem::event::is_secret_name;
/// for n in ["client_secret", "newPassword", "user[password]", "X-Auth-Token", "SAMLResponse", "pin"] {
///     assert!(is_secret_name(n), "{n}");
/// }
/// for n in ["q", "page", "author", "shipping", "spinner", "keyword", "zip_code"] {
///     assert!(!is_secret_name(n), "{n}");
/// }
/// ```
pub fn is_secret_name(name: &str) -> bool {
    let b = name.as_bytes();
    // Letters only, separators and digits left out: `pass_word`, `access-token`.
    let mut buf = [0u8; 64];
    let mut len = 0;
    for &c in b.iter().filter(|c| c.is_ascii_alphabetic()) {
        if len == buf.len() {
            break;
        }
        buf[len] = c;
        len += 1;
    }
    if SECRET_STEMS.iter().any(|s| contains_ci(&buf[..len], s)) {
        return true;
    }
    let mut code = false;
    let mut plain_code = false;
    let secret_word = any_word(b, |w| {
        if eq_any(w, &SECRET_WORDS) {
            return true;
        }
        // `author`, `authority` are not secret; `authorization` is.
        let author = contains_ci(w, "author") && !contains_ci(w, "authoriz");
        if contains_ci(w, "auth") && !author {
            return true;
        }
        if (ends_with_ci(w, "key") || ends_with_ci(w, "keys")) && !eq_any(w, &NOT_KEYS) {
            return true;
        }
        if ends_with_ci(w, "code") {
            let stem = &w[..w.len() - 4];
            if stem.is_empty() {
                code = true;
            } else if eq_any(stem, &SECRET_CODE_PREFIXES) {
                return true;
            }
        }
        if ends_with_ci(w, "codes") && w.len() == 5 {
            code = true;
        }
        if eq_any(w, &PLAIN_CODE_WORDS) {
            plain_code = true;
        }
        false
    });
    secret_word || (code && !plain_code)
}

/// Segment words after which a token-like segment is a secret (`/reset/<token>`).
const TRIGGER_WORDS: Words = Words::new(&[
    "reset",
    "resets",
    "verify",
    "verification",
    "verifications",
    "invite",
    "invites",
    "invitation",
    "invitations",
    "unsubscribe",
    "unsub",
    "optout",
    "confirm",
    "confirmation",
    "confirmations",
    "activate",
    "activation",
    "magic",
    "token",
    "tokens",
    "password",
    "passwords",
    "passwd",
    "pw",
    "secret",
    "secrets",
    "recover",
    "recovery",
    "login",
    "signin",
    "otp",
    "key",
    "keys",
    "claim",
    "accept",
    "auth",
    "oauth",
    "sso",
    "saml",
    "session",
    "sessions",
    "share",
    "shared",
    "access",
    "approve",
    "email",
    "callback",
]);

fn is_trigger(seg: &[u8]) -> bool {
    !seg.is_empty() && seg.len() <= 40 && any_word(seg, |w| eq_any(w, &TRIGGER_WORDS))
}

/// Whether a path segment after a trigger looks like a token: ≥ 6 digits, ≥ 8 characters
/// with letters and digits, or ≥ 16 characters of anything.
fn looks_token(seg: &[u8]) -> bool {
    let n = seg.len();
    if n < 6 {
        return false;
    }
    let digits = seg.iter().filter(|c| c.is_ascii_digit()).count();
    let letters = seg.iter().filter(|c| c.is_ascii_alphabetic()).count();
    looks_token_counts(n, digits, letters)
}

#[inline]
fn looks_token_counts(n: usize, digits: usize, letters: usize) -> bool {
    (n >= 6 && digits == n) || (n >= 8 && digits > 0 && letters > 0) || n >= 16
}

/// Bytes that end a path in free text (the path's segments are then done).
#[inline]
fn is_path_end(c: u8) -> bool {
    CLASSES[usize::from(c)] & PATH_END != 0
}

/// Token-like segments after a trigger segment (`/reset/<token>`, `/reset/<uid>/<token>`).
fn path_spans(b: &[u8], spans: &mut Vec<(usize, usize)>) {
    let mut seg_start = 0;
    // A segment is one only when a `/` came before it.
    let mut in_path = false;
    // Whether a segment of this path before `scanned` is a trigger. Segments are looked at
    // for triggers only once a token-like one follows them (most paths have none), and each
    // once.
    let mut triggered = false;
    let mut scanned = 0;
    for i in 0..=b.len() {
        let c = b.get(i).copied();
        let slash = c == Some(b'/');
        if !(slash || c.is_none() || c.is_some_and(is_path_end)) {
            continue;
        }
        let seg = &b[seg_start..i];
        if in_path && looks_token(seg) {
            if !triggered && scanned < seg_start {
                triggered = b[scanned..seg_start].split(|&c| c == b'/').any(is_trigger);
                scanned = seg_start;
            }
            if triggered {
                spans.push((seg_start, i));
            }
        }
        if !slash {
            triggered = false;
            scanned = i + 1;
        }
        in_path = slash;
        seg_start = i + 1;
    }
}

/// What [`Redactor::text`] finds in a path, in one pass over it (the layer runs it on every
/// recorded request): token-like segments after a trigger segment, and secret-shaped
/// segments. Most paths (short segments) allocate nothing. `None` when the path holds
/// something only the general scan handles (`=`, `@`, `-----`).
fn path_spans_fast(b: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut spans = Vec::new();
    let (mut len, mut digits, mut letters, mut dashes) = (0usize, 0usize, 0usize, 0usize);
    let mut seg_start = 0;
    // As in `path_spans`: segments follow a `/`, and are looked at for triggers only once a
    // token-like segment follows them, each once.
    let mut in_path = false;
    let mut triggered = false;
    let mut scanned = 0;
    for i in 0..=b.len() {
        let c = b.get(i).copied();
        let k = c.map_or(PATH_END, |c| CLASSES[usize::from(c)]);
        let slash = c == Some(b'/');
        if k & PATH_END == 0 && !slash {
            len += 1;
            digits += usize::from(k & DIGIT != 0);
            letters += usize::from(k & ALPHA != 0);
            if k & SPECIAL == 0 {
                dashes = 0;
            } else if c == Some(b'@') {
                return None;
            } else {
                dashes += 1;
                if dashes >= 5 {
                    return None;
                }
            }
            continue;
        }
        if c == Some(b'=') {
            return None;
        }
        if len > 0 && looks_token_counts(len, digits, letters) {
            if in_path && !triggered && scanned < seg_start {
                triggered = b[scanned..seg_start].split(|&c| c == b'/').any(is_trigger);
                scanned = seg_start;
            }
            if in_path && triggered {
                spans.push((seg_start, i));
            } else if len >= 20 {
                let before = spans.len();
                shape_spans(&b[seg_start..i], &mut spans);
                for s in &mut spans[before..] {
                    *s = (s.0 + seg_start, s.1 + seg_start);
                }
            }
        }
        if !slash {
            triggered = false;
            scanned = i + 1;
        }
        in_path = slash;
        (len, digits, letters, dashes) = (0, 0, 0, 0);
        seg_start = i + 1;
    }
    Some(spans)
}

/// Bytes of a base64/base64url run (the alphabet of tokens).
#[inline]
fn is_token_byte(c: u8) -> bool {
    CLASSES[usize::from(c)] & TOKEN != 0
}

/// JWTs and secret-shaped runs.
fn shape_spans(b: &[u8], spans: &mut Vec<(usize, usize)>) {
    let n = b.len();
    let mut i = 0;
    while i < n {
        if !is_token_byte(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        // JWT: `eyJ…` base64url parts joined by dots.
        if b[i..].starts_with(b"eyJ") {
            let mut j = i;
            let mut dots = 0;
            while j < n && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'_' | b'-' | b'.')) {
                dots += usize::from(b[j] == b'.');
                j += 1;
            }
            if dots >= 2 && j - i >= 24 {
                spans.push((i, j));
                i = j;
                continue;
            }
        }
        while i < n && is_token_byte(b[i]) {
            i += 1;
            // A JWT after a `/` or `=` starts a run of its own.
            if b[i..].starts_with(b"eyJ") && matches!(b[i - 1], b'/' | b'+' | b'=') {
                break;
            }
        }
        let run = &b[start..i];
        if run.len() < 20 {
            continue;
        }
        let asset = is_asset_name(run, &b[i..]);
        if !asset && is_secret_token(run) {
            spans.push((start, i));
            continue;
        }
        // Pieces between `/`, `+`, `=`: `/files/<token>`, `k=<token>`.
        if !run.iter().any(|&c| matches!(c, b'/' | b'+' | b'=')) {
            continue;
        }
        let mut p = start;
        for piece in run.split(|&c| matches!(c, b'/' | b'+' | b'=')) {
            let last = p + piece.len() == i;
            if !(last && asset) && is_secret_token(piece) {
                spans.push((p, p + piece.len()));
            }
            p += piece.len() + 1;
        }
    }
}

/// A fingerprinted static file (`app-<digest>.css`): a digest of public content, no secret.
fn is_asset_name(run: &[u8], after: &[u8]) -> bool {
    const EXTS: Words = Words::new(&[
        "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico",
        "woff", "woff2", "ttf", "otf", "eot", "wasm",
    ]);
    let Some(ext) = after.strip_prefix(b".") else {
        return false;
    };
    let end = ext
        .iter()
        .position(|c| !c.is_ascii_alphanumeric())
        .unwrap_or(ext.len());
    // The digest follows a name (`application-`, `main.`): a bare token is still masked.
    let name = run.rsplit(|&c| c == b'/').next().unwrap_or(run);
    eq_any(&ext[..end], &EXTS)
        && name.iter().take(3).all(u8::is_ascii_alphabetic)
        && name.contains(&b'-')
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&c| c == first) {
        let at = from + i;
        if hay[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Provider key prefixes (case-sensitive) by their first byte, each followed by at least 16
/// more characters.
fn key_prefixes(first: u8) -> &'static [&'static str] {
    match first {
        b'A' => &[
            "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA", "AIza",
        ],
        b'g' => &[
            "ghp_",
            "gho_",
            "ghu_",
            "ghs_",
            "ghr_",
            "github_pat_",
            "glpat-",
        ],
        b'x' => &[
            "xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-", "xoxe-", "xapp-",
        ],
        b's' => &[
            "sk_live_", "sk_test_", "shpat_", "shpss_", "shpca_", "sq0atp-", "sq0csp-", "sk-",
        ],
        b'r' => &["rk_live_", "rk_test_"],
        b'p' => &["pk_live_"],
        b'w' => &["whsec_"],
        b'n' => &["npm_"],
        b'h' => &["hf_"],
        b'd' => &["dop_v1_"],
        _ => &[],
    }
}

/// Whether a run of token characters is secret-shaped: a provider key, ≥ 32 hex digits, or
/// ≥ 32 base64/base64url characters mixing upper case, lower case and digits (≥ 64 with two
/// of the three).
pub(crate) fn is_secret_token(s: &[u8]) -> bool {
    let n = s.len();
    if n < 20 {
        return false;
    }
    if let Some(p) = key_prefixes(s[0])
        .iter()
        .find(|p| s.starts_with(p.as_bytes()))
    {
        let rest = &s[p.len()..];
        if rest.len() >= 16
            && rest
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
        {
            return true;
        }
    }
    if n < 32 {
        return false;
    }
    let (mut up, mut lo, mut dig, mut hex, mut slashes) = (false, false, false, true, 0);
    for &c in s {
        match c {
            b'0'..=b'9' => dig = true,
            b'a'..=b'f' => lo = true,
            b'A'..=b'F' => up = true,
            b'g'..=b'z' => (lo, hex) = (true, false),
            b'G'..=b'Z' => (up, hex) = (true, false),
            b'_' | b'-' | b'+' | b'=' => hex = false,
            b'/' => (hex, slashes) = (false, slashes + 1),
            _ => return false,
        }
    }
    if hex {
        return dig && (up || lo) || n >= 40;
    }
    // A path (`/a/b/c…`) is not a token.
    if s[0] == b'/' || slashes * 16 > n {
        return false;
    }
    let classes = u8::from(up) + u8::from(lo) + u8::from(dig);
    classes == 3 || (n >= 64 && classes >= 2)
}

/// Escapes control characters (and the Unicode line separators) so a value stays on one line.
///
/// ```
/// assert_eq!(tower_siem::event::escape_control("a\nb\u{7}"), "a\\nb\\u{7}");
/// ```
pub fn escape_control(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_secrets_are_replaced() {
        let r = Redactor::default();
        assert_eq!(
            r.query("q=shoes&password=hunter2&Token=abc&user%5Bpassword%5D=x&flag")
                .unwrap(),
            "q=shoes&password=[REDACTED]&Token=[REDACTED]&user%5Bpassword%5D=[REDACTED]&flag"
        );
        assert_eq!(r.query(""), None);
    }

    #[test]
    fn credential_headers_cannot_be_allow_listed() {
        let r = Redactor::default()
            .capture_header(http::header::AUTHORIZATION)
            .capture_header(http::header::COOKIE);
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer s3cret".parse().unwrap(),
        );
        h.insert(http::header::COOKIE, "sid=s3cret".parse().unwrap());
        h.insert(
            http::header::REFERER,
            "https://example.com/\u{1}"
                .parse()
                .unwrap_or(http::HeaderValue::from_static("https://example.com/")),
        );
        let got = r.headers(&h);
        assert!(
            got.iter()
                .all(|(k, v)| k == "referer" && !v.contains("s3cret")),
            "{got:?}"
        );
    }

    #[test]
    fn referer_query_secrets_are_replaced() {
        let r = Redactor::default();
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::REFERER,
            "https://shop.example/reset?token=T0P&lang=en#code=X"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            r.headers(&h),
            [(
                "referer".to_owned(),
                "https://shop.example/reset?token=[REDACTED]&lang=en".to_owned()
            )]
        );
    }

    #[test]
    fn captured_headers_come_in_allow_list_order_then_value_order() {
        let r = Redactor::default().capture_header(http::HeaderName::from_static("x-trace"));
        let mut h = http::HeaderMap::new();
        h.append("x-trace", "t1".parse().unwrap());
        h.append(http::header::ACCEPT, "*/*".parse().unwrap());
        h.append(http::header::CONTENT_TYPE, "text/plain".parse().unwrap());
        h.append("x-trace", "t2".parse().unwrap());
        h.append(http::header::REFERER, "https://a.example/".parse().unwrap());
        let names: Vec<(String, String)> = r.headers(&h);
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            names,
            [
                pair("referer", "https://a.example/"),
                pair("content-type", "text/plain"),
                pair("x-trace", "t1"),
                pair("x-trace", "t2"),
            ]
        );
    }

    #[test]
    fn a_listed_header_is_captured_alone_and_a_same_length_one_is_not() {
        let long = "x-".to_owned() + &"l".repeat(140);
        let long2 = "x-".to_owned() + &"m".repeat(150);
        let r = Redactor::default()
            .capture_header(http::HeaderName::from_static("x-trace"))
            .capture_header(http::HeaderName::from_bytes(long.as_bytes()).unwrap());
        let one = |name: &str| {
            let mut h = http::HeaderMap::new();
            h.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                "v".parse().unwrap(),
            );
            r.headers(&h)
        };
        let pair = |k: &str| vec![(k.to_owned(), "v".to_owned())];
        // Each listed name, as the request's only header.
        for name in ["referer", "content-type", "x-trace", long.as_str()] {
            assert_eq!(one(name), pair(name), "{}", &name[..name.len().min(20)]);
        }
        // Names of a listed length that are not listed (`x-trace` and `referer` are 7 long,
        // and every name of 127 bytes or more shares one bit).
        for name in ["x-other", "accept-", "content-typf", long2.as_str()] {
            assert_eq!(one(name), [], "{}", &name[..name.len().min(20)]);
        }
        assert_eq!(Redactor::default().headers(&http::HeaderMap::new()), []);
    }

    #[test]
    fn hashes_are_keyed_and_stable() {
        let a = Redactor::default().hash_key([7; 16]);
        let b = Redactor::default().hash_key([8; 16]);
        assert_eq!(a.hash_id("sess"), a.hash_id("sess"));
        assert_ne!(a.hash_id("sess"), b.hash_id("sess"));
        assert!(!a.hash_id("sess").contains("sess"));
    }

    #[test]
    fn secret_names_in_any_case_and_separator_style() {
        for n in [
            "client_secret",
            "new_password",
            "reset_token",
            "access-token",
            "x-api-key",
            "jwt",
            "private_token",
            "credential",
            "passcode",
            "session_id",
            "auth_token",
            "pin",
            "newPassword",
            "user[password]",
            "user.password",
            "X-Auth-Token",
            "apiKey",
            "otp_code",
            "mfa_code",
            "SAMLResponse",
            "SAMLart",
            "id_token",
            "refresh_token",
            "signature",
            "sig",
            "hash",
            "code",
            "PASSWORD",
            "Pass_Word",
            "passwd",
            "pwd",
            "JSESSIONID",
            "PHPSESSID",
            "sessionToken",
            "authorization",
            "oauth_verifier",
            "code_verifier",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Security-Token",
            "AWSAccessKeyId",
            "secretKey",
            "smsCode",
            "verification_code",
            "pin_code",
            "sid",
            "csrf",
            "_csrf",
            "authenticity_token",
            "api_key",
            "apikey",
            "key",
            "token",
            "otp",
            "totp",
            "2fa_code",
            "cvv",
            "ssn",
            "ticket",
            "nonce",
            "hmac",
            "sign",
        ] {
            assert!(is_secret_name(n), "{n} is secret");
        }
        for n in [
            "q",
            "page",
            "sort",
            "author",
            "authors",
            "authority",
            "shipping",
            "spinner",
            "keyword",
            "keywords",
            "zip_code",
            "countryCode",
            "status_code",
            "lang",
            "id",
            "user",
            "email",
            "redirect",
            "next",
            "monkey",
            "opinion",
            "limit",
            "offset",
            "utm_source",
            "category",
            "size",
            "color",
            "pinned",
            "passport",
        ] {
            assert!(!is_secret_name(n), "{n} is not secret");
        }
    }

    #[test]
    fn semicolons_separate_pairs_too() {
        let r = Redactor::default();
        assert_eq!(
            r.query("a=1;password=hunter2;b=2&pin=1234").unwrap(),
            "a=1;password=[REDACTED];b=2&pin=[REDACTED]"
        );
    }

    #[test]
    fn secret_shapes_are_masked_under_any_name() {
        let r = Redactor::default();
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        for v in [
            jwt,
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
            "5f4dcc3b5aa765d61d8327deb882cf99",
            "dGhpcyBpcyBhIHNlY3JldCB0b2tlbiBmb3IgdGVzdHM0Mg",
        ] {
            let q = format!("view={v}&q=shoes");
            let got = r.query(&q).unwrap();
            assert_eq!(got, "view=[REDACTED]&q=shoes", "{v}");
            assert!(!r.text(&format!("see /x/{v} and y")).contains(v), "{v}");
        }
        // Ordinary values are left alone.
        for v in [
            "550e8400-e29b-41d4-a716-446655440000",
            "running-shoes-for-trail-and-road-races",
            "/api/v1/Users/Profile/Settings/Notifications/Email",
            "12345",
        ] {
            assert_eq!(r.text(v), v);
        }
        let pem = "x=-----BEGIN RSA PRIVATE KEY-----MIIEpAIB-----END RSA PRIVATE KEY----- y";
        assert_eq!(r.text(pem), "x=[REDACTED] y");
    }

    #[test]
    fn token_segments_of_links_are_masked() {
        let r = Redactor::default();
        let cases = [
            ("/reset/Xk3pQ9zL2vB8", "/reset/[REDACTED]"),
            (
                "/password-reset/s3cr3t-1-abcdef",
                "/password-reset/[REDACTED]",
            ),
            (
                "/accounts/reset/MQ/5x2-a1b2c3d4e5f6/",
                "/accounts/reset/MQ/[REDACTED]/",
            ),
            ("/verify-email/839201", "/verify-email/[REDACTED]"),
            ("/invite/abcdefghijklmnopqr", "/invite/[REDACTED]"),
            ("/unsubscribe/u7/tok3n2024", "/unsubscribe/u7/[REDACTED]"),
            // A secret value runs to the end of the path: over-redaction rather than a leak.
            (
                "/shop;jsessionid=A1B2C3D4/cart",
                "/shop;jsessionid=[REDACTED]",
            ),
            ("/products/42", "/products/42"),
            ("/reset/password", "/reset/password"),
            ("/verify/email", "/verify/email"),
            ("/", "/"),
        ];
        for (path, want) in cases {
            assert_eq!(r.path(path), want, "{path}");
        }
        assert!(matches!(r.path("/products/shoes/42"), Cow::Borrowed(_)));
    }

    #[test]
    fn referer_paths_user_info_and_semicolon_pairs_are_masked() {
        let r = Redactor::default();
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::REFERER,
            "https://bob:hunter2@shop.example/reset/Q9z8Y7x6W5v4?lang=en;client_secret=abc"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            r.headers(&h),
            [(
                "referer".to_owned(),
                "https://[REDACTED]@shop.example/reset/[REDACTED]?lang=en;client_secret=[REDACTED]"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn nested_urls_in_values_are_masked() {
        let r = Redactor::default();
        let got = r
            .query("next=%2Fcallback%3Fcode%3DS3CR3T99%26x%3D1&q=a")
            .unwrap();
        assert!(!got.contains("S3CR3T99"), "{got}");
        assert!(got.ends_with("&q=a"), "{got}");
    }

    #[test]
    fn hit_samples_inside_secret_values_are_masked() {
        use crate::signature::{Field, Hit};
        let r = Redactor::default();
        let hit = |field, sample: &str| Hit {
            pack: "sqli".into(),
            field,
            sample: sample.into(),
            weak: false,
        };
        let q = "user=bob&password=%27+OR+1%3D1--+s3cr3tXYZ&next=1";
        // Inside the value, overlapping its end, containing it.
        for sample in [
            "' OR 1=1--",
            "OR 1=1-- s3cr3tXYZ&next",
            "password=' OR 1=1-- s3cr3tXYZ",
        ] {
            let got = r
                .hit_sample(&hit(Field::Query, sample), "/login", Some(q))
                .into_owned();
            assert!(
                !got.contains("s3cr3t") && !got.contains("OR 1"),
                "{sample} -> {got}"
            );
        }
        // A value of an ordinary parameter is evidence, kept.
        let got = r
            .hit_sample(
                &hit(Field::Query, "' OR 1=1--"),
                "/s",
                Some("q=%27+OR+1%3D1--"),
            )
            .into_owned();
        assert_eq!(got, "' OR 1=1--");
        // Path tokens and shapes.
        let got = r
            .hit_sample(
                &hit(Field::Path, "Zt9Kq2Lm8Pw4<script>"),
                "/reset/Zt9Kq2Lm8Pw4%3Cscript%3E",
                None,
            )
            .into_owned();
        assert!(!got.contains("Zt9Kq2"), "{got}");
        let got = r
            .hit_sample(
                &hit(Field::UserAgent, "sqlmap AKIAIOSFODNN7EXAMPLE"),
                "/",
                None,
            )
            .into_owned();
        assert_eq!(got, "sqlmap [REDACTED]");
    }

    #[test]
    fn ordinary_requests_stay_readable() {
        let r = Redactor::default();
        for path in [
            "/",
            "/products/iphone-15-pro-max-256gb",
            "/api/v1/orders/550e8400-e29b-41d4-a716-446655440000",
            "/static/js/main.3f9a2b1c.chunk.js",
            "/assets/application-2f1e7bd3c4a5968e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170.css",
            "/blog/2024/05/how-to-reset-your-password",
            "/help/reset-password/step-2",
            "/users/12345678/profile",
            "/login/callback",
            "/verify",
            "/search",
        ] {
            assert_eq!(r.path(path), path);
            assert!(matches!(r.path(path), Cow::Borrowed(_)), "{path}");
        }
        let q = "q=running+shoes&page=2&sort=price_asc&utm_source=newsletter\
                 &utm_campaign=spring-sale-2024&author=tolkien&keyword=ring&zip_code=12345";
        assert_eq!(r.query(q).unwrap(), q);
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::REFERER,
            "https://www.google.com/search?q=boots".parse().unwrap(),
        );
        assert_eq!(r.headers(&h)[0].1, "https://www.google.com/search?q=boots");
    }

    #[test]
    fn the_fast_path_scan_agrees_with_the_general_one() {
        let r = Redactor::default();
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let paths = [
            "/",
            "/products/42",
            "/reset/Xk3pQ9zL2vB8",
            "/accounts/reset/MQ/5x2-a1b2c3d4e5f6/",
            "/x;y/reset/abcdef123456",
            "/api/v1/orders/550e8400-e29b-41d4-a716-446655440000",
            "/files/AKIAIOSFODNN7EXAMPLE/x",
            "/files/5f4dcc3b5aa765d61d8327deb882cf99.txt",
            "/static/main.5f4dcc3b5aa765d61d8327deb882cf99.js",
            "/en-gb/category/mens-running-shoes/page/3",
            "/verify-email/839201",
            "/a(b)/token/abcdefgh1",
        ];
        for p in paths
            .iter()
            .copied()
            .chain([format!("/auth/{jwt}/x").as_str()])
        {
            assert_eq!(r.path(p), r.text(p), "{p}");
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_control("ok"), "ok");
        assert_eq!(escape_control("a\r\nb\u{2028}"), "a\\r\\nb\\u{2028}");
    }
}
