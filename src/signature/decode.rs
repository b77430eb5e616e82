//! Decode-once normalisation of the path and query before matching.
//!
//! Attackers hide payloads behind encodings that the application (or a framework below it)
//! will undo later. The inspector therefore looks at the text as the application will see it:
//! percent-decoded once (plus IIS-style `%uXXXX`), with a second layer decoded only for the
//! characters that matter to traversal and to further encoding (`%2e`, `%2f`, `%5c`, `%25`),
//! overlong and full-width forms of `.`, `/` and `\` folded to ASCII, and backslashes turned
//! into `/`. Decoding everything twice would turn a benign literal `%41` typed by a user into
//! `A`; restricting the second layer keeps that from creating matches out of nothing.

use std::borrow::Cow;

/// Normalises a raw, percent-encoded path or query for matching.
///
/// `plus_is_space` is true for the query (form encoding). Borrows when there is nothing to
/// decode, which is the case for nearly all benign requests.
pub(crate) fn normalise(raw: &str, plus_is_space: bool) -> Cow<'_, [u8]> {
    let bytes = raw.as_bytes();
    let needs_work = bytes
        .iter()
        .any(|&b| b == b'%' || b == b'\\' || (plus_is_space && b == b'+') || b >= 0x80);
    if !needs_work {
        return Cow::Borrowed(bytes);
    }
    let mut once = Vec::with_capacity(bytes.len());
    decode_layer(bytes, plus_is_space, &mut once);
    let mut out = if contains_second_layer(&once) {
        let mut twice = Vec::with_capacity(once.len());
        decode_second_layer(&once, &mut twice);
        twice
    } else {
        once
    };
    fold_separators(&mut out);
    for b in &mut out {
        if *b == b'\\' {
            *b = b'/';
        }
    }
    Cow::Owned(out)
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
            if matches!(input.get(i + 1), Some(b'u' | b'U')) {
                let code = (0..2)
                    .map(|k| hex_pair(input, i + 2 + 2 * k))
                    .try_fold(0u32, |acc, v| v.map(|v| acc << 8 | u32::from(v)));
                if let Some(c) = code.and_then(char::from_u32) {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    i += 6;
                    continue;
                }
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

/// The escapes decoded a second time: `.`, `/`, `\` and `%` itself.
fn second_layer(bytes: &[u8], at: usize) -> Option<u8> {
    if bytes.get(at) != Some(&b'%') {
        return None;
    }
    match hex_pair(bytes, at + 1)? {
        v @ (b'.' | b'/' | b'\\' | b'%') => Some(v),
        _ => None,
    }
}

fn contains_second_layer(bytes: &[u8]) -> bool {
    (0..bytes.len()).any(|i| second_layer(bytes, i).is_some())
}

fn decode_second_layer(input: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() {
        if let Some(v) = second_layer(input, i) {
            out.push(v);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
}

/// Folds overlong UTF-8 and full-width/look-alike forms of `.`, `/` and `\` to ASCII, as some
/// servers and decoders do. Non-UTF-8 bytes are otherwise left alone.
fn fold_separators(bytes: &mut Vec<u8>) {
    if bytes.is_ascii() {
        return;
    }
    const TABLE: &[(&[u8], u8)] = &[
        (&[0xc0, 0xae], b'.'),
        (&[0xc0, 0xaf], b'/'),
        (&[0xc1, 0x9c], b'\\'),
        (&[0xc1, 0x1c], b'\\'),
        (&[0xc0, 0x2e], b'.'),
        (&[0xc0, 0x2f], b'/'),
        (&[0xe0, 0x80, 0xae], b'.'),
        (&[0xe0, 0x80, 0xaf], b'/'),
        (&[0xf0, 0x80, 0x80, 0xae], b'.'),
        (&[0xf0, 0x80, 0x80, 0xaf], b'/'),
        ("\u{ff0e}".as_bytes(), b'.'),
        ("\u{ff0f}".as_bytes(), b'/'),
        ("\u{ff3c}".as_bytes(), b'\\'),
        ("\u{2215}".as_bytes(), b'/'),
        ("\u{2216}".as_bytes(), b'\\'),
    ];
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    'outer: while i < bytes.len() {
        if bytes[i] >= 0x80 {
            for (seq, ascii) in TABLE {
                if bytes[i..].starts_with(seq) {
                    out.push(*ascii);
                    i += seq.len();
                    continue 'outer;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    *bytes = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str, q: bool) -> String {
        String::from_utf8_lossy(&normalise(s, q)).into_owned()
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
    fn second_layer_only_for_separators() {
        assert_eq!(n("..%252f..%252F", false), "../../");
        assert_eq!(n("%252e%252e%255c", false), "../");
        assert_eq!(n("%2541", true), "%41");
        assert_eq!(n("%25252e", true), "%2e");
    }

    #[test]
    fn folds_overlong_and_backslash() {
        assert_eq!(n("%c0%ae%c0%ae%c0%af", false), "../");
        assert_eq!(n("%e0%80%ae%e0%80%ae/", false), "../");
        assert_eq!(n("..%c1%9c", false), "../");
        assert_eq!(n("..\\..\\win.ini", false), "../../win.ini");
        assert_eq!(n("%uff0e%uff0e%u2215", false), "../");
        assert_eq!(n("caf%C3%A9", true), "café");
    }
}
