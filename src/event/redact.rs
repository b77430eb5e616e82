//! Redaction: what may leave the process, and in what form.

use std::fmt;
use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher13};

/// The placeholder written in place of a secret value.
pub const REDACTED: &str = "[REDACTED]";

/// Decides what of a request may be recorded.
///
/// - Headers are captured from an allow-list only; `Authorization`, `Proxy-Authorization`,
///   `Cookie` and `Set-Cookie` are refused even if someone adds them to it.
/// - Values of configured query keys (`password`, `token`, … by default) become `[REDACTED]`.
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

    /// The query string with secret values replaced. Returns `None` for an empty query.
    pub fn query(&self, query: &str) -> Option<String> {
        if query.is_empty() {
            return None;
        }
        Some(escape_control(&self.query_unescaped(query)))
    }

    /// A URL-like value (a `Referer`) with its fragment dropped and its query redacted: a
    /// password-reset link must not reach a sink through the next page's `Referer`.
    fn url(&self, value: &str) -> String {
        let value = value.split('#').next().unwrap_or_default();
        match value.split_once('?') {
            Some((base, q)) if !q.is_empty() => format!("{base}?{}", self.query_unescaped(q)),
            _ => value.to_owned(),
        }
    }

    fn query_unescaped(&self, query: &str) -> String {
        let mut out = String::with_capacity(query.len());
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let (k, has_value) = match pair.find('=') {
                Some(eq) => (&pair[..eq], true),
                None => (pair, false),
            };
            if has_value && self.is_secret_key(k) {
                out.push_str(k);
                out.push('=');
                out.push_str(REDACTED);
            } else {
                out.push_str(pair);
            }
        }
        out
    }

    fn is_secret_key(&self, raw: &str) -> bool {
        let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        let k = decoded.trim().to_ascii_lowercase();
        // `user[password]` and `user.password` forms count too.
        let leaf = k
            .rsplit(['[', '.'])
            .next()
            .unwrap_or(&k)
            .trim_end_matches(']');
        self.query_keys.iter().any(|s| s == &k || s == leaf)
    }
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
    fn control_characters_are_escaped() {
        assert_eq!(escape_control("ok"), "ok");
        assert_eq!(escape_control("a\r\nb\u{2028}"), "a\\r\\nb\\u{2028}");
    }
}
