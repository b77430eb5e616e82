//! Cross-site scripting found by tokenising the value as HTML.
//!
//! A pattern list sees `<img src=x onerror=alert(1)>` as text and has to guess where a tag
//! ends, which attribute a `javascript:` belongs to and whether a handler name is real. This
//! module instead runs a small HTML5-style tokeniser over the value and judges what a browser
//! would build from it: the tags, their attributes and the attribute values.
//!
//! # Starting contexts
//!
//! A reflected value lands somewhere in a page, and we do not know where. The value is
//! tokenised from each place it could land, and the most severe result wins:
//!
//! - in element text (the data state);
//! - inside an unquoted attribute value (`<input value=VALUE>`): whitespace ends the value and
//!   what follows is read as further attributes of the host tag (`x onfocus=alert(1)`);
//! - inside a double- or single-quoted attribute value: the first matching quote closes the
//!   value (`" onmouseover="alert(1)`, `' autofocus onfocus=alert(1) '`, `"><script>`).
//!
//! Two small checks outside the tokeniser cover values that are not markup at all: a value that
//! is itself a script URL (it may land in an `href`), and a value that closes a quoted string of
//! an inline script and calls something (`';alert(1)//`).
//!
//! # Simplifications, all on the side of seeing more
//!
//! The tokeniser does not switch to the raw-text states of `<script>`, `<style>`, `<textarea>`
//! and so on, and comments (`<!-- -->`, `<!…>`, `<?…>`, `<![CDATA[`) are read *through*: their
//! contents are tokenised as if the comment were not there. A browser would hide
//! `<!--<img src=x onerror=alert(1)>-->`, but the page around the value may close the comment
//! first, and a person has no reason to send markup inside a comment. Quoted attribute values
//! that contain `<` are tokenised once more (one level deep), which catches `srcdoc` payloads
//! and the old quote-confusion tricks. Control bytes inside tag and attribute names are
//! skipped when the name is compared, and whitespace and control bytes inside a URL scheme
//! (`jav\tascript:`), as old browsers did.
//!
//! # Strong and weak
//!
//! Strong findings need a construct that runs or loads script: a tag that does so (`script`
//! with code, `iframe`, `object`, `embed`, `base`, `link`, a refreshing `meta`, …), an event
//! handler attribute with a value (any `on` + letters: the list of handlers keeps growing, so
//! none is kept), a script URL in an attribute, script in a `style`. Harmless markup a person
//! could type in a search box (`<b>`, `<div> vs <span>`, `<a href="https://…">`) gives nothing;
//! a bare `<script>` followed by prose or an `<iframe>` without attributes is weak; unknown tags without such attributes (IRC nicknames like
//! `<joshk>`, `<email@example.com>`, `List<String>`) and code (`a<b && c>d`) give nothing.
//!
//! Decisions at the edges:
//!
//! - A bare `<script>` is weak when prose follows (`use <script> tag`), strong when code
//!   does (`<script>alert(1)`, a later `</script>`, text glued to the tag) or when the tag
//!   comes right after a closed attribute (`"><script>`). The same breakout makes a bare
//!   `<iframe>` strong; alone, `<iframe>` and friends are nothing until they carry an
//!   attribute (`List<Object>` is Java).
//! - A handler on a tag the value opened is strong with any value. A handler the value adds
//!   to the tag it was reflected into (`x onfocus=alert(1)`) must look injected to be strong:
//!   no spaces around `=` and a call or an assignment; `status online=true` is weak.
//! - A value that is a script URL by itself (`javascript:alert(1)`) is strong when the rest
//!   reads as code in a URL (punctuation, no space), weak when code is mixed with words
//!   (`javascript: void(0) meaning`), and nothing when words follow alone (`JavaScript: The
//!   Good Parts`).
//! - A quote, an operator and a call (`x = 'a' + f(1)`) is weak; strong only when the value
//!   starts with the quote and ends as a payload does (`';alert(1)//`, `"-alert(1)-"`).
//!
//! # Input
//!
//! One value at a time (a query value, a path segment), after the caller's canonical
//! decoding: percent layers, entities, folding. A whole query string would put unrelated
//! values into one context and its `=` signs next to the words before them.
//!
//! # Cost
//!
//! Every pass is linear in the value: the tokeniser never goes back, the bounded look-arounds
//! are of constant length, and the one nested tokenisation covers disjoint attribute values.
//! At most [`MAX_LEN`] bytes are looked at. [`worth_tokenising`] is a single pass that lets
//! nearly all plain values skip the rest; [`detect`] allocates only for values that contain
//! `<![CDATA[`.

/// Where in the value the markup was recognised, and how sure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) strong: bool,
}

/// Bytes of a value that are looked at; the rest is ignored. Far above any legitimate query
/// value, and it bounds the work on hostile input.
const MAX_LEN: usize = 64 * 1024;

/// How far back [`worth_tokenising`] looks for an attribute name or a URL scheme.
const LOOKBACK: usize = 48;

fn capped(value: &[u8]) -> &[u8] {
    &value[..value.len().min(MAX_LEN)]
}

/// Cheap pre-check: false means `detect` would certainly return None (used to skip plain values).
///
/// True when the value holds a `<`, an `=` after something that could be an event handler or
/// a `style`/`srcdoc`/`attributeName` attribute, a `:` after a script-like scheme name, or a
/// quote followed by an operator. These are the only triggers of the checks in [`detect`].
pub(crate) fn worth_tokenising(value: &[u8]) -> bool {
    let v = capped(value);
    let mut from = 0;
    while let Some(i) = next_trigger(v, from) {
        let hit = match v[i] {
            b'<' => true,
            b'=' => attr_name_before(v, i),
            b':' => scheme_before(v, i),
            _ => quote_then_operator(v, i).is_some(),
        };
        if hit {
            return true;
        }
        from = i + 1;
    }
    false
}

/// The next byte from `from` on that [`worth_tokenising`] must look at. Eight bytes at a
/// time: a word with none of the five trigger bytes (nearly every word of plain text) costs a
/// few arithmetic operations instead of eight table look-ups.
fn next_trigger(v: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Non-zero when some byte of `x` is zero (exact in the presence of such a byte, which is
    // all that is asked: the bytes of a flagged word are then looked at one by one).
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let rest = v.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut at = from;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word);
        let any = [b'<', b'=', b':', b'\'', b'"']
            .iter()
            .fold(0, |acc, &c| acc | zero_byte(x ^ (ONES * u64::from(c))));
        if any != 0 {
            if let Some(p) = chunk.iter().position(|&b| TRIGGER[usize::from(b)]) {
                return Some(at + p);
            }
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| TRIGGER[usize::from(b)])
        .map(|p| at + p)
}

/// The bytes [`worth_tokenising`] stops at: `<`, `=`, `:` and the quotes.
static TRIGGER: [bool; 256] = {
    let mut t = [false; 256];
    t[b'<' as usize] = true;
    t[b'=' as usize] = true;
    t[b':' as usize] = true;
    t[b'\'' as usize] = true;
    t[b'"' as usize] = true;
    t
};

/// Judges one already-decoded parameter value (or path segment).
pub(crate) fn detect(value: &[u8]) -> Option<Finding> {
    let v = capped(value);
    let mut best = Best::default();
    let has_lt = v.contains(&b'<');
    if has_lt {
        Scan::new(v, 0, 0).run(Start::Data, &mut best);
        if best.is_strong() {
            return best.found;
        }
    }
    if v.iter().any(|&b| is_ws(b) || b == b'>') {
        Scan::new(v, 0, 0).run(Start::Unquoted, &mut best);
    }
    for q in [b'"', b'\''] {
        if !best.is_strong() && v.contains(&q) {
            Scan::new(v, 0, 0).run(Start::Quoted(q), &mut best);
        }
    }
    if best.is_strong() {
        return best.found;
    }
    if let Some(strong) = bare_script_url(v) {
        best.offer(0, v.len(), strong);
    }
    if let Some(f) = script_string_breakout(v) {
        best.offer(f.start, f.end, f.strong);
    }
    if has_lt && !best.is_strong() {
        cdata_view(v, &mut best);
    }
    best.found
}

/// The most severe finding so far: the first strong one, else the first weak one.
#[derive(Default)]
struct Best {
    found: Option<Finding>,
}

impl Best {
    fn offer(&mut self, start: usize, end: usize, strong: bool) {
        let replace = match self.found {
            None => true,
            Some(f) => strong && !f.strong,
        };
        if replace {
            self.found = Some(Finding { start, end, strong });
        }
    }

    fn is_strong(&self) -> bool {
        self.found.is_some_and(|f| f.strong)
    }
}

/// Where the value is assumed to land.
#[derive(Clone, Copy)]
enum Start {
    Data,
    Unquoted,
    Quoted(u8),
}

/// HTML whitespace: what ends a tag name, an attribute name or an unquoted value.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

/// Control bytes that are not HTML whitespace: ignored inside names.
fn is_ignored_control(b: u8) -> bool {
    (b < 0x20 && !is_ws(b)) || b == 0x7f
}

/// A tag or attribute name, lower-cased with ignored control bytes removed; only the first
/// bytes are kept, enough for every name this module compares.
struct Name {
    buf: [u8; 16],
    len: usize,
    overflow: bool,
}

impl Name {
    fn new(raw: &[u8]) -> Name {
        let mut name = Name {
            buf: [0; 16],
            len: 0,
            overflow: false,
        };
        for &b in raw.iter().filter(|&&b| !is_ignored_control(b)) {
            if name.len == name.buf.len() {
                name.overflow = true;
                break;
            }
            name.buf[name.len] = b.to_ascii_lowercase();
            name.len += 1;
        }
        name
    }

    /// The name, or an empty slice when it is longer than any name compared here.
    fn get(&self) -> &[u8] {
        if self.overflow {
            b""
        } else {
            &self.buf[..self.len]
        }
    }
}

/// `on` followed by one or more ASCII letters: an event handler, present or future.
fn is_handler_name(raw: &[u8]) -> bool {
    let mut letters = raw.iter().filter(|&&b| !is_ignored_control(b));
    let o = letters.next().map(u8::to_ascii_lowercase);
    let n = letters.next().map(u8::to_ascii_lowercase);
    if o != Some(b'o') || n != Some(b'n') {
        return false;
    }
    let mut rest = 0usize;
    for &b in letters {
        if !b.is_ascii_alphabetic() {
            return false;
        }
        rest += 1;
    }
    rest > 0
}

fn trim_ws(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b > b' ').unwrap_or(v.len());
    let end = v.iter().rposition(|&b| b > b' ').map_or(start, |e| e + 1);
    &v[start..end.max(start)]
}

/// The scheme of a URL as a browser reads it, if it is one that runs script or renders an
/// attacker's document: `javascript:`, `vbscript:`, `livescript:`, `mocha:`, or a `data:` URL
/// of HTML, SVG or XML. Whitespace and control bytes are skipped everywhere in the scheme, as
/// are leading quotes and backticks. Returns the index just after the scheme's `:`.
fn script_url(v: &[u8]) -> Option<usize> {
    const BUDGET: usize = 256;
    let mut scheme = [0u8; 12];
    let mut len = 0;
    let mut colon = None;
    for (i, &b) in v.iter().enumerate().take(BUDGET) {
        if b <= b' ' || b == 0x7f || (len == 0 && matches!(b, b'"' | b'\'' | b'`')) {
            continue;
        }
        if b == b':' {
            colon = Some(i);
            break;
        }
        if !b.is_ascii_alphabetic() || len == scheme.len() {
            return None;
        }
        scheme[len] = b.to_ascii_lowercase();
        len += 1;
    }
    let colon = colon?;
    match &scheme[..len] {
        b"javascript" | b"vbscript" | b"livescript" | b"mocha" => Some(colon + 1),
        b"data" => {
            let mut mime = [0u8; 21];
            let mut m = 0;
            for &b in v[colon + 1..].iter().take(BUDGET) {
                if b <= b' ' || b == 0x7f {
                    continue;
                }
                if m == mime.len() || matches!(b, b',' | b';') {
                    break;
                }
                mime[m] = b.to_ascii_lowercase();
                m += 1;
            }
            let mime = &mime[..m];
            let bad = [
                &b"text/html"[..],
                b"image/svg+xml",
                b"application/xhtml+xml",
                b"text/xml",
                b"application/xml",
            ]
            .iter()
            .any(|t| mime.starts_with(t));
            bad.then_some(colon + 1)
        }
        _ => None,
    }
}

/// Whether `hay` contains `needle` (lower-case ASCII without spaces), case-insensitively,
/// skipping whitespace, control bytes and backslashes in `hay` (CSS escapes and padding).
fn contains_folded(hay: &[u8], needle: &[u8]) -> bool {
    let skip = |b: u8| b <= b' ' || b == 0x7f || b == b'\\';
    let Some(&first) = needle.first() else {
        return true;
    };
    for s in 0..hay.len() {
        if hay[s].to_ascii_lowercase() != first {
            continue;
        }
        let mut k = 1;
        for &b in &hay[s + 1..] {
            if k == needle.len() {
                break;
            }
            if skip(b) {
                continue;
            }
            if b.to_ascii_lowercase() != needle[k] {
                break;
            }
            k += 1;
        }
        if k == needle.len() {
            return true;
        }
    }
    false
}

/// CSS that runs script or binds behaviour (old IE and Gecko), or imports a sheet.
fn bad_css(v: &[u8]) -> bool {
    [
        &b"expression("[..],
        b"javascript:",
        b"vbscript:",
        b"-moz-binding",
        b"behavior:",
        b"@import",
    ]
    .iter()
    .any(|n| contains_folded(v, n))
}

/// Tag names by what they can do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Script,
    Style,
    /// Loads or frames another document, or changes the base of every URL.
    Loader,
    Link,
    Meta,
    SvgMath,
    /// An ordinary HTML element.
    Known,
    Unknown,
}

fn kind_of(name: &[u8]) -> Kind {
    match name {
        b"script" => Kind::Script,
        b"style" => Kind::Style,
        b"iframe" | b"frame" | b"frameset" | b"object" | b"embed" | b"applet" | b"base"
        | b"xml" | b"import" | b"isindex" | b"layer" | b"ilayer" | b"portal" => Kind::Loader,
        b"link" => Kind::Link,
        b"meta" => Kind::Meta,
        b"svg" | b"math" => Kind::SvgMath,
        b"a" | b"abbr" | b"acronym" | b"address" | b"area" | b"article" | b"aside" | b"audio"
        | b"b" | b"bdi" | b"bdo" | b"big" | b"blink" | b"blockquote" | b"body" | b"br"
        | b"button" | b"canvas" | b"caption" | b"center" | b"cite" | b"code" | b"col"
        | b"colgroup" | b"datalist" | b"dd" | b"del" | b"details" | b"dfn" | b"dialog" | b"div"
        | b"dl" | b"dt" | b"em" | b"fieldset" | b"figcaption" | b"figure" | b"font" | b"footer"
        | b"form" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" | b"head" | b"header" | b"hr"
        | b"html" | b"i" | b"img" | b"image" | b"input" | b"ins" | b"kbd" | b"keygen"
        | b"label" | b"legend" | b"li" | b"listing" | b"main" | b"map" | b"mark" | b"marquee"
        | b"menu" | b"meter" | b"nav" | b"nobr" | b"noembed" | b"noframes" | b"noscript"
        | b"ol" | b"optgroup" | b"option" | b"output" | b"p" | b"param" | b"picture"
        | b"plaintext" | b"pre" | b"progress" | b"q" | b"rp" | b"rt" | b"ruby" | b"s" | b"samp"
        | b"section" | b"select" | b"slot" | b"small" | b"source" | b"span" | b"strike"
        | b"strong" | b"sub" | b"summary" | b"sup" | b"table" | b"tbody" | b"td" | b"template"
        | b"textarea" | b"tfoot" | b"th" | b"thead" | b"title" | b"tr" | b"track" | b"tt"
        | b"u" | b"ul" | b"var" | b"video" | b"wbr" | b"xmp" | b"animate" | b"set" | b"use"
        | b"foreignobject" | b"mtext" | b"mglyph" => Kind::Known,
        _ => Kind::Unknown,
    }
}

/// What the attributes of one tag have shown so far.
struct Tag {
    /// The tag the value was reflected into, rather than one the value opened.
    host: bool,
    attrs: usize,
    url_attr: bool,
    rel: bool,
    refresh: bool,
}

impl Tag {
    fn new(host: bool) -> Tag {
        Tag {
            host,
            attrs: 0,
            url_attr: false,
            rel: false,
            refresh: false,
        }
    }

    /// Records one attribute; `Some(true)` when the attribute alone makes the finding strong,
    /// `Some(false)` when it makes it weak. `spaced` tells whether whitespace surrounds the
    /// `=`.
    fn attr(
        &mut self,
        raw_name: &[u8],
        value: Option<&[u8]>,
        quoted: bool,
        spaced: bool,
    ) -> Option<bool> {
        self.attrs += 1;
        let value = value?;
        let trimmed = trim_ws(value);
        if is_handler_name(raw_name) && !trimmed.is_empty() {
            // Inside a tag the value opened, any handler is markup. Added to the host tag
            // from prose (`onClick = handleClick`, JSX `onClick={f}`), it must look like an
            // injected call: no spaces around `=`, and a call or an assignment.
            let code = !trimmed.starts_with(b"{")
                && trimmed.iter().any(|b| matches!(b, b'(' | b'`' | b'='));
            return Some(!self.host || (code && !spaced));
        }
        if script_url(value).is_some() {
            return Some(true);
        }
        if !quoted && unquoted_hides_handler(value) {
            return Some(true);
        }
        let name = Name::new(raw_name);
        match name.get() {
            b"srcdoc" => return (!trimmed.is_empty()).then_some(true),
            b"style" => return bad_css(value).then_some(true),
            b"attributename" => {
                let t = Name::new(trimmed);
                let t = t.get();
                let t = t.starts_with(b"on") || t == b"href" || t == b"xlink:href";
                return t.then_some(true);
            }
            b"href" | b"src" | b"xlink:href" | b"action" | b"formaction" | b"data" => {
                self.url_attr = true
            }
            b"rel" => self.rel = true,
            b"http-equiv" => {
                self.refresh |=
                    contains_folded(value, b"refresh") || contains_folded(value, b"set-cookie")
            }
            b"content" => self.refresh |= contains_folded(value, b"url="),
            _ => {}
        }
        None
    }
}

/// `x/onerror=alert(1)`: in an unquoted value a `/` does not end the value, but filters and
/// some parsers split there, so a handler behind a `/` counts as one.
fn unquoted_hides_handler(v: &[u8]) -> bool {
    let mut rest = v;
    while let Some(p) = rest.iter().position(|&b| b == b'/') {
        rest = &rest[p + 1..];
        if let Some(eq) = rest.iter().position(|&b| b == b'=' || b == b'/') {
            if rest[eq] == b'=' && is_handler_name(&rest[..eq]) && eq + 1 < rest.len() {
                return true;
            }
        }
    }
    false
}

/// One tokenisation of a value (or of an attribute value, one level deep).
struct Scan<'a> {
    v: &'a [u8],
    /// Offset of `v` in the value passed to [`detect`].
    base: usize,
    depth: u8,
    /// Where the last `</script` starts, once looked for.
    script_close: Option<Option<usize>>,
}

impl<'a> Scan<'a> {
    fn new(v: &'a [u8], base: usize, depth: u8) -> Scan<'a> {
        Scan {
            v,
            base,
            depth,
            script_close: None,
        }
    }

    fn run(&mut self, start: Start, best: &mut Best) {
        let v = self.v;
        let i = match start {
            Start::Data => 0,
            Start::Unquoted => {
                let Some(end) = v.iter().position(|&b| is_ws(b) || b == b'>') else {
                    return;
                };
                let mut host = Tag::new(true);
                self.attributes(end, &mut host, best).0
            }
            Start::Quoted(q) => {
                let Some(end) = v.iter().position(|&b| b == q) else {
                    return;
                };
                let mut host = Tag::new(true);
                self.attributes(end + 1, &mut host, best).0
            }
        };
        if !best.is_strong() {
            self.data(i, best);
        }
    }

    fn offer(&self, best: &mut Best, start: usize, end: usize, strong: bool) {
        best.offer(self.base + start, self.base + end, strong);
    }

    /// The data state: text until a `<` that opens something.
    fn data(&mut self, mut i: usize, best: &mut Best) {
        let v = self.v;
        while i < v.len() && !best.is_strong() {
            let Some(p) = v[i..].iter().position(|&b| b == b'<').map(|p| p + i) else {
                return;
            };
            let mut k = p + 1;
            while k < v.len() && is_ignored_control(v[k]) {
                k += 1;
            }
            let Some(&b) = v.get(k) else {
                return;
            };
            i = match b {
                b if b.is_ascii_alphabetic() => self.start_tag(p, k, best),
                b'/' => self.end_tag(p, k + 1, best),
                b'?' => {
                    let name_end = name_end(v, k + 1);
                    if Name::new(&v[k + 1..name_end]).get() == b"xml-stylesheet" {
                        self.offer(best, p, name_end, true);
                    }
                    k + 1
                }
                b if is_ws(b) => {
                    self.spaced_tag(p, k, best);
                    k
                }
                // `<!…`: comments and CDATA are read through (see the module docs).
                _ => k,
            };
        }
    }

    /// `<name …>`: reads the tag and its attributes, then judges it. Returns where the data
    /// state resumes.
    fn start_tag(&mut self, lt: usize, name_start: usize, best: &mut Best) -> usize {
        let v = self.v;
        let name_end = name_end(v, name_start);
        let kind = kind_of(Name::new(&v[name_start..name_end]).get());
        let mut tag = Tag::new(false);
        let (after, _) = self.attributes(name_end, &mut tag, best);
        if best.is_strong() {
            return after;
        }
        // `"><script>`: a closed attribute and tag just before is how a value breaks out.
        let breakout = lt >= 2 && v[lt - 1] == b'>' && matches!(v[lt - 2], b'"' | b'\'');
        let strong = match kind {
            Kind::Script => breakout || tag.attrs > 0 || self.script_content_is_code(after),
            Kind::Style => bad_css(until_lt(v, after)),
            // A bare `<iframe>` or `<object>` loads nothing (`List<Object>`, `<iframe> vs
            // <object>`): only with an attribute, or right after a breakout, is it one.
            Kind::Loader if breakout || tag.attrs > 0 => true,
            Kind::Loader => return after,
            Kind::Link => tag.rel || tag.url_attr,
            Kind::Meta => tag.refresh,
            Kind::SvgMath => tag.url_attr,
            // Harmless markup (`<b>`, `<div> vs <span>`, `<a href="https://…">`) is what people
            // ask about in a search box: no evidence at all, or every web developer's searches
            // would add up to a step-up.
            Kind::Known => return after,
            Kind::Unknown => return after,
        };
        self.offer(best, lt, after, strong);
        after
    }

    /// `</name …>`: the end of a raw-text element is how a value breaks out of a script or a
    /// textarea, so those are weak findings; others are nothing. `</` followed by anything
    /// else is a bogus comment, read through.
    fn end_tag(&mut self, lt: usize, mut k: usize, best: &mut Best) -> usize {
        let v = self.v;
        while k < v.len() && is_ignored_control(v[k]) {
            k += 1;
        }
        if !v.get(k).is_some_and(u8::is_ascii_alphabetic) {
            return k;
        }
        let name_end = name_end(v, k);
        let name = Name::new(&v[k..name_end]);
        let mut ignored = Tag::new(false);
        let (after, closed) = self.attributes(name_end, &mut ignored, best);
        let raw_text = matches!(
            name.get(),
            b"script" | b"style" | b"textarea" | b"title" | b"noscript" | b"xmp" | b"iframe"
        );
        if raw_text && closed {
            self.offer(best, lt, after, false);
        }
        after
    }

    /// `<  script >`: not a tag for a browser, but a probe for filters that strip spaces.
    fn spaced_tag(&self, lt: usize, mut k: usize, best: &mut Best) {
        let v = self.v;
        while k < v.len() && is_ws(v[k]) {
            k += 1;
        }
        let end = name_end(v, k);
        let dangerous = matches!(
            Name::new(&v[k..end]).get(),
            b"script" | b"iframe" | b"svg" | b"object" | b"embed"
        );
        if dangerous && end > k {
            self.offer(best, lt, end, false);
        }
    }

    /// Whether what follows a bare `<script>` is code: a `</script` later on, or text glued
    /// to the tag, or punctuation of code. `<script> tag placement` is a question about HTML.
    fn script_content_is_code(&mut self, after: usize) -> bool {
        let v = self.v;
        let close = *self.script_close.get_or_insert_with(|| {
            v.windows(8)
                .rposition(|w| w.eq_ignore_ascii_case(b"</script"))
        });
        if close.is_some_and(|c| c >= after) {
            return true;
        }
        let content = until_lt(v, after);
        match content.first() {
            None => false,
            Some(&b) if !is_ws(b) => true,
            Some(_) => content
                .iter()
                .any(|b| matches!(b, b'(' | b')' | b';' | b'=' | b'`' | b'{' | b'}')),
        }
    }

    /// The attribute states, from "before attribute name" to the end of the tag. Returns
    /// where the data state resumes and whether a `>` ended the tag (a tag cut short by the
    /// end of the value is still judged: the page goes on after it).
    fn attributes(&mut self, mut i: usize, tag: &mut Tag, best: &mut Best) -> (usize, bool) {
        let v = self.v;
        loop {
            while i < v.len() && (is_ws(v[i]) || v[i] == b'/') {
                i += 1;
            }
            let Some(&b) = v.get(i) else {
                return (v.len(), false);
            };
            if b == b'>' {
                return (i + 1, true);
            }
            let name_start = i;
            i += 1;
            while i < v.len() && !is_ws(v[i]) && !matches!(v[i], b'/' | b'>' | b'=') {
                i += 1;
            }
            let name_end = i;
            let mut j = i;
            while j < v.len() && is_ws(v[j]) {
                j += 1;
            }
            if v.get(j) != Some(&b'=') {
                tag.attr(&v[name_start..name_end], None, false, false);
                i = j;
                continue;
            }
            let spaced = j > name_end || v.get(j + 1).is_some_and(|&b| is_ws(b));
            j += 1;
            while j < v.len() && is_ws(v[j]) {
                j += 1;
            }
            let (value_start, value_end, next, quoted) = match v.get(j) {
                Some(&q @ (b'"' | b'\'' | b'`')) => match v[j + 1..].iter().position(|&b| b == q) {
                    Some(c) => (j + 1, j + 1 + c, j + 2 + c, true),
                    None if q == b'`' => unquoted(v, j),
                    None => (j + 1, v.len(), v.len(), true),
                },
                _ => unquoted(v, j),
            };
            let value = &v[value_start..value_end];
            match tag.attr(&v[name_start..name_end], Some(value), quoted, spaced) {
                Some(true) => {
                    self.offer(best, name_start, next, true);
                    return (next, false);
                }
                Some(false) => self.offer(best, name_start, next, false),
                None => {}
            }
            if quoted && self.depth == 0 && value.contains(&b'<') {
                Scan::new(value, self.base + value_start, 1).data(0, best);
                if best.is_strong() {
                    return (next, false);
                }
            }
            i = next;
        }
    }
}

/// An unquoted attribute value from `j`: (start, end, resume, quoted = false).
fn unquoted(v: &[u8], j: usize) -> (usize, usize, usize, bool) {
    let end = v[j..]
        .iter()
        .position(|&b| is_ws(b) || b == b'>')
        .map_or(v.len(), |e| j + e);
    (j, end, end, false)
}

/// The end of a tag name that starts at `k`: whitespace, `/` or `>`.
fn name_end(v: &[u8], k: usize) -> usize {
    v[k.min(v.len())..]
        .iter()
        .position(|&b| is_ws(b) || b == b'/' || b == b'>')
        .map_or(v.len(), |e| k + e)
}

/// Text from `at` to the next `<` (or the end).
fn until_lt(v: &[u8], at: usize) -> &[u8] {
    let rest = &v[at.min(v.len())..];
    let end = rest.iter().position(|&b| b == b'<').unwrap_or(rest.len());
    &rest[..end]
}

/// The whole value is a script URL, and may land in an `href` or `src`. Strong when the rest
/// looks like code in a URL (punctuation, no space), weak when code is mixed with words
/// (`javascript: void(0) meaning`), nothing when it is words alone (`JavaScript: The Good
/// Parts`, `javascript: links`): a title or a question, which a browser would not run.
fn bare_script_url(v: &[u8]) -> Option<bool> {
    let after = script_url(v)?;
    let rest = trim_ws(&v[after.min(v.len())..]);
    let code = rest.iter().any(|b| {
        matches!(
            b,
            b'(' | b'`' | b'=' | b'[' | b';' | b'/' | b'.' | b'\'' | b'"'
        )
    });
    code.then(|| !rest.contains(&b' '))
}

/// After a quote at `q`: optional spaces, then at least one operator or closing bracket.
/// Returns where the operators end.
fn quote_then_operator(v: &[u8], q: usize) -> Option<usize> {
    let mut i = q + 1;
    let mut ops = 0;
    while let Some(&b) = v.get(i) {
        match b {
            b' ' | b'\t' => {}
            b';' | b'-' | b'+' | b'*' | b'/' | b',' | b'|' | b'&' | b'^' | b')' | b'}' | b']' => {
                ops += 1
            }
            _ => break,
        }
        i += 1;
        if i - q > 8 {
            return None;
        }
    }
    let closing_only = v[q + 1..i]
        .iter()
        .all(|&b| matches!(b, b')' | b' ' | b'\t'));
    (ops > 0 && !closing_only).then_some(i)
}

/// A value that closes a string of an inline script and calls something: `';alert(1)//`,
/// `"-alert(1)-"`. Not markup, but the same attack on a different context. Weak anywhere in
/// the value; strong when the value starts with the quote and ends as a payload does (a line
/// comment, or an operator and the matching quote).
fn script_string_breakout(v: &[u8]) -> Option<Finding> {
    for (q, &b) in v.iter().enumerate() {
        if b != b'\'' && b != b'"' {
            continue;
        }
        let Some(mut i) = quote_then_operator(v, q) else {
            continue;
        };
        let ident_start = i;
        while v
            .get(i)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.'))
        {
            i += 1;
        }
        let first_ok = v
            .get(ident_start)
            .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_' || c == b'$');
        if !first_ok || !matches!(v.get(i), Some(b'(' | b'`' | b'[')) {
            continue;
        }
        let t = trim_ws(v);
        let lead = v.iter().position(|&c| c > b' ').unwrap_or(0);
        // `\'` escapes the quote for a naive escaper; a caller that turns `\` into `/` sends `/'`.
        let starts = lead == q || (lead + 1 == q && matches!(v[lead], b'\\' | b'/'));
        let ends = t.ends_with(b"//")
            || (t.len() >= 2
                && t[t.len() - 1] == b
                && matches!(t[t.len() - 2], b'-' | b'+' | b';' | b'*' | b'|' | b'&'));
        return Some(Finding {
            start: q,
            end: v.len(),
            strong: starts && ends,
        });
    }
    None
}

/// `<![CDATA[<]]>SCRIPT<![CDATA[>]]>`: an XML parser joins CDATA sections with the text
/// around them, so the markers are removed and the rest tokenised again.
fn cdata_view(v: &[u8], best: &mut Best) {
    const OPEN: &[u8] = b"<![cdata[";
    if !v.windows(OPEN.len()).any(|w| w.eq_ignore_ascii_case(OPEN)) {
        return;
    }
    let mut joined = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v.len() - i >= OPEN.len() && v[i..i + OPEN.len()].eq_ignore_ascii_case(OPEN) {
            i += OPEN.len();
        } else if v[i..].starts_with(b"]]>") {
            i += 3;
        } else {
            joined.push(v[i]);
            i += 1;
        }
    }
    let mut inner = Best::default();
    Scan::new(&joined, 0, 0).run(Start::Data, &mut inner);
    if let Some(f) = inner.found {
        best.offer(0, v.len(), f.strong);
    }
}

/// For [`worth_tokenising`]: whether the name before the `=` at `eq` could make an attribute
/// strong on its own (an event handler, `style`, `srcdoc`, `attributeName`).
fn attr_name_before(v: &[u8], eq: usize) -> bool {
    let lo = eq.saturating_sub(LOOKBACK);
    let mut end = eq;
    while end > lo && (is_ws(v[end - 1]) || is_ignored_control(v[end - 1])) {
        end -= 1;
    }
    let mut start = end;
    while start > lo && (v[start - 1].is_ascii_alphabetic() || is_ignored_control(v[start - 1])) {
        start -= 1;
    }
    if start == lo && lo > 0 {
        // A name (or padding) longer than the look-back: let `detect` decide.
        return true;
    }
    let raw = &v[start..end];
    if is_handler_name(raw) {
        return true;
    }
    matches!(
        Name::new(raw).get(),
        b"style" | b"srcdoc" | b"attributename"
    )
}

/// For [`worth_tokenising`]: whether the letters before the `:` at `colon` (whitespace and
/// control bytes skipped) end like a script scheme or `data`.
fn scheme_before(v: &[u8], colon: usize) -> bool {
    let lo = colon.saturating_sub(LOOKBACK);
    let mut tail = [0u8; 6];
    let mut n = 0;
    let mut j = colon;
    while j > lo && n < tail.len() {
        j -= 1;
        let b = v[j];
        if b <= b' ' || b == 0x7f {
            continue;
        }
        if !b.is_ascii_alphabetic() {
            break;
        }
        n += 1;
        tail[tail.len() - n] = b.to_ascii_lowercase();
    }
    if j == lo && lo > 0 && n < tail.len() {
        // Padding longer than the look-back: let `detect` decide.
        return true;
    }
    let word = &tail[tail.len() - n..];
    word == b"script" || word.ends_with(b"data") || word.ends_with(b"mocha")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::decode::canonical;

    fn read(rel: &str) -> String {
        let path = format!("{}/tests/corpus/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// What the caller sees for a wire-form query value.
    fn view(wire: &str) -> Vec<u8> {
        canonical(wire.as_bytes(), true).into_owned()
    }

    /// The pre-check must never hide a finding.
    fn judge(v: &[u8]) -> Option<Finding> {
        let found = detect(v);
        if found.is_some() {
            assert!(
                worth_tokenising(v),
                "worth_tokenising false but detect found: {:?}",
                String::from_utf8_lossy(v)
            );
        }
        found
    }

    fn strong(s: &str) -> bool {
        judge(s.as_bytes()).is_some_and(|f| f.strong)
    }

    fn level(s: &str) -> &'static str {
        match judge(s.as_bytes()) {
            None => "none",
            Some(f) if f.strong => "strong",
            Some(_) => "weak",
        }
    }

    /// Benign values: every line of the plain-text files, and each query value (and path
    /// segment) of the URL lines.
    fn benign_values() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for f in ["man.txt", "quotes.txt", "searches.hand.txt", "words.txt"] {
            for line in read(&format!("benign/{f}")).lines() {
                out.push(line.as_bytes().to_vec());
            }
        }
        for line in read("benign/urls.hand.txt").lines() {
            let (path, query) = line.split_once('?').unwrap_or((line, ""));
            let query = query.split('#').next().unwrap_or("");
            for seg in path.split('/').filter(|s| !s.is_empty()) {
                out.push(canonical(seg.as_bytes(), false).into_owned());
            }
            for pair in query.split('&').filter(|s| !s.is_empty()) {
                let value = pair.split_once('=').map_or(pair, |(_, v)| v);
                out.push(view(value));
            }
        }
        out
    }

    /// Detection on the attack files and findings on benign text; `--nocapture` lists them.
    ///
    /// Accepted: `&ltscript&gtalert(…);&ltscript&gtalert` is missed and
    /// `&ltscript&gtalert(…);</script>` is weak (only its `</script>` is markup): the caller
    /// decodes `&lt;` but not `&lt` without its `;`, and a browser would show either as text,
    /// so they only work against an application that decodes them once more. `<  script >
    /// < / script>` is weak: with spaces after `<` it is no tag for a browser, only a probe of
    /// filters that strip spaces.
    #[test]
    fn corpus_figures() {
        for (file, floor) in [("xss.wfuzz.txt", 0.95), ("xss.hand.txt", 0.95)] {
            let text = read(&format!("evasion/{file}"));
            let (mut total, mut found, mut strong) = (0, 0, 0);
            for line in text.lines().filter(|l| !l.is_empty()) {
                total += 1;
                match judge(&view(line)) {
                    Some(f) => {
                        found += 1;
                        if f.strong {
                            strong += 1;
                        } else {
                            println!("  weak   {file}: {line}");
                        }
                    }
                    None => println!("  missed {file}: {line}"),
                }
            }
            println!("{file}: detected {found}/{total}, strong {strong}/{total}");
            assert!(
                found as f64 >= floor * total as f64,
                "{file} below the floor"
            );
        }
        let values = benign_values();
        let (mut weak, mut strong) = (0, 0);
        for v in &values {
            match judge(v) {
                Some(f) if f.strong => {
                    strong += 1;
                    println!("  STRONG benign: {}", String::from_utf8_lossy(v));
                }
                Some(_) => {
                    weak += 1;
                    println!("  weak benign:   {}", String::from_utf8_lossy(v));
                }
                None => {}
            }
        }
        println!("benign: strong {strong}, weak {weak}, of {}", values.len());
        assert_eq!(strong, 0);
        assert!(weak as f64 <= 0.005 * values.len() as f64);
    }

    /// The attack lines with their spaces turned into what browsers also accept, and upper
    /// case: the finding must not depend on the spelling.
    #[test]
    fn corpus_variants() {
        type Variant = (&'static str, fn(&[u8]) -> Vec<u8>);
        let variants: [Variant; 5] = [
            ("space2tab", |v| {
                v.iter()
                    .map(|&b| if b == b' ' { b'\t' } else { b })
                    .collect()
            }),
            ("space2lf", |v| {
                v.iter()
                    .map(|&b| if b == b' ' { b'\n' } else { b })
                    .collect()
            }),
            ("space2ff", |v| {
                v.iter()
                    .map(|&b| if b == b' ' { 0x0c } else { b })
                    .collect()
            }),
            ("space2slash", |v| {
                v.iter()
                    .map(|&b| if b == b' ' { b'/' } else { b })
                    .collect()
            }),
            ("upper", |v| v.to_ascii_uppercase()),
        ];
        for file in ["xss.wfuzz.txt", "xss.hand.txt"] {
            let text = read(&format!("evasion/{file}"));
            for (name, f) in &variants {
                // Slashes for spaces also turn `SRC="javascript:` into `SRC="//javascript:`,
                // a path rather than a script URL, in a few wfuzz lines: no browser runs those.
                let floor = if *name == "space2slash" { 0.90 } else { 0.95 };
                let (mut total, mut found, mut strong) = (0, 0, 0);
                for line in text.lines().filter(|l| !l.is_empty()) {
                    total += 1;
                    let v = f(&view(line));
                    match judge(&v) {
                        Some(x) => {
                            found += 1;
                            strong += usize::from(x.strong);
                        }
                        None => println!("  missed {file} {name}: {}", String::from_utf8_lossy(&v)),
                    }
                }
                println!("{file} {name}: detected {found}/{total}, strong {strong}/{total}");
                assert!(found as f64 >= floor * total as f64, "{file} {name}");
            }
        }
    }

    #[test]
    fn tags_that_run_or_load_script() {
        for s in [
            "<script>alert(1)</script>",
            "<ScRiPt>alert(1)</sCrIpT>",
            "<script src=//x.example.com/x.js></script>",
            "\"><script>\"",
            "<scr\0ipt>alert(1)</script>",
            "<iframe src=//x.example.com>",
            "<frameset><frame src=x>",
            "<object data=x.swf>",
            "<embed src=x.swf>",
            "<applet code=X>",
            "<base href=//x.example.com/>",
            "<link rel=stylesheet href=//x.example.com/x.css>",
            "<meta http-equiv=refresh content=\"0;url=//x.example.com\">",
            "<math href=//x.example.com>",
            "<style>@import'//x.example.com/x.css';</style>",
            "<style>body{background:url(javascript:alert(1))}</style>",
            "<xml id=x><x>",
            "<import implementation=x.htc>",
            "<isindex type=image src=1>",
            "<?xml-stylesheet href=x.xsl?>",
            "<form action=javascript:alert(1)><input type=submit>",
        ] {
            assert!(strong(s), "{s}: {}", level(s));
        }
    }

    #[test]
    fn event_handlers_without_a_list() {
        for s in [
            "<img src=x onerror=alert(1)>",
            "<svg/onload=alert(1)>",
            "<svg\tonload=alert(1)>",
            "<x onscrollend=alert(1)>",
            "<x onbeforetoggle=alert(1)>",
            "<x onpointerrawupdate=alert(1)>",
            "<div oncontentvisibilityautostatechange=alert(1)>",
            "<x onsomethingnextyear=alert(1)>",
            "<img src=x on\0error=alert(1)>",
            "<img src=x onerror\t=alert(1)>",
            "<img/src=x/onerror=alert(1)>",
            "<img src=x onerror=alert(1)",
            "<svg><set attributeName=onmouseover to=alert(1)>",
        ] {
            assert!(strong(s), "{s}: {}", level(s));
        }
        // A handler needs a value to do anything.
        assert!(!strong("<x onclick>"));
    }

    #[test]
    fn script_urls() {
        for s in [
            "<a href=javascript:alert(1)>x</a>",
            "<a href=\"jav\tascript:alert(1)\">x</a>",
            "<a href=\" \x0e javascript:alert(1)\">x</a>",
            "<IMG SRC=`javascript:alert(1)`>",
            "<a href=\"JaVaScRiPt:alert(1)\">",
            "<a href=vbscript:msgbox(1)>",
            "<object data=\"data:text/html,<script>alert(1)</script>\">",
            "<embed src=\"data:image/svg+xml;base64,PHN2Zz4=\">",
            "<button formaction=javascript:alert(1)>x",
            "<iframe srcdoc=\"&lt;b&gt;\">",
            "<div style=\"width:expression(alert(1))\">",
            "<div style=\"-moz-binding:url(//x.example.com/x.xml#x)\">",
            "<div style=\"behavior: url(x.htc)\">",
            "javascript:alert(1)",
            " java\nscript:alert(1)",
        ] {
            assert!(strong(s), "{s}: {}", level(s));
        }
    }

    #[test]
    fn attribute_contexts() {
        for s in [
            "\" onmouseover=\"alert(1)",
            "' autofocus onfocus=alert(1) '",
            "x onfocus=alert(1) autofocus",
            "\"><svg/onload=alert(1)>",
            "\" style=\"x:expression(alert(1))",
            "' src='javascript:alert(1)",
            "\"><script>",
        ] {
            assert!(strong(s), "{s}: {}", level(s));
        }
    }

    #[test]
    fn comments_and_cdata() {
        for s in [
            "<!--<img src=x onerror=alert(1)>-->",
            "<!--[if gte IE 4]><script>alert(1)</script><![endif]-->",
            "<![CDATA[<]]>SCRIPT<![CDATA[>]]>alert(1);<![CDATA[<]]>/SCRIPT<![CDATA[>]]>",
            "<!x><img src=x onerror=alert(1)>",
        ] {
            assert!(strong(s), "{s}: {}", level(s));
        }
    }

    #[test]
    fn script_string_breakouts() {
        for s in [
            "';alert(1)//",
            "\"-alert(1)-\"",
            "\\\";alert('XSS');//",
            "/\";alert('XSS');//",
        ] {
            assert!(strong(s), "{s}: {}", level(s));
        }
        assert_eq!(level("x = 'a' + f(1)"), "weak");
        assert_eq!(level("alert('hi') not working"), "none");
    }

    #[test]
    fn what_people_type() {
        for s in [
            "a < b > c",
            "x<y",
            "<3",
            "i <3 you",
            "<<",
            "<email@example.com>",
            "if (a<b && c>d)",
            "List<String>",
            "Vec<u8>",
            "<T: Clone>",
            "alert('hi') not working",
            "red shoes",
            "O'Reilly",
            "\"exact phrase\"",
            "<joshk> apache: line 14",
            "<!-- comment -->",
            "<!DOCTYPE html>",
            "<?php echo ?>",
            "<?xml version=\"1.0\"?>",
            "<%= link_to %> rails",
            "what is onclick",
            "he said \"once upon a time\"",
            "it's only one",
            "onClick = handleClick()",
            "const x = {onClick={handle}}",
            "javascript tutorial for beginners",
            "JavaScript: The Good Parts",
            "<iframe> vs <object>",
            "List<Object>",
            "javascript: links",
        ] {
            assert_eq!(level(s), "none", "{s}");
        }
        for s in [
            "<b>bold</b>",
            "<br>",
            "<i>",
            "<p>hello</p>",
            "<a href=\"https://example.com/\">link</a>",
            "html <div> centering",
            "<input type=\"text\">",
        ] {
            assert_eq!(level(s), "none", "{s}");
        }
        for s in [
            "use <script> tag",
            "<script> tag placement",
            "javascript: void(0) meaning",
            "button onClick={handle}",
            "status online=true",
        ] {
            assert_eq!(level(s), "weak", "{s}");
        }
    }

    #[test]
    fn pre_check_is_cheap_and_selective() {
        for s in [
            "red shoes",
            "O'Reilly",
            "\"exact phrase\"",
            "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "2024-05-01",
            "someone@example.com",
            "where 1=1 in sql",
            "export PATH=$PATH:~/bin",
            "https://example.com/a?b=c",
        ] {
            assert!(!worth_tokenising(s.as_bytes()), "{s}");
        }
        for s in ["a<b", "x onclick=y", "' style=x", "javascript:x", "';f()"] {
            assert!(worth_tokenising(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn no_panic_on_hostile_input() {
        let mut fixed: Vec<Vec<u8>> = [
            "<",
            "</",
            "<!",
            "<!-",
            "<!--",
            "<?",
            "<a",
            "<a ",
            "<a b",
            "<a b=",
            "<a b=\"",
            "<a b='",
            "<a b=`",
            "<a b=\"x",
            "<a/",
            "< ",
            "\"",
            "'",
            "'>",
            "\\'",
            "<![CDATA[",
            "]]>",
            "<script",
            "<script>",
            "</script",
            "<style>",
            "javascript",
            "javascript:",
            "data:",
            "data:text/html",
            "<a href=data:",
            "on=",
            "=",
            "<a =x>",
            "<a on=>",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        fixed.push(vec![0xff, b'<', 0x80, b'>', 0]);
        fixed.push(vec![b'<'; 9000]);
        fixed.push(b"<a ".repeat(3000));
        fixed.push(b"<script>".repeat(1000));
        fixed.push(b"<a b=\"".repeat(2000));
        fixed.push(b"' onx=".repeat(2000));
        fixed.push(b"<![CDATA[".repeat(1000));
        fixed.push([b"e".as_slice(), &[b' '; 8000]].concat());
        fixed.push(
            b"<div style="
                .iter()
                .chain([b'e'; 9000].iter())
                .copied()
                .collect(),
        );
        fixed.push(vec![b'x'; 200_000]);
        for v in &fixed {
            let _ = judge(v);
        }
        // Deterministic fuzz: bytes drawn mostly from the characters that drive the states.
        let alphabet = b"<>/!?-=\"'` \t\n\0\x0eaonsrcipt:[]CDATA(;)\\";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 5 == 0 {
                        (r >> 8) as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            if let Some(f) = judge(&v) {
                assert!(f.start <= f.end && f.end <= v.len(), "{f:?} for {v:?}");
            }
        }
    }

    #[test]
    fn long_input_is_linear() {
        let v = b"<a b=\"x\" c=y ".repeat(5000);
        let start = std::time::Instant::now();
        for _ in 0..10 {
            let _ = judge(&v);
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    /// `cargo test --release --lib signature::xss -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn cost_per_benign_value() {
        let values = benign_values();
        let rounds = 50;
        let start = std::time::Instant::now();
        let mut hits = 0usize;
        for _ in 0..rounds {
            for v in &values {
                let v = std::hint::black_box(v.as_slice());
                if worth_tokenising(v) && detect(v).is_some() {
                    hits += 1;
                }
            }
        }
        let per = start.elapsed().as_nanos() as f64 / (rounds * values.len()) as f64;
        let start = std::time::Instant::now();
        let mut worth = 0usize;
        for _ in 0..rounds {
            for v in &values {
                worth += usize::from(worth_tokenising(std::hint::black_box(v.as_slice())));
            }
        }
        let pre = start.elapsed().as_nanos() as f64 / (rounds * values.len()) as f64;
        println!("{pre:.1} ns per benign value for worth_tokenising alone ({worth} true)");
        // A floor to read the figures against on a loaded machine: one plain byte search.
        let start = std::time::Instant::now();
        let mut lt = 0usize;
        for _ in 0..rounds {
            for v in &values {
                lt += usize::from(std::hint::black_box(v.as_slice()).contains(&b'<'));
            }
        }
        let floor = start.elapsed().as_nanos() as f64 / (rounds * values.len()) as f64;
        println!("{floor:.1} ns per benign value for a bare search for `<` ({lt} true)");
        let worth = values.iter().filter(|v| worth_tokenising(v)).count();
        println!(
            "{per:.1} ns per benign value ({} values, {worth} worth tokenising, {} hits)",
            values.len(),
            hits / rounds
        );
    }
}
