//! Bounded canonicalisation of the path and query before matching.
//!
//! Attackers hide payloads behind encodings that the application (or a framework, a browser,
//! a shell or a database below it) will undo later. The inspector therefore looks at the text
//! as those will see it. Every step is a single linear pass, the number of passes is fixed,
//! and nothing here can panic on any input.
//!
//! The main view ([`canonical_with`], then [`main_view`]):
//!
//! * percent escapes (and IIS-style `%uXXXX`) decoded repeatedly, up to [`MAX_DEPTH`] layers
//!   (`%2527` → `%27` → `'`), with `+` as a space in the first layer of a query;
//! * HTML character references, numeric (`&#x61;`, `&#0000097`) and a few named ones that
//!   matter to markup and URLs (`&colon;`, `&lt;`, `&Tab;`...);
//! * full-width forms (`＜`, `＇`), overlong UTF-8 forms of ASCII (`%c0%ae`) and the non-ASCII
//!   spaces (`%a0`, U+00A0, U+2000–U+200A, U+3000...) folded to ASCII;
//! * backslashes turned into `/`, and in the path repeated slashes collapsed (`//pma/`).
//!
//! Extra views, built only when their trigger bytes are present, and matched only by the
//! packs they concern:
//!
//! * [`sql_view`]: SQL comments removed (`/**/`, `#…\n`, `--…\n`), MySQL version comments
//!   opened (`/*!50000UNION*/` → ` UNION `), NUL bytes dropped;
//! * [`shell_view`]: shell quote-splitting and escapes removed (`w'h'o"am"i`, `w\hoami`,
//!   `who$@ami`, `w^hoami`);
//! * [`resolved_view`]: `.` and `..` segments resolved, as a server resolves them, so that a
//!   `../` which stays inside the site disappears and one that climbs above the root stays at
//!   the front (`/static/../../etc` → `/../etc`);
//! * [`joined_parameters`]: the values of a repeated query parameter joined with `,`, as
//!   ASP.NET does (HTTP parameter pollution).

use std::borrow::Cow;

/// Byte classes present in a text, from [`flags`]: each view is built only when its trigger
/// bytes are present, so a plain request costs one table lookup per byte.
pub(crate) mod flag {
    pub const PERCENT: u16 = 1;
    pub const PLUS: u16 = 1 << 1;
    pub const HIGH: u16 = 1 << 2;
    pub const AMP: u16 = 1 << 3;
    pub const BACKSLASH: u16 = 1 << 4;
    pub const SLASH: u16 = 1 << 5;
    pub const STAR: u16 = 1 << 6;
    pub const QUOTE: u16 = 1 << 7;
    pub const DOLLAR: u16 = 1 << 8;
    pub const NEWLINE: u16 = 1 << 9;
    pub const COMMENT: u16 = 1 << 10;
    pub const NUL: u16 = 1 << 11;
    pub const DOT: u16 = 1 << 12;
}

const FLAG_TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0x80;
    while i < 256 {
        t[i] = flag::HIGH;
        i += 1;
    }
    t[b'%' as usize] = flag::PERCENT;
    t[b'+' as usize] = flag::PLUS;
    t[b'&' as usize] = flag::AMP;
    t[b'\\' as usize] = flag::BACKSLASH;
    t[b'/' as usize] = flag::SLASH;
    t[b'*' as usize] = flag::STAR;
    t[b'\'' as usize] = flag::QUOTE;
    t[b'"' as usize] = flag::QUOTE;
    t[b'^' as usize] = flag::QUOTE;
    t[b'$' as usize] = flag::DOLLAR;
    t[b'\n' as usize] = flag::NEWLINE;
    t[b'#' as usize] = flag::COMMENT;
    t[b'-' as usize] = flag::COMMENT;
    t[0] = flag::NUL;
    t[b'.' as usize] = flag::DOT;
    t
};

/// The [`flag`]s of the byte classes present in `text`.
pub(crate) fn flags(text: &[u8]) -> u16 {
    text.iter()
        .fold(0, |acc, &b| acc | FLAG_TABLE[usize::from(b)])
}

/// Percent-decoding layers at most: `%252527` is decoded to `%27`, not further.
pub(crate) const MAX_DEPTH: usize = 3;

/// Canonicalises a raw, percent-encoded path or query: percent layers, HTML entities, and
/// full-width/overlong/space folding (see the module docs). Backslashes and slashes are left
/// as they are ([`main_view`] handles those).
///
/// `plus_is_space` is true for the query (form encoding). Borrows when there is nothing to
/// decode, which is the case for nearly all benign requests.
pub(crate) fn canonical(raw: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    canonical_with(raw, flags(raw), plus_is_space)
}

/// [`canonical`] with the [`flags`] of `raw` already computed.
pub(crate) fn canonical_with(raw: &[u8], flags: u16, plus_is_space: bool) -> Cow<'_, [u8]> {
    let plus = if plus_is_space { flag::PLUS } else { 0 };
    let needs_work = flags & (flag::PERCENT | flag::HIGH | plus) != 0
        || (flags & flag::AMP != 0 && has_entity(raw));
    if !needs_work {
        return Cow::Borrowed(raw);
    }
    let mut cur = Vec::with_capacity(raw.len());
    decode_layer(raw, plus_is_space, &mut cur);
    for _ in 1..MAX_DEPTH {
        if !has_escape(&cur) {
            break;
        }
        let mut next = Vec::with_capacity(cur.len());
        decode_layer(&cur, false, &mut next);
        cur = next;
    }
    if has_entity(&cur) {
        cur = decode_entities(&cur);
    }
    fold(&mut cur);
    Cow::Owned(cur)
}

/// The main view: [`canonical`] with backslashes turned into `/` and, for the path, repeated
/// slashes collapsed into one.
pub(crate) fn main_view(canon: Cow<'_, [u8]>, is_path: bool) -> Cow<'_, [u8]> {
    let backslash = canon.contains(&b'\\');
    let doubled = is_path && canon.windows(2).any(|w| w == b"//");
    if !backslash && !doubled {
        return canon;
    }
    let mut out = Vec::with_capacity(canon.len());
    for &b in canon.iter() {
        let b = if b == b'\\' { b'/' } else { b };
        if is_path && b == b'/' && out.last() == Some(&b'/') {
            continue;
        }
        out.push(b);
    }
    Cow::Owned(out)
}

/// Normalises a raw path or query into the main view (see [`canonical`] and [`main_view`]).
#[cfg(test)]
pub(crate) fn normalise(raw: &str, plus_is_space: bool) -> Cow<'_, [u8]> {
    main_view(canonical(raw.as_bytes(), plus_is_space), !plus_is_space)
}

/// The value of one hexadecimal digit.
pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte written as two hexadecimal digits at `bytes[at..at + 2]`.
pub(crate) fn hex_pair(bytes: &[u8], at: usize) -> Option<u8> {
    let hi = hex(*bytes.get(at)?)?;
    let lo = hex(*bytes.get(at + 1)?)?;
    Some(hi << 4 | lo)
}

/// The character written as `%uXXXX` at `bytes[at..at + 6]`.
fn percent_u(bytes: &[u8], at: usize) -> Option<char> {
    if bytes.get(at) != Some(&b'%') || !matches!(bytes.get(at + 1), Some(b'u' | b'U')) {
        return None;
    }
    let hi = hex_pair(bytes, at + 2)?;
    let lo = hex_pair(bytes, at + 4)?;
    char::from_u32(u32::from(hi) << 8 | u32::from(lo))
}

/// Whether one more percent layer would change anything.
fn has_escape(bytes: &[u8]) -> bool {
    (0..bytes.len()).any(|i| {
        bytes[i] == b'%' && (hex_pair(bytes, i + 1).is_some() || percent_u(bytes, i).is_some())
    })
}

/// One full layer: `%XX`, `%uXXXX` and, for queries, `+`. Malformed escapes stay as they are.
fn decode_layer(input: &[u8], plus_is_space: bool, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            if let Some(v) = hex_pair(input, i + 1) {
                out.push(v);
                i += 3;
                continue;
            }
            if let Some(c) = percent_u(input, i) {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += 6;
                continue;
            }
            out.push(b);
        } else if plus_is_space && b == b'+' {
            out.push(b' ');
        } else {
            out.push(b);
        }
        i += 1;
    }
}

/// Named character references that matter to markup, URLs and scripts. Matched ASCII
/// case-insensitively, and only with their `;`.
const ENTITIES: &[(&[u8], u8)] = &[
    (b"lt", b'<'),
    (b"gt", b'>'),
    (b"quot", b'"'),
    (b"apos", b'\''),
    (b"amp", b'&'),
    (b"colon", b':'),
    (b"semi", b';'),
    (b"sol", b'/'),
    (b"bsol", b'\\'),
    (b"lpar", b'('),
    (b"rpar", b')'),
    (b"lsqb", b'['),
    (b"rsqb", b']'),
    (b"lbrace", b'{'),
    (b"rbrace", b'}'),
    (b"lcub", b'{'),
    (b"rcub", b'}'),
    (b"equals", b'='),
    (b"period", b'.'),
    (b"comma", b','),
    (b"excl", b'!'),
    (b"num", b'#'),
    (b"dollar", b'$'),
    (b"percnt", b'%'),
    (b"grave", b'`'),
    (b"plus", b'+'),
    (b"ast", b'*'),
    (b"verbar", b'|'),
    (b"vert", b'|'),
    (b"quest", b'?'),
    (b"tab", b'\t'),
    (b"newline", b'\n'),
    (b"nbsp", b' '),
];

/// A character reference at `bytes[at..]`: the bytes it stands for (UTF-8) and its length.
fn entity_at(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    if bytes.get(at) != Some(&b'&') {
        return None;
    }
    let rest = &bytes[at + 1..];
    if rest.first() == Some(&b'#') {
        let (radix, start) = match rest.get(1) {
            Some(b'x' | b'X') => (16, 2),
            _ => (10, 1),
        };
        let mut i = start;
        while rest.get(i) == Some(&b'0') {
            i += 1;
        }
        let digits_start = i;
        let mut value: u32 = 0;
        while let Some(d) = rest.get(i).and_then(|&b| char::from(b).to_digit(radix)) {
            if i - digits_start >= 7 {
                return None;
            }
            value = value * radix + d;
            i += 1;
        }
        if i == start {
            return None;
        }
        if rest.get(i) == Some(&b';') {
            i += 1;
        }
        let c = char::from_u32(value).filter(|&c| c != '\0')?;
        return Some((c, i + 1));
    }
    let name_len = rest
        .iter()
        .take(8)
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    if name_len < 2 || rest.get(name_len) != Some(&b';') {
        return None;
    }
    let name = &rest[..name_len];
    ENTITIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, v)| (char::from(v), name_len + 2))
}

fn has_entity(bytes: &[u8]) -> bool {
    (0..bytes.len()).any(|i| bytes[i] == b'&' && entity_at(bytes, i).is_some())
}

/// Decodes character references, one layer (as a browser does).
fn decode_entities(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if let Some((c, len)) = entity_at(input, i) {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            i += len;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

/// A UTF-8 sequence at `bytes[at..]` that a lenient decoder, a database collation or a
/// Unicode-normalising framework reads as ASCII: its ASCII byte (or `None` to drop it) and
/// its length. Full-width forms, overlong forms, non-ASCII spaces, zero-width characters.
fn fold_at(bytes: &[u8], at: usize) -> Option<(Option<u8>, usize)> {
    let b0 = bytes[at];
    let cont = |k: usize| bytes.get(at + k).copied().filter(|b| b & 0xc0 == 0x80);
    match b0 {
        // Overlong two-byte forms of ASCII, and IIS's `%c0%2e`-style forms.
        0xc0 | 0xc1 => {
            if let Some(b1) = cont(1) {
                return Some((Some((b0 & 1) << 6 | (b1 & 0x3f)), 2));
            }
            match (b0, bytes.get(at + 1)) {
                (0xc0, Some(&b @ (b'.' | b'/'))) => Some((Some(b), 2)),
                (0xc1, Some(0x1c)) => Some((Some(b'\\'), 2)),
                _ => None,
            }
        }
        // Overlong three- and four-byte forms of ASCII.
        0xe0 => {
            let (b1, b2) = (cont(1)?, cont(2)?);
            (b1 < 0x82).then_some((Some((b1 & 1) << 6 | (b2 & 0x3f)), 3))
        }
        0xf0 => {
            let (b1, b2, b3) = (cont(1)?, cont(2)?, cont(3)?);
            (b1 == 0x80 && b2 < 0x82).then_some((Some((b2 & 1) << 6 | (b3 & 0x3f)), 4))
        }
        // A lone no-break space byte (Latin-1 `%a0`).
        0xa0 => Some((Some(b' '), 1)),
        _ => {
            let len = match b0 {
                0xc2..=0xdf => 2,
                0xe1..=0xef => 3,
                _ => return None,
            };
            let c = std::str::from_utf8(bytes.get(at..at + len)?)
                .ok()?
                .chars()
                .next()?;
            let folded = match c {
                '\u{ff01}'..='\u{ff5e}' => Some((c as u32 - 0xfee0) as u8),
                '\u{a0}'
                | '\u{1680}'
                | '\u{2000}'..='\u{200a}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{85}' => Some(b' '),
                '\u{2215}' | '\u{2044}' => Some(b'/'),
                '\u{2216}' | '\u{fe68}' => Some(b'\\'),
                '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{ad}' => None,
                '\u{2018}' | '\u{2019}' | '\u{2032}' => Some(b'\''),
                '\u{201c}' | '\u{201d}' | '\u{2033}' => Some(b'"'),
                '\u{2039}' | '\u{fe64}' => Some(b'<'),
                '\u{203a}' | '\u{fe65}' => Some(b'>'),
                _ => return None,
            };
            Some((folded, len))
        }
    }
}

/// Folds full-width, overlong and look-alike forms of ASCII to ASCII, non-ASCII spaces to a
/// space, and drops zero-width characters. Other non-ASCII text is left alone.
fn fold(bytes: &mut Vec<u8>) {
    if bytes.is_ascii() {
        return;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] >= 0x80 {
            if let Some((ascii, len)) = fold_at(bytes, i) {
                out.extend(ascii);
                i += len;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    *bytes = out;
}

/// SQL views of a main view: comments replaced by a space (MySQL version comments opened),
/// `#` and `--` comments that end in a newline replaced by a space, NUL bytes dropped; and,
/// when a `/*…*/` comment sits right after a letter (`UN/**/ION`), a second view with those
/// comments removed without a space. Empty when there is nothing of the kind.
pub(crate) fn sql_views(text: &[u8]) -> Vec<Vec<u8>> {
    let comment = text.windows(2).any(|w| w == b"/*");
    let line =
        text.contains(&b'\n') && (text.contains(&b'#') || text.windows(2).any(|w| w == b"--"));
    let nul = text.contains(&0);
    if !comment && !line && !nul {
        return Vec::new();
    }
    let mut views = vec![strip_sql_comments(text, b" ")];
    let glued = text
        .windows(3)
        .any(|w| w[0].is_ascii_alphabetic() && &w[1..] == b"/*");
    if glued {
        views.push(strip_sql_comments(text, b""));
    }
    views
}

/// One linear pass: once a search for a closing `*/` or a newline fails, none after it can
/// succeed, so each is searched at most once past its last success.
fn strip_sql_comments(t: &[u8], glue: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len());
    let mut version_depth = 0usize;
    let (mut no_close, mut no_newline) = (false, false);
    let mut i = 0;
    while i < t.len() {
        let rest = &t[i..];
        if rest.starts_with(b"/*") {
            if rest.get(2) == Some(&b'!') {
                let digits = rest[3..]
                    .iter()
                    .take(6)
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                out.push(b' ');
                version_depth += 1;
                i += 3 + digits;
                continue;
            }
            if !no_close {
                if let Some(k) = find(&rest[2..], b"*/") {
                    out.extend_from_slice(glue);
                    i += 2 + k + 2;
                    continue;
                }
                no_close = true;
            }
        } else if version_depth > 0 && rest.starts_with(b"*/") {
            out.push(b' ');
            version_depth -= 1;
            i += 2;
            continue;
        } else if (rest[0] == b'#' || rest.starts_with(b"--")) && !no_newline {
            if let Some(k) = rest.iter().position(|&b| b == b'\n') {
                out.push(b' ');
                i += k + 1;
                continue;
            }
            no_newline = true;
        } else if rest[0] == 0 {
            i += 1;
            continue;
        }
        out.push(rest[0]);
        i += 1;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The shell's view of a canonical (not yet slash-folded) text: quotes, backslash escapes,
/// `cmd.exe` carets and empty expansions (`$@`, `$*`) removed, as a shell removes them
/// before running a word: `w'h'o"am"i`, `w\hoami`, `who$@ami` and `w^hoami` all read
/// `whoami`. `None` when there is none of those.
pub(crate) fn shell_view(text: &[u8]) -> Option<Vec<u8>> {
    let trigger = text.iter().enumerate().any(|(i, &b)| {
        matches!(b, b'\'' | b'"' | b'\\' | b'^')
            || (b == b'$' && matches!(text.get(i + 1), Some(b'@' | b'*' | b'(')))
    });
    if !trigger {
        return None;
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\'' | b'"' | b'\\' | b'^' => {}
            b'$' if matches!(text.get(i + 1), Some(b'@' | b'*')) => i += 1,
            b'$' if text.get(i + 1..i + 3) == Some(b"()") => i += 2,
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

/// Bytes that end a path-like token inside a query value or free text.
fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'&' | b'='
            | b' '
            | b'\t'
            | b'\n'
            | b'\r'
            | b'\''
            | b'"'
            | b'('
            | b')'
            | b','
            | b'<'
            | b'>'
            | b'|'
            | b'?'
            | b'#'
    )
}

/// Whether `seg` is a parent segment: `..`, or Tomcat's `..;param`.
fn is_parent(seg: &[u8]) -> bool {
    seg == b".." || seg.starts_with(b"..;")
}

/// Whether a path-like token of `text` has a `.` or `..` segment.
fn has_dot_segment(text: &[u8]) -> bool {
    text.split(|&b| b == b'/' || is_delimiter(b))
        .any(|seg| seg == b"." || is_parent(seg))
}

/// Resolves `.` and `..` segments as a server would, in the path, or in each path-like token
/// of a query; a `..` that climbs above the start of its path is kept at the front
/// (`/static/../../etc/passwd` → `/../etc/passwd`, `a/../../x` → `../x`), one that stays
/// inside disappears (`/account/../orders` → `/orders`). `None` when there is no dot
/// segment.
pub(crate) fn resolved_view(text: &[u8], is_path: bool) -> Option<Vec<u8>> {
    if !has_dot_segment(text) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len());
    if is_path {
        resolve_token(text, &mut out);
        return Some(out);
    }
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if is_delimiter(b) {
            resolve_token(&text[start..i], &mut out);
            out.push(b);
            start = i + 1;
        }
    }
    resolve_token(&text[start..], &mut out);
    Some(out)
}

fn resolve_token(token: &[u8], out: &mut Vec<u8>) {
    if !token
        .split(|&b| b == b'/')
        .any(|s| s == b"." || is_parent(s))
    {
        out.extend_from_slice(token);
        return;
    }
    let absolute = token.first() == Some(&b'/');
    let body = if absolute { &token[1..] } else { token };
    let mut stack: Vec<&[u8]> = Vec::new();
    let mut trailing = false;
    for seg in body.split(|&b| b == b'/') {
        trailing = seg == b"." || is_parent(seg);
        if seg == b"." {
            continue;
        }
        if is_parent(seg) {
            match stack.last() {
                Some(top) if !is_parent(top) => {
                    stack.pop();
                }
                _ => stack.push(seg),
            }
            continue;
        }
        stack.push(seg);
    }
    if absolute {
        out.push(b'/');
    }
    for (k, seg) in stack.iter().enumerate() {
        if k > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(seg);
    }
    if trailing && !stack.is_empty() {
        out.push(b'/');
    }
}

/// Parameters looked at for repetition; a longer query has its first ones checked.
const MAX_PARAMS: usize = 64;

/// The raw query with only its repeated parameters, each once, its values joined with `,`
/// (`id=1/*&id=*/UNION` → `id=1/*,*/UNION`), as ASP.NET presents them to the application.
/// `None` when no name repeats; does not allocate then.
pub(crate) fn joined_parameters(raw: &[u8]) -> Option<Vec<u8>> {
    let name = |p: &'_ [u8]| -> usize { p.iter().position(|&b| b == b'=').unwrap_or(p.len()) };
    let params = || raw.split(|&b| b == b'&').take(MAX_PARAMS);
    let repeated = |i: usize, p: &[u8]| {
        let n = &p[..name(p)];
        params().take(i).any(|q| &q[..name(q)] == n)
    };
    if !params()
        .enumerate()
        .any(|(i, p)| !p.is_empty() && repeated(i, p))
    {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, p) in params().enumerate() {
        let n = &p[..name(p)];
        // First occurrence of a name that repeats later.
        if p.is_empty() || repeated(i, p) || !params().skip(i + 1).any(|q| &q[..name(q)] == n) {
            continue;
        }
        if !out.is_empty() {
            out.push(b'&');
        }
        out.extend_from_slice(n);
        out.push(b'=');
        let mut first = true;
        for q in params().filter(|q| &q[..name(q)] == n) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(q.get(name(q) + 1..).unwrap_or_default());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str, q: bool) -> String {
        String::from_utf8_lossy(&normalise(s, q)).into_owned()
    }

    fn s(v: &[u8]) -> String {
        String::from_utf8_lossy(v).into_owned()
    }

    #[test]
    fn borrows_when_plain() {
        assert!(matches!(
            normalise("/api/products/42", false),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            normalise("page=2&sort=price", true),
            Cow::Borrowed(_)
        ));
        assert!(matches!(normalise("a+b", false), Cow::Borrowed(_)));
        assert!(matches!(
            normalise("a=1&lt=2&amp=3", true),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn decodes_one_layer_and_plus() {
        assert_eq!(n("q=rock+%26+roll", true), "q=rock & roll");
        assert_eq!(n("/a+b", false), "/a+b");
        assert_eq!(n("%3Cscript%3E", true), "<script>");
        assert_eq!(n("%u003cscript", true), "<script");
        assert_eq!(n("50%", true), "50%");
        assert_eq!(n("%zz%4", true), "%zz%4");
    }

    #[test]
    fn decodes_up_to_three_layers() {
        assert_eq!(n("..%252f..%252F", false), "../../");
        assert_eq!(n("%252e%252e%255c", false), "../");
        assert_eq!(n("id=1%2527", true), "id=1'");
        assert_eq!(n("x=1%253Bid", true), "x=1;id");
        assert_eq!(n("x=$%257Bjndi:", true), "x=${jndi:");
        assert_eq!(n("%25252e", true), ".");
        // The fourth layer is left alone: bounded.
        assert_eq!(n("%2525252e", true), "%2e");
        // `+` is a space in the first layer only.
        assert_eq!(n("a%252B+b", true), "a+ b");
    }

    #[test]
    fn decodes_html_entities() {
        assert_eq!(n("jav%26%23x61%3Bscript:", true), "javascript:");
        assert_eq!(n("&#106;&#0000097vascript&colon;", true), "javascript:");
        assert_eq!(n("%26lt;svg%26gt;%26Tab;", true), "<svg>\t");
        // Only with `;` for names; unknown names and separators stay.
        assert_eq!(n("a=1&lt=2&foo;", true), "a=1&lt=2&foo;");
        assert_eq!(n("&#0;&#x110000;&#", true), "&#0;&#x110000;&#");
    }

    #[test]
    fn folds_overlong_fullwidth_and_spaces() {
        assert_eq!(n("%c0%ae%c0%ae%c0%af", false), "../");
        assert_eq!(n("%e0%80%ae%e0%80%ae/", false), "../");
        assert_eq!(n("..%c1%9c", false), "../");
        assert_eq!(n("..\\..\\win.ini", false), "../../win.ini");
        assert_eq!(n("%uff0e%uff0e%u2215", false), "../");
        assert_eq!(n("caf%C3%A9", true), "café");
        assert_eq!(n("%EF%BC%9Cscript%EF%BC%9E", true), "<script>");
        assert_eq!(n("%ef%bc%87or%c0%a01=1", true), "'or 1=1");
        assert_eq!(n("1%a0or%e2%80%831=1%e3%80%80", true), "1 or 1=1 ");
        assert_eq!(n("un%e2%80%8bion", true), "union");
        assert_eq!(n("%f0%80%80%bc", true), "<");
    }

    #[test]
    fn collapses_slashes_in_the_path_only() {
        assert_eq!(
            n("//pma///scripts/setup.php", false),
            "/pma/scripts/setup.php"
        );
        assert_eq!(n("/a%2f%2fb", false), "/a/b");
        assert_eq!(n("u=https://x.example//a", true), "u=https://x.example//a");
    }

    #[test]
    fn sql_views_strip_comments() {
        let v = |t: &str| {
            sql_views(t.as_bytes())
                .iter()
                .map(|v| s(v))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            v("1/*!50000UNION*//*!50000SELECT*/1"),
            ["1 UNION  SELECT 1"]
        );
        assert_eq!(
            v("id=1/*,*/UNION/*,*/SELECT"),
            ["id=1 UNION SELECT", "id=1UNIONSELECT"]
        );
        assert_eq!(
            v("UN/**/ION SEL/*x*/ECT"),
            ["UN ION SEL ECT", "UNION SELECT"]
        );
        assert_eq!(v("1#x\nunion--y\nselect"), ["1 union select"]);
        assert_eq!(v("a\0'b"), ["a'b"]);
        assert!(v("plain text").is_empty());
        // Unterminated comments stay.
        assert_eq!(v("1 /* x /* y"), ["1 /* x /* y"]);
    }

    #[test]
    fn shell_view_removes_quote_splitting() {
        let v = |t: &str| shell_view(t.as_bytes()).map(|v| s(&v));
        assert_eq!(v(";w'h'o'am'i").as_deref(), Some(";whoami"));
        assert_eq!(
            v("|c\"a\"t /e\\tc/pa$@sswd").as_deref(),
            Some("|cat /etc/passwd")
        );
        assert_eq!(v("&w^h^o^a^m^i").as_deref(), Some("&whoami"));
        assert_eq!(v("plain; text"), None);
    }

    #[test]
    fn resolved_view_keeps_only_climbing_parents() {
        let v = |t: &str, p: bool| resolved_view(t.as_bytes(), p).map(|v| s(&v));
        assert_eq!(v("/account/../orders", false).as_deref(), Some("/orders"));
        assert_eq!(
            v("next=/account/../orders&x=1", false).as_deref(),
            Some("next=/orders&x=1")
        );
        assert_eq!(
            v("/static/../../etc/passwd", true).as_deref(),
            Some("/../etc/passwd")
        );
        assert_eq!(v("f=a/../../x y", false).as_deref(), Some("f=../x y"));
        assert_eq!(v("/a/./b/..", true).as_deref(), Some("/a/"));
        assert_eq!(
            v("/x/..;/..;/web.xml", true).as_deref(),
            Some("/..;/web.xml")
        );
        assert_eq!(v("/.well-known/x.y", true), None);
        assert_eq!(v("q=wait...", false), None);
    }

    #[test]
    fn joins_repeated_parameters() {
        let v = |t: &str| joined_parameters(t.as_bytes()).map(|v| s(&v));
        assert_eq!(
            v("id=1/*&id=*/UNION/*&x=2&id=*/SELECT/*&id=*/1").as_deref(),
            Some("id=1/*,*/UNION/*,*/SELECT/*,*/1")
        );
        assert_eq!(v("a=1&b=2&a=3&b&c=4").as_deref(), Some("a=1,3&b=2,"));
        assert_eq!(v("page=2&sort=price"), None);
        assert_eq!(v("&&"), None);
    }
}
