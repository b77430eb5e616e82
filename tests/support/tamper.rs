//! Systematic evasions of a base payload, modelled on sqlmap's tamper scripts (own code).
//!
//! A payload is held as *text*: the bytes the application sees once the client's own encoding
//! is undone (it need not be UTF-8: `%c0%ae` stays two raw bytes). A [`Tamper`] turns it into
//! either new text (which the harness then escapes minimally, as attack tools do) or directly
//! into the *wire* form of a query value or path (for the encoding tricks).
//!
//! Everything is deterministic: random choices come from a generator seeded by the payload.

use std::fmt::Write as _;

/// The attack classes of the evasion corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Sqli,
    Xss,
    Traversal,
    Cmdi,
    Ssti,
    Log4shell,
}

impl Class {
    pub const ALL: [Class; 6] = [
        Class::Sqli,
        Class::Xss,
        Class::Traversal,
        Class::Cmdi,
        Class::Ssti,
        Class::Log4shell,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Sqli => "sqli",
            Class::Xss => "xss",
            Class::Traversal => "traversal",
            Class::Cmdi => "cmdi",
            Class::Ssti => "ssti",
            Class::Log4shell => "log4shell",
        }
    }

    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The signature packs whose hit counts as detecting this class.
    pub fn packs(self) -> &'static [&'static str] {
        match self {
            Class::Traversal => &["traversal", "sensitive_file"],
            c => match c {
                Class::Sqli => &["sqli"],
                Class::Xss => &["xss"],
                Class::Cmdi => &["cmdi"],
                Class::Ssti => &["ssti"],
                _ => &["log4shell"],
            },
        }
    }
}

/// What a tamper produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    /// New text, to be escaped minimally ([`escape`]); also usable as a raw header value.
    Text(Vec<u8>),
    /// The wire form itself (a query value or a path segment run).
    Wire(String),
    /// A whole query string of several parameters (HTTP parameter pollution).
    Query(String),
}

/// One transformation.
pub struct Tamper {
    pub name: &'static str,
    pub classes: &'static [Class],
    /// Whether it makes sense in a path (form encoding and `+` for space do not).
    pub in_path: bool,
    pub apply: fn(&[u8], &mut Rng) -> Option<Out>,
}

/// A small deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn seeded(text: &[u8], salt: &str) -> Self {
        // FNV-1a over the payload and the tamper name.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.iter().chain(salt.as_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Decodes one layer of a wire-form corpus line: `%XX` and `+` (as a space). Malformed escapes
/// stay literal.
pub fn decode_line(line: &str) -> Vec<u8> {
    let b = line.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn pct(out: &mut String, b: u8) {
    let _ = write!(out, "%{b:02X}");
}

/// Minimal escaping, as attack tools send a value: only what cannot stand literally in a URL
/// query or path (or would end the value) is encoded.
pub fn escape(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for &b in text {
        match b {
            b' ' | b'"' | b'#' | b'%' | b'&' | b'+' | b'<' | b'>' | b'?' | 0..=0x1f | 0x7f.. => {
                pct(&mut out, b);
            }
            _ => out.push(b as char),
        }
    }
    out
}

/// A corpus line as an attack tool sends it: its escapes (`%XX`, `%uXXXX`, `+`) kept, and only
/// what cannot stand literally in a URL encoded.
pub fn escape_line(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(b.len() * 2);
    for (i, &c) in b.iter().enumerate() {
        let escape_kept = c == b'%'
            && (b
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
                || (matches!(b.get(i + 1), Some(b'u' | b'U'))
                    && b.get(i + 2..i + 6)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))));
        if escape_kept || c == b'+' {
            out.push(c as char);
        } else {
            out.push_str(&escape(&[c]));
        }
    }
    out
}

/// Form encoding, as a browser submits a search box: everything but alphanumerics and `-_.*`
/// encoded, spaces as `+`.
pub fn form(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for &b in text {
        match b {
            b' ' => out.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char);
            }
            _ => pct(&mut out, b),
        }
    }
    out
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Replaces every space (outside nothing: payloads are short) with `with`, in wire form.
fn space_to(text: &[u8], with: &str) -> Option<Out> {
    if !text.contains(&b' ') {
        return None;
    }
    Some(Out::Wire(escape(text).replace("%20", with)))
}

fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn changed(before: &[u8], after: Vec<u8>) -> Option<Out> {
    (after != before).then_some(Out::Text(after))
}

const SQL_KEYWORDS: &[&str] = &[
    "UNION", "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "SLEEP", "CASE", "WHEN", "THEN",
    "ELSE", "END", "ORDER", "GROUP", "BY", "LIMIT", "INSERT", "INTO", "DROP", "TABLE", "DELETE",
    "UPDATE", "EXEC", "WAITFOR", "DELAY", "HAVING", "LIKE", "NULL", "ALL",
];

/// The tamper catalogue.
pub fn tampers() -> Vec<Tamper> {
    use Class::*;
    const ALL: &[Class] = &[Sqli, Xss, Traversal, Cmdi, Ssti, Log4shell];
    vec![
        Tamper {
            name: "plain",
            classes: ALL,
            in_path: true,
            apply: |t, _| Some(Out::Text(t.to_vec())),
        },
        Tamper {
            name: "form",
            classes: ALL,
            in_path: false,
            apply: |t, _| Some(Out::Wire(form(t))),
        },
        Tamper {
            name: "urlencode-all",
            classes: ALL,
            in_path: true,
            apply: |t, _| {
                let mut s = String::new();
                t.iter().for_each(|&b| pct(&mut s, b));
                Some(Out::Wire(s))
            },
        },
        Tamper {
            name: "double-encode",
            classes: ALL,
            in_path: true,
            apply: |t, _| {
                // `'` -> %2527: the special characters encoded twice.
                if t.iter().all(|&b| is_alnum(b)) {
                    return None;
                }
                let mut s = String::new();
                for &b in t {
                    if is_alnum(b) {
                        s.push(b as char);
                    } else {
                        s.push_str("%25");
                        let _ = write!(s, "{b:02X}");
                    }
                }
                Some(Out::Wire(s))
            },
        },
        Tamper {
            name: "random-case",
            classes: &[Sqli, Xss, Log4shell],
            in_path: true,
            apply: |t, rng| {
                let out: Vec<u8> = t
                    .iter()
                    .map(|&b| {
                        if rng.next() & 1 == 1 {
                            b.to_ascii_uppercase()
                        } else {
                            b.to_ascii_lowercase()
                        }
                    })
                    .collect();
                changed(t, out)
            },
        },
        Tamper {
            name: "space2comment",
            classes: &[Sqli],
            in_path: true,
            apply: |t, _| space_to(t, "/**/"),
        },
        Tamper {
            name: "space2tab",
            classes: &[Sqli, Xss, Cmdi],
            in_path: true,
            apply: |t, _| space_to(t, "%09"),
        },
        Tamper {
            name: "space2lf",
            classes: &[Sqli, Xss],
            in_path: true,
            apply: |t, _| space_to(t, "%0A"),
        },
        Tamper {
            name: "space2ff",
            classes: &[Sqli, Xss],
            in_path: true,
            apply: |t, _| space_to(t, "%0C"),
        },
        Tamper {
            name: "space2cr",
            classes: &[Sqli],
            in_path: true,
            apply: |t, _| space_to(t, "%0D"),
        },
        Tamper {
            name: "space2nbsp",
            classes: &[Sqli],
            in_path: true,
            apply: |t, _| space_to(t, "%A0"),
        },
        Tamper {
            name: "space2plus",
            classes: &[Sqli],
            in_path: false,
            apply: |t, _| space_to(t, "+"),
        },
        Tamper {
            name: "space2slash",
            classes: &[Xss],
            in_path: true,
            apply: |t, _| {
                // Inside a tag, `/` separates attributes as a space does.
                if !t.starts_with(b"<") && !t.windows(2).any(|w| w == b"><") {
                    return None;
                }
                space_to(t, "/")
            },
        },
        Tamper {
            name: "versioned-keywords",
            classes: &[Sqli],
            in_path: true,
            apply: |t, _| {
                // UNION -> /*!50000UNION*/, for the keywords as whole words.
                let mut out = Vec::with_capacity(t.len() * 2);
                let mut i = 0;
                while i < t.len() {
                    let word_start = i == 0 || !t[i - 1].is_ascii_alphanumeric();
                    let kw = word_start
                        .then(|| {
                            SQL_KEYWORDS.iter().find(|k| {
                                t.len() >= i + k.len()
                                    && t[i..i + k.len()].eq_ignore_ascii_case(k.as_bytes())
                                    && t.get(i + k.len())
                                        .is_none_or(|b| !b.is_ascii_alphanumeric())
                            })
                        })
                        .flatten();
                    if let Some(k) = kw {
                        out.extend_from_slice(b"/*!50000");
                        out.extend_from_slice(&t[i..i + k.len()]);
                        out.extend_from_slice(b"*/");
                        i += k.len();
                    } else {
                        out.push(t[i]);
                        i += 1;
                    }
                }
                changed(t, out)
            },
        },
        Tamper {
            name: "hpp-split",
            classes: &[Sqli],
            in_path: false,
            apply: |t, _| {
                // ?id=1/*&id=*/UNION/*&id=*/SELECT: ASP.NET joins repeated parameters with
                // commas, and the comments swallow them.
                let words: Vec<&[u8]> = t.split(|&b| b == b' ').filter(|w| !w.is_empty()).collect();
                if words.len() < 2 {
                    return None;
                }
                let parts: Vec<String> = words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let mut v = String::new();
                        if i > 0 {
                            v.push_str("*/");
                        }
                        v.push_str(&escape(w));
                        if i + 1 < words.len() {
                            v.push_str("/*");
                        }
                        format!("q={v}")
                    })
                    .collect();
                Some(Out::Query(parts.join("&")))
            },
        },
        Tamper {
            name: "fullwidth",
            classes: &[Sqli, Xss, Traversal],
            in_path: true,
            apply: |t, _| {
                // ASCII punctuation -> U+FF01..U+FF5E (normalised back by NFKC folding).
                let mut out = Vec::with_capacity(t.len() * 3);
                for &b in t {
                    if b.is_ascii_punctuation() {
                        let c = char::from_u32(0xFF01 + u32::from(b - 0x21)).unwrap();
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    } else {
                        out.push(b);
                    }
                }
                changed(t, out)
            },
        },
        Tamper {
            name: "overlong-utf8",
            classes: &[Sqli, Xss, Traversal],
            in_path: true,
            apply: |t, _| {
                // Punctuation as two-byte overlong UTF-8: `'` -> %C0%A7, `/` -> %C0%AF.
                if t.iter().all(|&b| !b.is_ascii_punctuation()) {
                    return None;
                }
                let mut s = String::new();
                for &b in t {
                    if b.is_ascii_punctuation() {
                        pct(&mut s, 0xC0 | (b >> 6));
                        pct(&mut s, 0x80 | (b & 0x3F));
                    } else if is_alnum(b) {
                        s.push(b as char);
                    } else {
                        pct(&mut s, b);
                    }
                }
                Some(Out::Wire(s))
            },
        },
        Tamper {
            name: "unicode-%u",
            classes: &[Sqli, Xss, Traversal],
            in_path: true,
            apply: |t, _| {
                // IIS-style %u0027.
                if t.iter().all(|&b| !b.is_ascii_punctuation()) {
                    return None;
                }
                let mut s = String::new();
                for &b in t {
                    if b.is_ascii_punctuation() {
                        let _ = write!(s, "%u00{b:02X}");
                    } else if is_alnum(b) {
                        s.push(b as char);
                    } else {
                        pct(&mut s, b);
                    }
                }
                Some(Out::Wire(s))
            },
        },
        Tamper {
            name: "entity-hex",
            classes: &[Xss],
            in_path: true,
            apply: |t, _| entity(t, b"&#x61;", b"&#x28;"),
        },
        Tamper {
            name: "entity-dec",
            classes: &[Xss],
            in_path: true,
            apply: |t, _| entity(t, b"&#97;", b"&#40;"),
        },
        Tamper {
            name: "entity-named",
            classes: &[Xss],
            in_path: true,
            apply: |t, _| {
                // javascript&colon;  and  alert&lpar;1&rpar; inside an attribute value.
                let mut out = t.to_vec();
                if let Some(i) = find_ci(&out, b"javascript:") {
                    out.splice(i + 10..i + 11, b"&colon;".iter().copied());
                } else if handler_value(&out).is_some() {
                    out = replace_all(&out, b"(", b"&lpar;");
                    out = replace_all(&out, b")", b"&rpar;");
                } else {
                    return None;
                }
                changed(t, out)
            },
        },
        Tamper {
            name: "newer-handler",
            classes: &[Xss],
            in_path: true,
            apply: |t, rng| {
                const NEW: &[&[u8]] = &[
                    b"onscrollend",
                    b"onbeforetoggle",
                    b"onpointerrawupdate",
                    b"oncontentvisibilityautostatechange",
                    b"onbeforeinput",
                    b"onscrollsnapchange",
                    b"onpagereveal",
                    b"onsecuritypolicyviolation",
                ];
                let (start, end) = handler_name(t)?;
                let mut out = t[..start].to_vec();
                out.extend_from_slice(NEW[rng.below(NEW.len())]);
                out.extend_from_slice(&t[end..]);
                changed(t, out)
            },
        },
        Tamper {
            name: "dotdot-nul",
            classes: &[Traversal],
            in_path: true,
            apply: |t, _| changed(t, replace_all(t, b"../", b"..\0/")),
        },
        Tamper {
            name: "dotdot-semicolon",
            classes: &[Traversal],
            in_path: true,
            apply: |t, _| changed(t, replace_all(t, b"../", b"..;/")),
        },
        Tamper {
            name: "dotdot-strip",
            classes: &[Traversal],
            in_path: true,
            apply: |t, _| changed(t, replace_all(t, b"../", b"....//")),
        },
        Tamper {
            name: "double-slash",
            classes: &[Traversal],
            in_path: true,
            apply: |t, _| changed(t, replace_all(t, b"/", b"//")),
        },
        Tamper {
            name: "backslash",
            classes: &[Traversal],
            in_path: true,
            apply: |t, _| changed(t, replace_all(t, b"/", b"\\")),
        },
        Tamper {
            name: "dotdot-encoded",
            classes: &[Traversal],
            in_path: true,
            apply: |t, _| {
                if !t.windows(3).any(|w| w == b"../") {
                    return None;
                }
                Some(Out::Wire(escape(t).replace("../", "%2e%2e%2f")))
            },
        },
        Tamper {
            name: "quote-split",
            classes: &[Cmdi],
            in_path: true,
            apply: |t, _| split_command(t, |w| alternate(w, b"'")),
        },
        Tamper {
            name: "dquote-split",
            classes: &[Cmdi],
            in_path: true,
            apply: |t, _| split_command(t, |w| alternate(w, b"\"")),
        },
        Tamper {
            name: "backslash-split",
            classes: &[Cmdi],
            in_path: true,
            apply: |t, _| {
                split_command(t, |w| {
                    let mut out = Vec::new();
                    for (i, &c) in w.iter().enumerate() {
                        if i % 2 == 1 {
                            out.push(b'\\');
                        }
                        out.push(c);
                    }
                    out
                })
            },
        },
        Tamper {
            name: "dollar-at",
            classes: &[Cmdi],
            in_path: true,
            apply: |t, _| {
                split_command(t, |w| {
                    let mid = w.len() / 2;
                    [&w[..mid], b"$@", &w[mid..]].concat()
                })
            },
        },
        Tamper {
            name: "ifs",
            classes: &[Cmdi],
            in_path: true,
            apply: |t, _| {
                if !t.trim_ascii().contains(&b' ') {
                    return None;
                }
                changed(t, replace_all(t.trim_ascii_end(), b" ", b"${IFS}"))
            },
        },
        Tamper {
            name: "sep-newline",
            classes: &[Cmdi],
            in_path: true,
            apply: |t, _| swap_separator(t, b"\n"),
        },
        Tamper {
            name: "sep-pipe",
            classes: &[Cmdi],
            in_path: true,
            apply: |t, _| swap_separator(t, b"|"),
        },
        Tamper {
            name: "sep-and",
            classes: &[Cmdi],
            in_path: true,
            apply: |t, _| swap_separator(t, b"&&"),
        },
        Tamper {
            name: "sep-or",
            classes: &[Cmdi],
            in_path: true,
            apply: |t, _| swap_separator(t, b"||"),
        },
        Tamper {
            name: "sep-subst",
            classes: &[Cmdi],
            in_path: true,
            apply: |t, _| {
                let (_, rest) = split_separator(t)?;
                let rest = rest.strip_suffix(b";").unwrap_or(rest);
                changed(t, [b"$(", rest, b")"].concat())
            },
        },
        Tamper {
            name: "sep-backtick",
            classes: &[Cmdi],
            in_path: true,
            apply: |t, _| {
                let (_, rest) = split_separator(t)?;
                let rest = rest.strip_suffix(b";").unwrap_or(rest);
                changed(t, [b"`", rest, b"`"].concat())
            },
        },
        Tamper {
            name: "template-spaces",
            classes: &[Ssti],
            in_path: true,
            apply: |t, _| {
                // `{{7*7}}` -> `{{ 7*7 }}`; `${7*7}` -> `${ 7*7}` (doT's `{{=` is left alone).
                if find_ci(t, b"{{=").is_some() {
                    return None;
                }
                let out = if find_ci(t, b"{{").is_some() {
                    replace_all(&replace_all(t, b"{{", b"{{ "), b"}}", b" }}")
                } else {
                    replace_all(t, b"${", b"${ ")
                };
                changed(t, out)
            },
        },
        Tamper {
            name: "template-newline",
            classes: &[Ssti],
            in_path: true,
            apply: |t, _| {
                let out = replace_all(&replace_all(t, b"{{", b"{{\n"), b"}}", b"\n}}");
                changed(t, out)
            },
        },
        Tamper {
            name: "lookup-lower",
            classes: &[Log4shell],
            in_path: true,
            apply: |t, _| jndi_letters(t, |c| format!("${{lower:{c}}}")),
        },
        Tamper {
            name: "lookup-default",
            classes: &[Log4shell],
            in_path: true,
            apply: |t, _| jndi_letters(t, |c| format!("${{::-{c}}}")),
        },
        Tamper {
            name: "lookup-env-default",
            classes: &[Log4shell],
            in_path: true,
            apply: |t, _| jndi_letters(t, |c| format!("${{env:NaN:-{c}}}")),
        },
    ]
}

/// `javascript:` -> `jav<a>script:`, or the first letter of an event handler's value.
fn entity(t: &[u8], a: &[u8], paren: &[u8]) -> Option<Out> {
    let mut out = t.to_vec();
    if let Some(i) = find_ci(&out, b"javascript:") {
        out.splice(i + 3..i + 4, a.iter().copied());
    } else if let Some(v) = handler_value(&out) {
        // onerror=alert(1) -> onerror=alert&#x28;1)
        let p = out[v..].iter().position(|&b| b == b'(')?;
        out.splice(v + p..v + p + 1, paren.iter().copied());
    } else {
        return None;
    }
    changed(t, out)
}

/// The span of the first `on<event>` attribute name inside a tag.
fn handler_name(t: &[u8]) -> Option<(usize, usize)> {
    let lower = t.to_ascii_lowercase();
    let mut from = 0;
    while let Some(p) = lower[from..].windows(2).position(|w| w == b"on") {
        let start = from + p;
        let before_ok =
            start > 0 && matches!(lower[start - 1], b' ' | b'/' | b'\t' | b'\n' | b'"' | b'\'');
        let mut end = start + 2;
        while end < lower.len() && lower[end].is_ascii_alphabetic() {
            end += 1;
        }
        let mut eq = end;
        while eq < lower.len() && lower[eq].is_ascii_whitespace() {
            eq += 1;
        }
        if before_ok && end > start + 2 && lower.get(eq) == Some(&b'=') {
            return Some((start, end));
        }
        from = start + 2;
    }
    None
}

/// The offset of an event handler's value.
fn handler_value(t: &[u8]) -> Option<usize> {
    let (_, end) = handler_name(t)?;
    let eq = end + t[end..].iter().position(|&b| b == b'=')?;
    Some(eq + 1)
}

const SEPARATORS: &[&[u8]] = &[b"&&", b"||", b";", b"|", b"\n", b"&"];

/// A leading shell separator (after optional junk like `127.0.0.1 `) and the rest.
fn split_separator(t: &[u8]) -> Option<(usize, &[u8])> {
    for i in 0..t.len() {
        for sep in SEPARATORS {
            if t[i..].starts_with(sep) {
                let rest = t[i + sep.len()..].trim_ascii_start();
                if rest
                    .first()
                    .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'/')
                {
                    return Some((i, rest));
                }
            }
        }
        if matches!(t[i], b'`' | b'$') {
            return None;
        }
    }
    None
}

fn swap_separator(t: &[u8], sep: &[u8]) -> Option<Out> {
    let (at, rest) = split_separator(t)?;
    changed(t, [&t[..at], sep, rest].concat())
}

/// Applies `f` to the first command word after a separator (or at the start).
fn split_command(t: &[u8], f: impl Fn(&[u8]) -> Vec<u8>) -> Option<Out> {
    let (at, rest) = match split_separator(t) {
        Some(x) => x,
        None => {
            // `$(id)` and `` `id` ``: the word inside.
            let i = t.iter().position(|&b| b.is_ascii_alphabetic())?;
            (i, &t[i..])
        }
    };
    let start = at + (t[at..].len() - rest.len());
    let len = rest
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    if len < 2 {
        return None;
    }
    let word = &t[start..start + len];
    changed(t, [&t[..start], &f(word)[..], &t[start + len..]].concat())
}

/// `whoami` -> `w'h'o'a'mi`: every other letter quoted, always an even number of quotes.
fn alternate(w: &[u8], q: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &c) in w.iter().enumerate() {
        if i % 2 == 1 && i + 1 < w.len() {
            out.extend_from_slice(q);
            out.push(c);
            out.extend_from_slice(q);
        } else {
            out.push(c);
        }
    }
    out
}

/// `${jndi:` -> `${${lower:j}${lower:n}${lower:d}${lower:i}:`.
fn jndi_letters(t: &[u8], f: impl Fn(char) -> String) -> Option<Out> {
    let i = find_ci(t, b"jndi:")?;
    let mut rep = String::new();
    for &c in &t[i..i + 4] {
        rep.push_str(&f(c as char));
    }
    let mut out = t[..i].to_vec();
    out.extend_from_slice(rep.as_bytes());
    out.extend_from_slice(&t[i + 4..]);
    changed(t, out)
}
