//! SQL injection recognised by tokenising, not by pattern.
//!
//! A regular expression sees characters; an injection is a change of *grammar*: a value that
//! was meant to be one literal closes it and goes on as SQL. So the value is lexed as SQL the
//! way a database would read it after pasting it into a query, in three contexts: as it is (a
//! number or bare word, `id=1 AND 2=2`), as the rest of an open single-quoted string (the first
//! `'` closes the literal, `name=x' OR 'a'='a`) and as the rest of an open double-quoted one.
//! Each context yields a short token sequence (at most [`MAX_TOKENS`] significant tokens), and a
//! few rules judge whether that sequence is a plausible injection: a boolean condition with a
//! comparison or a known function right after the literal, `UNION SELECT`, a stacked statement
//! with its own structure (`; DROP TABLE x`), `ORDER BY n`, and so on.
//!
//! Precision comes first, because a false positive blocks a real person. Free text people type
//! rarely has the shape of a closed literal followed by a logic operator and a comparison, but
//! it does contain SQL words (`rock and roll`, `select * from users`, `Guns N' -- Roses`), so
//! the rules ask for structure, and what could still be text is reported as weak.
//!
//! Everything is bounded: the lexer moves forward on every step, each context examines a fixed
//! number of tokens held in an array on the stack, and nothing allocates.
//!
//! # Input
//!
//! One value at a time, already decoded (percent escapes, `+`, entities, full-width and
//! overlong forms folded): a query parameter's value without its name, or one path segment.
//! The contexts assume the value is the whole literal the application pastes into its query,
//! so a joined query string or a whole path would read as text and be missed. Closed `/* */`
//! comments count as spaces, MySQL's `/*! ... */` comments are lexed as SQL, and a `--`
//! comment needs a space, control character, `-` or quote after it (so `--verbose` is not one).

/// Where in the value the injection was recognised, and how sure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    /// Byte offset where the injection starts: the quote that closes the literal, or the
    /// first token after the value's own literal.
    pub(crate) start: usize,
    /// Byte offset just past the last token the deciding rule examined (`start <= end <=
    /// value.len()`).
    pub(crate) end: usize,
    /// False for what free text could also be (`admin'--`, `select * from users`, `1 or true`).
    pub(crate) strong: bool,
}

/// How many significant tokens one context examines. Injections put their decisive part at
/// the front (the break-out and the first condition or statement); what follows is detail.
const MAX_TOKENS: usize = 24;

/// Tokens lexed before deciding whether a context is worth lexing further: enough to reach
/// the token after the value's literal (at most two tokens) and four closing parentheses.
const ENTRY_TOKENS: usize = 8;

/// Longest bareword compared against the keyword and function lists.
const MAX_WORD: usize = 32;

/// Cheap pre-check: false means [`detect`] would certainly return `None` (used to skip plain
/// values).
///
/// Every rule of [`detect`] that can report a finding needs punctuation that SQL uses for
/// structure (a parenthesis, `=`, `;`, `#`, `--`, `/*`, `||`, `&&`), or one of
/// the words an injection is built from (`union`, `select`, `and`, `or`, `like`, `order`,
/// `exec`, ...) next to a quote or digit (`' or 1`, `1 or true`), or for `union` and `select`
/// a comma or `*` (`x union select null,null`). So `don't stop`, `rock and roll` and `2024-01-01` are passed
/// over, and so are `<`, `>` and `@` alone (a comparison needs a logic word and a literal
/// besides; `@@version` a function or logic word); so is a statement made of words alone (`union select name from users`), which could
/// only be a weak finding. The first pass is a table lookup per byte without branches; the
/// second, over words, runs only when such a hint is present. No allocation.
pub(crate) fn worth_tokenising(value: &[u8]) -> bool {
    let mut seen = 0u8;
    let mut hit = 0u8;
    let (mut prev, mut prev_k) = (0u8, 0u8);
    for &c in value {
        let k = BYTE_CLASS[usize::from(c)];
        seen |= k;
        hit |= k & STRUCTURE;
        hit |= k & PAIRED & 0u8.wrapping_sub(u8::from(prev == c)); // `--`, `||`, `&&`
        hit |= (prev_k << 1) & k & STAR; // `/*`
        prev = c;
        prev_k = k;
    }
    if hit != 0 {
        return true;
    }
    if seen & (LITERAL | LIST) == 0 || seen & LETTER == 0 {
        return false;
    }
    // `union`/`select` need a literal or a list; the other words a literal
    let literal = seen & LITERAL != 0;
    for w in value.split(|&c| BYTE_CLASS[usize::from(c)] & WORD == 0) {
        match trigger_word(w) {
            Trigger::Alone => return true,
            Trigger::WithLiteral if literal => return true,
            _ => {}
        }
    }
    false
}

const WORD: u8 = 1;
const STRUCTURE: u8 = 2;
/// A quote or digit: what a condition has besides words.
const LITERAL: u8 = 4;
const PAIRED: u8 = 8;
const LETTER: u8 = 16;
const SLASH: u8 = 32;
/// `SLASH << 1`, so that a `/` before a `*` shifts onto it.
const STAR: u8 = 64;
/// A comma or `*`: what a select list has besides words.
const LIST: u8 = 128;

/// What each byte means to [`worth_tokenising`].
static BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0usize;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_digit() {
            WORD | LITERAL
        } else if b.is_ascii_alphabetic() {
            WORD | LETTER
        } else if b == b'_' || b == b'$' || b >= 0x80 {
            WORD
        } else {
            match b {
                b'(' | b'#' | b';' | b'=' => STRUCTURE,
                b'\'' | b'"' | b'`' => LITERAL,
                b',' => LIST,
                b'*' => STAR | LIST,
                b'-' | b'|' | b'&' => PAIRED,
                b'/' => SLASH,
                _ => 0,
            }
        };
        c += 1;
    }
    t
};

enum Trigger {
    None,
    WithLiteral,
    Alone,
}

/// Whether a word of a value makes it worth lexing (see [`worth_tokenising`]).
fn trigger_word(w: &[u8]) -> Trigger {
    // first letters per length of the words below (bit 0 for `a`), so that most words of a
    // text are passed over without a comparison
    const FIRST: [u32; 9] = [
        0, 0, 0x4000, 0x802009, 0x80910, 0x124062, 0x60080, 0x400010, 0x40000,
    ];
    let first = w
        .first()
        .map_or(0, |c| c.to_ascii_lowercase().wrapping_sub(b'a'));
    if !FIRST
        .get(w.len())
        .is_some_and(|&m| first < 26 && m & (1 << first) != 0)
    {
        return Trigger::None;
    }
    const ALONE: [u64; 2] = [pack_const(b"union"), pack_const(b"select")];
    const WITH_LITERAL: [u64; 19] = [
        pack_const(b"and"),
        pack_const(b"or"),
        pack_const(b"xor"),
        pack_const(b"like"),
        pack_const(b"rlike"),
        pack_const(b"regexp"),
        pack_const(b"not"),
        pack_const(b"div"),
        pack_const(b"order"),
        pack_const(b"group"),
        pack_const(b"having"),
        pack_const(b"exec"),
        pack_const(b"execute"),
        pack_const(b"waitfor"),
        pack_const(b"into"),
        pack_const(b"begin"),
        pack_const(b"shutdown"),
        pack_const(b"true"),
        pack_const(b"false"),
    ];
    match pack(w) {
        Some(x) if ALONE.contains(&x) => Trigger::Alone,
        Some(x) if WITH_LITERAL.contains(&x) => Trigger::WithLiteral,
        _ => Trigger::None,
    }
}

/// Judges one already-decoded parameter value (or path segment).
///
/// Returns the strongest finding of the three contexts (as-is, after an open `'`, after an
/// open `"`); a strong one wins over a weak one, and the earliest context wins a tie.
pub(crate) fn detect(value: &[u8]) -> Option<Finding> {
    if !worth_tokenising(value) {
        return None;
    }
    let mut best = judge_context(value, None);
    if best.is_some_and(|b| b.strong) {
        return best;
    }
    for q in [b'\'', b'"'] {
        if let Some(p) = value.iter().position(|&c| c == q) {
            if let Some(f) = judge_context(value, Some(p)) {
                if best.is_none_or(|b| f.strong && !b.strong) {
                    best = Some(f);
                }
                if f.strong {
                    return best;
                }
            }
        }
    }
    best
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    Select,
    Union,
    All,
    Distinct,
    From,
    Where,
    Insert,
    Update,
    Delete,
    Drop,
    Create,
    Alter,
    Truncate,
    Exec,
    Waitfor,
    Delay,
    Time,
    Having,
    Order,
    Group,
    By,
    Limit,
    Offset,
    Into,
    Outfile,
    Case,
    When,
    Then,
    Else,
    End,
    Null,
    True,
    False,
    Like,
    In,
    Is,
    Not,
    Between,
    Declare,
    Shutdown,
    Set,
    Table,
    Values,
    Procedure,
    Call,
    Begin,
    Top,
    As,
    Replace,
    Object,
}

/// How much a function call says about the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fun {
    /// Used for time delays, error-based extraction or file access: an attack's payload.
    Danger,
    /// Common in injections and in SQL generally (`char`, `concat`, `version`, `if`, ...).
    Known,
    /// Any other word followed by `(`.
    Plain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum T {
    /// A quoted literal or identifier; `closed` is false when it runs to the end of the value.
    Str {
        closed: bool,
    },
    Num,
    Word,
    Kw(Kw),
    Func(Fun),
    /// `AND`, `OR`, `XOR`, `&&`, `||`.
    Logic,
    /// `=`, `<>`, `!=`, `<`, `>`, `<=`, `>=`, `<=>`, `:=` (the word operators `LIKE`, `RLIKE`,
    /// `REGEXP` are the keyword [`Kw::Like`]).
    Cmp,
    /// Arithmetic and bitwise operators, and `::`.
    Op,
    /// `@var`; `sys` is true for `@@version` and the like.
    Var {
        sys: bool,
    },
    Comma,
    Semi,
    LParen,
    RParen,
    /// A `--` or `#` comment, or an unterminated `/*`.
    Comment,
    /// Any other punctuation (`{`, `!`, `.`, `?`, ...).
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    t: T,
    s: usize,
    e: usize,
}

const NO_TOK: Tok = Tok {
    t: T::Other,
    s: 0,
    e: 0,
};

/// At most [`MAX_TOKENS`] tokens of one context, on the stack.
struct Toks {
    buf: [Tok; MAX_TOKENS],
    n: usize,
    /// More tokens followed that were not kept.
    truncated: bool,
}

impl Toks {
    fn slice(&self) -> &[Tok] {
        self.buf.get(..self.n).unwrap_or(&[])
    }
    fn push(&mut self, t: Tok) -> bool {
        match self.buf.get_mut(self.n) {
            Some(slot) => {
                *slot = t;
                self.n += 1;
                true
            }
            None => {
                self.truncated = true;
                false
            }
        }
    }
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Spaces a database skips: ASCII whitespace, vertical tab, other controls and the
/// no-break space (a lone `0xA0` byte, as MySQL treats it).
fn is_space(c: u8) -> bool {
    c <= b' ' || c == 0x7f || c == 0xa0
}

/// Lower-cases `w` into `buf`; `None` when it does not fit (then it is no keyword).
fn lower<'b>(w: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let out = buf.get_mut(..w.len())?;
    for (o, &c) in out.iter_mut().zip(w) {
        *o = c.to_ascii_lowercase();
    }
    Some(out)
}

#[derive(Clone, Copy)]
enum WordKind {
    Kw(Kw),
    Logic,
    Op,
    Word,
}

/// For each length, the first letters (bit 0 for `a`) of the words [`classify_word`] knows:
/// most words of a text are ruled out by this alone, before any comparison. A word added to
/// `classify_word` must be added here (the `prefilters_know_every_word` test checks).
const KEYWORD_FIRST: [u32; 12] = [
    0x0, 0x0, 0x4103, 0x8c3019, 0x78297c, 0x5a496b, 0x36419c, 0x4e401a, 0xc0028, 0x8100, 0x0, 0x8,
];

fn classify_word(w: &[u8]) -> WordKind {
    let first = w
        .first()
        .map_or(0, |c| c.to_ascii_lowercase().wrapping_sub(b'a'));
    let known = KEYWORD_FIRST
        .get(w.len())
        .is_some_and(|&m| first < 26 && m & (1 << first) != 0);
    if !known {
        return WordKind::Word;
    }
    let Some(x) = pack(w) else {
        // the few keywords longer than eight letters
        let mut buf = [0u8; MAX_WORD];
        return match lower(w, &mut buf) {
            Some(b"intersect") => WordKind::Kw(Kw::Union),
            Some(b"distinctrow") => WordKind::Kw(Kw::Distinct),
            Some(b"procedure") => WordKind::Kw(Kw::Procedure),
            _ => WordKind::Word,
        };
    };
    match KEYWORDS.binary_search_by_key(&x, |e| e.0) {
        Ok(at) => KEYWORDS.get(at).map_or(WordKind::Word, |e| e.1),
        Err(_) => WordKind::Word,
    }
}

/// The keywords of up to eight letters, for [`classify_word`].
const KEYWORD_LIST: [(&[u8], WordKind); 69] = [
    (b"and", WordKind::Logic),
    (b"or", WordKind::Logic),
    (b"xor", WordKind::Logic),
    (b"div", WordKind::Op),
    (b"mod", WordKind::Op),
    (b"select", WordKind::Kw(Kw::Select)),
    (b"union", WordKind::Kw(Kw::Union)),
    (b"except", WordKind::Kw(Kw::Union)),
    (b"all", WordKind::Kw(Kw::All)),
    (b"distinct", WordKind::Kw(Kw::Distinct)),
    (b"from", WordKind::Kw(Kw::From)),
    (b"where", WordKind::Kw(Kw::Where)),
    (b"insert", WordKind::Kw(Kw::Insert)),
    (b"update", WordKind::Kw(Kw::Update)),
    (b"delete", WordKind::Kw(Kw::Delete)),
    (b"drop", WordKind::Kw(Kw::Drop)),
    (b"create", WordKind::Kw(Kw::Create)),
    (b"alter", WordKind::Kw(Kw::Alter)),
    (b"truncate", WordKind::Kw(Kw::Truncate)),
    (b"exec", WordKind::Kw(Kw::Exec)),
    (b"execute", WordKind::Kw(Kw::Exec)),
    (b"waitfor", WordKind::Kw(Kw::Waitfor)),
    (b"delay", WordKind::Kw(Kw::Delay)),
    (b"time", WordKind::Kw(Kw::Time)),
    (b"having", WordKind::Kw(Kw::Having)),
    (b"order", WordKind::Kw(Kw::Order)),
    (b"group", WordKind::Kw(Kw::Group)),
    (b"by", WordKind::Kw(Kw::By)),
    (b"limit", WordKind::Kw(Kw::Limit)),
    (b"offset", WordKind::Kw(Kw::Offset)),
    (b"into", WordKind::Kw(Kw::Into)),
    (b"outfile", WordKind::Kw(Kw::Outfile)),
    (b"dumpfile", WordKind::Kw(Kw::Outfile)),
    (b"case", WordKind::Kw(Kw::Case)),
    (b"when", WordKind::Kw(Kw::When)),
    (b"then", WordKind::Kw(Kw::Then)),
    (b"else", WordKind::Kw(Kw::Else)),
    (b"end", WordKind::Kw(Kw::End)),
    (b"null", WordKind::Kw(Kw::Null)),
    (b"true", WordKind::Kw(Kw::True)),
    (b"false", WordKind::Kw(Kw::False)),
    (b"like", WordKind::Kw(Kw::Like)),
    (b"rlike", WordKind::Kw(Kw::Like)),
    (b"regexp", WordKind::Kw(Kw::Like)),
    (b"ilike", WordKind::Kw(Kw::Like)),
    (b"similar", WordKind::Kw(Kw::Like)),
    (b"glob", WordKind::Kw(Kw::Like)),
    (b"in", WordKind::Kw(Kw::In)),
    (b"is", WordKind::Kw(Kw::Is)),
    (b"not", WordKind::Kw(Kw::Not)),
    (b"between", WordKind::Kw(Kw::Between)),
    (b"declare", WordKind::Kw(Kw::Declare)),
    (b"shutdown", WordKind::Kw(Kw::Shutdown)),
    (b"set", WordKind::Kw(Kw::Set)),
    (b"table", WordKind::Kw(Kw::Table)),
    (b"values", WordKind::Kw(Kw::Values)),
    (b"call", WordKind::Kw(Kw::Call)),
    (b"begin", WordKind::Kw(Kw::Begin)),
    (b"top", WordKind::Kw(Kw::Top)),
    (b"as", WordKind::Kw(Kw::As)),
    (b"replace", WordKind::Kw(Kw::Replace)),
    (b"database", WordKind::Kw(Kw::Object)),
    (b"schema", WordKind::Kw(Kw::Object)),
    (b"view", WordKind::Kw(Kw::Object)),
    (b"function", WordKind::Kw(Kw::Object)),
    (b"user", WordKind::Kw(Kw::Object)),
    (b"index", WordKind::Kw(Kw::Object)),
    (b"trigger", WordKind::Kw(Kw::Object)),
    (b"login", WordKind::Kw(Kw::Object)),
];

/// [`KEYWORD_LIST`] packed into integers and sorted: a lookup is a binary search over
/// integers, not a string comparison per keyword.
static KEYWORDS: [(u64, WordKind); KEYWORD_LIST.len()] = {
    let mut t = [(0u64, WordKind::Word); KEYWORD_LIST.len()];
    let mut i = 0;
    while i < t.len() {
        t[i] = (pack_const(KEYWORD_LIST[i].0), KEYWORD_LIST[i].1);
        // insertion sort, at compile time
        let mut j = i;
        while j > 0 && t[j - 1].0 > t[j].0 {
            let x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
            j -= 1;
        }
        i += 1;
    }
    t
};

/// A word of one to eight bytes as an integer, ASCII letters lower-cased (`| 0x20` maps no
/// other word byte onto a letter); `None` when longer.
fn pack(w: &[u8]) -> Option<u64> {
    if w.is_empty() || w.len() > 8 {
        return None;
    }
    Some(w.iter().fold(0u64, |x, &c| x << 8 | u64::from(c | 0x20)))
}

/// [`pack`] for constants (the lists here are lower case and at most eight letters).
const fn pack_const(w: &[u8]) -> u64 {
    let mut x = 0u64;
    let mut i = 0;
    while i < w.len() && i < 8 {
        x = x << 8 | (w[i] | 0x20) as u64;
        i += 1;
    }
    x
}

fn classify_func(w: &[u8]) -> Fun {
    let mut buf = [0u8; MAX_WORD];
    let Some(lw) = lower(w, &mut buf) else {
        return Fun::Plain;
    };
    match lw {
        b"sleep"
        | b"benchmark"
        | b"pg_sleep"
        | b"extractvalue"
        | b"updatexml"
        | b"load_file"
        | b"dbms_pipe.receive_message"
        | b"dbms_lock.sleep"
        | b"user_lock.sleep"
        | b"utl_inaddr.get_host_address"
        | b"utl_inaddr.get_host_name"
        | b"utl_http.request"
        | b"randomblob"
        | b"generate_series"
        | b"xp_cmdshell"
        | b"gtid_subset"
        | b"json_keys"
        | b"ctxsys.drithsx.sn"
        | b"dbms_utility.sqlid_to_sqlhash"
        | b"xmltype"
        | b"regexp_substring"
        | b"make_set"
        | b"elt"
        | b"exp"
        | b"name_const"
        | b"polygon"
        | b"multipoint"
        | b"geometrycollection"
        | b"linestring"
        | b"multilinestring"
        | b"multipolygon"
        | b"procedure_analyse"
        | b"crypt_key"
        | b"sys.fn_sqlvarbasetostr"
        | b"openrowset"
        | b"opendatasource"
        | b"xp_dirtree"
        | b"master..xp_dirtree"
        | b"master..xp_cmdshell"
        | b"dbms_xmlgen.getxml"
        | b"dbms_java.runjava"
        | b"sys_context"
        | b"pg_read_file"
        | b"lo_import"
        | b"copy" => Fun::Danger,
        b"char"
        | b"chr"
        | b"concat"
        | b"concat_ws"
        | b"ascii"
        | b"ord"
        | b"substring"
        | b"substr"
        | b"mid"
        | b"version"
        | b"database"
        | b"user"
        | b"current_user"
        | b"system_user"
        | b"session_user"
        | b"schema"
        | b"if"
        | b"iif"
        | b"count"
        | b"cast"
        | b"convert"
        | b"hex"
        | b"unhex"
        | b"md5"
        | b"sha1"
        | b"length"
        | b"len"
        | b"upper"
        | b"lower"
        | b"rand"
        | b"floor"
        | b"group_concat"
        | b"nullif"
        | b"ifnull"
        | b"coalesce"
        | b"isnull"
        | b"db_name"
        | b"user_name"
        | b"row"
        | b"analyse"
        | b"left"
        | b"right"
        | b"repeat"
        | b"char_length"
        | b"bitcount"
        | b"now"
        | b"sysdate"
        | b"nchar"
        | b"unicode"
        | b"table_name"
        | b"column_name"
        | b"exists"
        | b"decode"
        | b"instr"
        | b"locate"
        | b"reverse"
        | b"bitstring_to_binary"
        | b"like"
        | b"has_dbaccess"
        | b"is_srvrolemember"
        | b"quote_ident"
        | b"xmlelement"
        | b"to_char"
        | b"str"
        | b"space"
        | b"name" => Fun::Known,
        _ => Fun::Plain,
    }
}

struct Lexer<'a> {
    b: &'a [u8],
    i: usize,
    /// Open MySQL executable comments (`/*! ... */`): their close is skipped like a space.
    exec_open: u32,
}

impl<'a> Lexer<'a> {
    fn at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    /// Skips spaces and closed `/* */` comments (an alternative space); opens `/*!` comments.
    fn skip_space(&mut self) {
        loop {
            match self.at(0) {
                Some(c) if is_space(c) => self.i += 1,
                Some(0xc2) if self.at(1) == Some(0xa0) => self.i += 2,
                Some(b'/') if self.at(1) == Some(b'*') => {
                    if self.at(2) == Some(b'!') {
                        self.i += 3;
                        while self.at(0).is_some_and(|c| c.is_ascii_digit()) {
                            self.i += 1;
                        }
                        self.exec_open = self.exec_open.saturating_add(1);
                        continue;
                    }
                    let rest = self.b.get(self.i + 2..).unwrap_or(&[]);
                    match rest.windows(2).position(|w| w == b"*/") {
                        Some(p) => self.i += 2 + p + 2,
                        None => return, // unterminated: lexed as a comment token
                    }
                }
                Some(b'*') if self.exec_open > 0 && self.at(1) == Some(b'/') => {
                    self.exec_open -= 1;
                    self.i += 2;
                }
                _ => return,
            }
        }
    }

    fn next(&mut self) -> Option<Tok> {
        self.skip_space();
        let s = self.i;
        let c = self.at(0)?;
        let t = match c {
            b'\'' | b'"' | b'`' => self.string(c),
            b'0'..=b'9' => self.number(),
            b'.' if self.at(1).is_some_and(|d| d.is_ascii_digit()) => self.number(),
            b'@' => {
                let sys = self.at(1) == Some(b'@');
                self.i += if sys { 2 } else { 1 };
                while self
                    .at(0)
                    .is_some_and(|c| is_word_byte(c) || c == b'.' || c == b'@')
                {
                    self.i += 1;
                }
                T::Var { sys }
            }
            b'#' => self.line_comment(),
            b'-' if self.at(1) == Some(b'-')
                && self
                    .at(2)
                    .is_none_or(|c| is_space(c) || matches!(c, b'-' | b'\'' | b'"')) =>
            {
                self.line_comment()
            }
            b'/' if self.at(1) == Some(b'*') => {
                // only an unterminated block comment reaches here
                self.i = self.b.len();
                T::Comment
            }
            b'(' => self.one(T::LParen),
            b')' => self.one(T::RParen),
            b',' => self.one(T::Comma),
            b';' => self.one(T::Semi),
            b'=' => self.one(T::Cmp),
            b'<' | b'>' | b'!' => {
                self.i += 1;
                while self.at(0).is_some_and(|c| matches!(c, b'=' | b'>' | b'<')) {
                    self.i += 1;
                }
                if c == b'!' && self.i == s + 1 {
                    T::Other
                } else {
                    T::Cmp
                }
            }
            b'&' | b'|' if self.at(1) == Some(c) => {
                self.i += 2;
                T::Logic
            }
            b':' if self.at(1) == Some(b'=') => {
                self.i += 2;
                T::Cmp
            }
            b':' if self.at(1) == Some(b':') => {
                self.i += 2;
                T::Op
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'|' | b'&' | b'~' => self.one(T::Op),
            c if is_word_byte(c) => self.word(),
            _ => self.one(T::Other),
        };
        // every token consumes at least one byte, so lexing always ends
        self.i = self.i.max(s + 1).min(self.b.len());
        Some(Tok { t, s, e: self.i })
    }

    fn one(&mut self, t: T) -> T {
        self.i += 1;
        t
    }

    fn line_comment(&mut self) -> T {
        let rest = self.b.get(self.i..).unwrap_or(&[]);
        self.i += rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
        T::Comment
    }

    /// A quoted literal: doubled quotes and backslash escapes stay inside; unterminated
    /// literals run to the end.
    fn string(&mut self, q: u8) -> T {
        self.i += 1;
        loop {
            match self.at(0) {
                None => return T::Str { closed: false },
                Some(b'\\') if q != b'`' => self.i = (self.i + 2).min(self.b.len()),
                Some(c) if c == q => {
                    if self.at(1) == Some(q) {
                        self.i += 2;
                    } else {
                        self.i += 1;
                        return T::Str { closed: true };
                    }
                }
                Some(_) => self.i += 1,
            }
        }
    }

    fn number(&mut self) -> T {
        if self.at(0) == Some(b'0') && matches!(self.at(1), Some(b'x' | b'X' | b'b' | b'B')) {
            self.i += 2;
            while self.at(0).is_some_and(|c| c.is_ascii_hexdigit()) {
                self.i += 1;
            }
            return T::Num;
        }
        while self.at(0).is_some_and(|c| c.is_ascii_digit() || c == b'.') {
            self.i += 1;
        }
        if matches!(self.at(0), Some(b'e' | b'E')) {
            let d = if matches!(self.at(1), Some(b'+' | b'-')) {
                2
            } else {
                1
            };
            if self.at(d).is_some_and(|c| c.is_ascii_digit()) {
                self.i += d;
                while self.at(0).is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
            }
        }
        T::Num
    }

    /// A bareword, with dotted parts (`master..xp_cmdshell`, `dbms_pipe.receive_message`);
    /// a keyword, a word operator, or a function when `(` follows.
    fn word(&mut self) -> T {
        let s = self.i;
        while self.at(0).is_some_and(is_word_byte)
            && !(self.at(0) == Some(0xc2) && self.at(1) == Some(0xa0))
            || (self.at(0) == Some(b'.')
                && self.at(1).is_some_and(|c| is_word_byte(c) || c == b'.'))
        {
            self.i += 1;
        }
        let w = self.b.get(s..self.i).unwrap_or(&[]);
        let kind = classify_word(w);
        // a function call: `(` after optional spaces and comments
        let save = (self.i, self.exec_open);
        self.skip_space();
        let call = self.at(0) == Some(b'(');
        (self.i, self.exec_open) = save;
        match kind {
            WordKind::Logic => T::Logic,
            WordKind::Op => T::Op,
            WordKind::Kw(k) => {
                // words that are also functions: `user()`, `database()`, `schema()`, `if(`,
                // `replace(`, `left(`
                if call && matches!(k, Kw::Object | Kw::Replace | Kw::Like) {
                    T::Func(Fun::Known)
                } else {
                    T::Kw(k)
                }
            }
            WordKind::Word if call => T::Func(classify_func(w)),
            WordKind::Word => T::Word,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Judging

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Level {
    No,
    Weak,
    Strong,
}

/// One context: `quote` is the position of the quote that closes the literal the value is
/// assumed to continue, or `None` for the value as-is.
fn judge_context(b: &[u8], quote: Option<usize>) -> Option<Finding> {
    let mut toks = Toks {
        buf: [NO_TOK; MAX_TOKENS],
        n: 0,
        truncated: false,
    };
    let from = match quote {
        Some(p) => {
            toks.push(Tok {
                t: T::Str { closed: true },
                s: 0,
                e: p + 1,
            });
            p + 1
        }
        None => 0,
    };
    let mut lx = Lexer {
        b,
        i: from,
        exec_open: 0,
    };
    // Lex only as far as the token the rules turn on (after the value's own literal and any
    // closing parentheses); most text is ruled out there, before the rest is lexed.
    loop {
        let head = Judge {
            b,
            ts: toks.slice(),
            truncated: false,
            quoted: quote.is_some(),
        };
        if head.entry().0 < toks.n || toks.n >= ENTRY_TOKENS {
            if !head.promising() {
                return None;
            }
            break;
        }
        match lx.next() {
            Some(t) => {
                toks.push(t);
            }
            None => {
                if !head.promising() {
                    return None;
                }
                break;
            }
        }
    }
    while let Some(t) = lx.next() {
        if !toks.push(t) {
            break;
        }
    }
    let j = Judge {
        b,
        ts: toks.slice(),
        truncated: toks.truncated,
        quoted: quote.is_some(),
    };
    let (level, start, end) = j.judge();
    let start = match quote {
        Some(p) => p,
        None => start,
    }
    .min(b.len());
    match level {
        Level::No => None,
        l => Some(Finding {
            start,
            end: end.clamp(start, b.len()),
            strong: l == Level::Strong,
        }),
    }
}

struct Judge<'a> {
    b: &'a [u8],
    ts: &'a [Tok],
    truncated: bool,
    quoted: bool,
}

/// A comparison's operand ranges as token indices: the left operand ends at `.0`, the right
/// one spans `.1..2`.
type Comparison = (usize, usize, usize);

/// What a stretch of tokens contains.
#[derive(Clone, Copy, Default)]
struct Flags {
    danger: bool,
    known_func: bool,
    subquery: bool,
    case: bool,
    sys_var: bool,
    cmp: bool,
    word: bool,
}

impl Flags {
    fn signal(&self) -> bool {
        self.danger || self.known_func || self.subquery || self.case || self.sys_var
    }
}

impl<'a> Judge<'a> {
    fn t(&self, i: usize) -> Option<T> {
        self.ts.get(i).map(|t| t.t)
    }

    fn is(&self, i: usize, t: T) -> bool {
        self.t(i) == Some(t)
    }

    fn kw(&self, i: usize, k: Kw) -> bool {
        self.t(i) == Some(T::Kw(k))
    }

    fn text(&self, i: usize) -> &'a [u8] {
        self.ts
            .get(i)
            .and_then(|t| self.b.get(t.s..t.e))
            .unwrap_or(&[])
    }

    /// Where the token before `i` ends (the last token's end when `i` is past them).
    fn end_of(&self, i: usize) -> usize {
        i.min(self.ts.len())
            .checked_sub(1)
            .and_then(|k| self.ts.get(k))
            .map_or(0, |t| t.e)
    }

    fn start_of(&self, i: usize) -> usize {
        self.ts.get(i).map_or(self.b.len(), |t| t.s)
    }

    /// The token sequence is exhausted at `i` (or was cut off there).
    fn at_end(&self, i: usize) -> bool {
        i >= self.ts.len()
    }

    /// After `i` there is nothing but an end, a comment or a statement separator.
    fn ends(&self, i: usize) -> bool {
        self.at_end(i) || matches!(self.t(i), Some(T::Comment | T::Semi))
    }

    fn flags(&self, a: usize, z: usize) -> Flags {
        let mut f = Flags::default();
        let mut prev: Option<T> = None;
        for t in self.ts.get(a..z.min(self.ts.len())).unwrap_or(&[]) {
            match t.t {
                T::Func(Fun::Danger) => f.danger = true,
                T::Func(Fun::Known) => f.known_func = true,
                T::Kw(Kw::Select) if prev == Some(T::LParen) => f.subquery = true,
                T::Kw(Kw::When) => f.case = true,
                T::Var { sys: true } => f.sys_var = true,
                T::Cmp | T::Kw(Kw::Like) | T::Kw(Kw::Between) | T::Kw(Kw::Is) => f.cmp = true,
                T::Word => f.word = true,
                _ => {}
            }
            prev = Some(t.t);
        }
        f
    }

    /// The index after the parenthesis that closes the one at `i` (or the end).
    fn group_end(&self, i: usize) -> usize {
        let mut depth = 0u32;
        let mut k = i;
        while let Some(t) = self.t(k) {
            match t {
                T::LParen => depth += 1,
                T::RParen => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return k + 1;
                    }
                }
                _ => {}
            }
            k += 1;
        }
        k
    }

    /// One operand: a literal, variable, word, call, parenthesised group or `CASE ... END`.
    fn operand(&self, i: usize) -> Option<usize> {
        match self.t(i)? {
            T::Kw(Kw::Not) | T::Op | T::Other => {
                let op = self.text(i);
                if matches!(op, b"-" | b"+" | b"~" | b"!") || self.kw(i, Kw::Not) {
                    self.operand(i + 1)
                } else {
                    None
                }
            }
            T::Num
            | T::Str { .. }
            | T::Var { .. }
            | T::Word
            | T::Kw(Kw::Null | Kw::True | Kw::False | Kw::Object) => Some(i + 1),
            T::Func(_) => {
                if self.is(i + 1, T::LParen) {
                    Some(self.group_end(i + 1))
                } else {
                    Some(i + 1)
                }
            }
            T::LParen => Some(self.group_end(i)),
            T::Kw(Kw::Case) => {
                let mut k = i + 1;
                while k < self.ts.len() && !self.kw(k, Kw::End) {
                    k += 1;
                }
                Some((k + 1).min(self.ts.len()))
            }
            _ => None,
        }
    }

    /// Operands joined by arithmetic, bitwise or concatenation operators.
    fn term(&self, i: usize) -> Option<usize> {
        let mut j = self.operand(i)?;
        let mut steps = 0;
        while (self.is(j, T::Op) || self.is(j, T::Logic) && self.text(j) == b"||")
            && steps < MAX_TOKENS
        {
            match self.operand(j + 1) {
                Some(k) => j = k,
                None => break,
            }
            steps += 1;
        }
        Some(j)
    }

    /// One condition: a term, optionally compared with another. Returns the end and, for a
    /// comparison, its operand ranges.
    fn cond(&self, i: usize) -> Option<(usize, Option<Comparison>)> {
        let l = self.term(i)?;
        let mut op = l;
        if self.kw(op, Kw::Not) {
            op += 1;
        }
        match self.t(op) {
            Some(T::Cmp | T::Kw(Kw::Like)) => {
                let mut r = op + 1;
                if self.kw(op, Kw::Like) && self.kw(r, Kw::Like) {
                    r += 1; // SOUNDS LIKE, SIMILAR TO is rare enough
                }
                let k = self.term(r)?;
                Some((k, Some((l, r, k))))
            }
            Some(T::Kw(Kw::Between)) => {
                let a = self.term(op + 1)?;
                if !self.is(a, T::Logic) {
                    return None;
                }
                let k = self.term(a + 1)?;
                Some((k, Some((l, op + 1, k))))
            }
            Some(T::Kw(Kw::In)) if self.is(op + 1, T::LParen) => {
                let k = self.group_end(op + 1);
                Some((k, Some((l, op + 1, k))))
            }
            Some(T::Kw(Kw::Is)) => {
                let mut k = op + 1;
                if self.kw(k, Kw::Not) {
                    k += 1;
                }
                match self.t(k) {
                    Some(T::Kw(Kw::Null | Kw::True | Kw::False)) => {
                        Some((k + 1, Some((l, k, k + 1))))
                    }
                    _ => None,
                }
            }
            _ => Some((l, None)),
        }
    }

    /// Literal-only stretch (numbers, strings, operators): a comparison between such is a
    /// tautology or contradiction test, not data.
    fn literal(&self, a: usize, z: usize) -> bool {
        z > a
            && self.ts.get(a..z).unwrap_or(&[]).iter().all(|t| {
                matches!(
                    t.t,
                    T::Num | T::Str { .. } | T::Op | T::Logic | T::Kw(Kw::Null)
                )
            })
    }

    fn same_text(&self, a: usize, b: usize) -> bool {
        let strip = |s: &'a [u8]| -> &'a [u8] {
            let s = s.strip_prefix(b"'").unwrap_or(s);
            let s = s.strip_prefix(b"\"").unwrap_or(s);
            let s = s.strip_suffix(b"'").unwrap_or(s);
            s.strip_suffix(b"\"").unwrap_or(s)
        };
        strip(self.text(a)).eq_ignore_ascii_case(strip(self.text(b)))
    }

    /// How much one condition after a logic operator says.
    fn cond_level(&self, end: usize, cmp: Option<Comparison>, i: usize) -> Level {
        let f = self.flags(i, end);
        if f.signal() {
            return Level::Strong;
        }
        match cmp {
            Some((l, r, k)) => {
                if f.cmp && l == i + 1 && self.is(i, T::LParen) {
                    // a parenthesised comparison: `(1=1)`
                    return Level::Strong;
                }
                let single = l == i + 1 && k == r + 1;
                if single && self.same_text(i, r) {
                    return Level::Strong; // 1=1, 'a'='a, USER=USER
                }
                if self.literal(i, l) && self.literal(r, k) {
                    let numbers = single && self.is(i, T::Num) && self.is(r, T::Num);
                    let big = self.text(i).len() >= 3 && self.text(r).len() >= 3;
                    let not_eq = self.text(l.min(r.saturating_sub(1))) != b"=";
                    if !single || big || not_eq || self.quoted || !numbers {
                        return Level::Strong;
                    }
                    return Level::Weak;
                }
                if self.quoted {
                    return Level::Strong; // ' or username like '%
                }
                // `2 or more = better`: words compared in a sentence
                Level::No
            }
            None => match self.t(i) {
                Some(T::LParen) if f.cmp => Level::Strong,
                Some(T::LParen) if self.quoted => Level::Weak, // `' or (exists)`
                Some(T::Str { closed: false })
                    if self.quoted
                        && end == i + 1
                        && i.checked_sub(1).is_some_and(|p| self.text(p) == b"||") =>
                {
                    Level::Weak // `' || '1`: concatenation out of the literal
                }
                Some(T::Num | T::Kw(Kw::True | Kw::False)) if end == i + 1 => {
                    if self.quoted && matches!(self.t(end), Some(T::Comment)) {
                        Level::Strong
                    } else if self.quoted && self.at_end(end)
                        || !self.quoted && !self.is(i, T::Num)
                        || self.is(0, T::Op) && self.text(0) == b"-"
                    {
                        // `' or 1`, `1 or true`, `-1 or 1`; `2 and 2` is text
                        Level::Weak
                    } else {
                        Level::No
                    }
                }
                _ => Level::No,
            },
        }
    }

    /// A chain of conditions joined by logic operators, starting at the operator `i`.
    fn boolean(&self, i: usize) -> (Level, usize) {
        let mut best = Level::No;
        let mut k = i;
        let mut rounds = 0;
        let mut compared = false;
        while self.is(k, T::Logic) && rounds < 8 {
            let c = if self.kw(k + 1, Kw::Not) {
                k + 2
            } else {
                k + 1
            };
            let Some((end, cmp)) = self.cond(c) else {
                if self.truncated && best != Level::No {
                    // the condition was cut at the token limit: judge what came before
                    return (best, self.end_of(self.ts.len()));
                }
                if self.quoted && best == Level::No && self.kw(k + 1, Kw::Select) {
                    // `' or select *`: not valid SQL, but only a probe writes it
                    let l = if self.select_list(k + 2).is_some() {
                        Level::Strong
                    } else {
                        Level::No
                    };
                    return (l, self.end_of(self.ts.len()));
                }
                return (Level::No, k);
            };
            best = best.max(self.cond_level(end, cmp, c));
            compared |= cmp.is_some();
            k = end;
            rounds += 1;
        }
        if best == Level::No && !matches!(self.t(k), Some(T::Kw(Kw::Group | Kw::Order))) {
            return (Level::No, k);
        }
        // what may follow a condition in a query: its end, a closing parenthesis or quote, a
        // clause; anything else (a word) means text goes on
        let ok = self.ends(k)
            || self.truncated && self.at_end(k)
            || matches!(
                self.t(k),
                Some(
                    T::RParen
                        | T::Str { closed: false }
                        | T::Kw(
                            Kw::Limit
                                | Kw::Order
                                | Kw::Group
                                | Kw::Having
                                | Kw::Procedure
                                | Kw::Into
                                | Kw::Union
                        )
                )
            );
        // an unterminated string after the last condition closes the query's own quote:
        // `' and 'a'='a` leaves `'a` open, which is how the attacker wants it
        if ok {
            if matches!(self.t(k), Some(T::Kw(_))) {
                // `1 OR 1 GROUP BY ...`: the clause may say more than the condition
                let (l, e) = self.after_literal(k, true);
                if l > best {
                    return (l, e);
                }
            }
            if best == Level::Weak && compared && self.is(k, T::Comment) {
                // `1 and 2=0 -- x`: a comparison cut off by a comment is no sentence
                best = Level::Strong;
            }
            (best, self.end_of(k + 1))
        } else {
            (Level::No, k)
        }
    }

    /// `UNION [ALL|DISTINCT] [(] SELECT list` at `i`.
    fn union(&self, i: usize, lead: bool) -> Level {
        let mut k = i + 1;
        if self.kw(k, Kw::All) || self.kw(k, Kw::Distinct) {
            k += 1;
        }
        if self.is(k, T::LParen) {
            k += 1;
        }
        if !self.kw(k, Kw::Select) {
            return Level::No;
        }
        match self.select_list(k + 1) {
            Some((_, items, tail)) if lead && (items > 1 || tail) => Level::Strong,
            Some(_) if lead || self.quoted => Level::Strong,
            Some((_, items, _)) if items > 1 => Level::Strong,
            Some(_) => Level::Weak,
            None if self.quoted && self.at_end(k + 1) => Level::Strong,
            None => Level::Weak,
        }
    }

    /// A select list at `i`: items separated by commas, then something a query has after it.
    /// Returns the end, the number of items, and whether SQL structure follows (`FROM`, a
    /// comment).
    fn select_list(&self, i: usize) -> Option<(usize, usize, bool)> {
        let mut k = i;
        if self.kw(k, Kw::All) || self.kw(k, Kw::Distinct) {
            k += 1;
        }
        if self.kw(k, Kw::Top) && self.is(k + 1, T::Num) {
            k += 2;
        }
        let mut items = 0;
        while items < MAX_TOKENS {
            let next = if self.is(k, T::Op) && self.text(k) == b"*" {
                Some(k + 1)
            } else {
                self.term(k)
            };
            let Some(n) = next else { break };
            k = n;
            items += 1;
            if self.kw(k, Kw::As) && self.is(k + 1, T::Word) {
                k += 2;
            }
            if !self.is(k, T::Comma) {
                break;
            }
            k += 1;
        }
        if items == 0 {
            return None;
        }
        let tail = matches!(
            self.t(k),
            Some(
                T::Comment
                    | T::Kw(Kw::From | Kw::Into | Kw::Union | Kw::Limit | Kw::Order | Kw::Where)
            )
        );
        if self.ends(k) || tail || self.is(k, T::RParen) || self.truncated && self.at_end(k) {
            Some((k, items, tail))
        } else {
            None
        }
    }

    /// A statement after `;` (or after a break-out, for `EXEC`).
    fn statement(&self, i: usize) -> Level {
        let Some(t) = self.t(i) else {
            return Level::No;
        };
        let word = |k: usize| matches!(self.t(k), Some(T::Word | T::Str { .. }));
        let strong = |c: bool| if c { Level::Strong } else { Level::No };
        match t {
            T::Kw(Kw::Select) => strong(
                // `3; select one` is a sentence: one bare word is not enough
                self.select_list(i + 1).is_some_and(|(k, n, tail)| {
                    n > 1 || tail || k != i + 2 || !self.is(i + 1, T::Word)
                }) || self
                    .term(i + 1)
                    .is_some_and(|k| self.flags(i + 1, k).danger),
            ),
            T::LParen => {
                strong(self.kw(i + 1, Kw::Select) || self.flags(i, self.group_end(i)).signal())
            }
            T::Kw(Kw::Drop | Kw::Truncate | Kw::Alter) => strong(
                (self.kw(i + 1, Kw::Table)
                    || self.kw(i + 1, Kw::Object)
                    || self.kw(i + 1, Kw::Procedure))
                    && (word(i + 2)
                        || self.kw(i + 2, Kw::Object)
                        || self.is(i + 2, T::Func(Fun::Plain)))
                    && (self.ends(i + 3) || t != T::Kw(Kw::Drop) || self.is(i + 3, T::Comma)),
            ),
            T::Kw(Kw::Delete) => strong(self.kw(i + 1, Kw::From) && word(i + 2)),
            T::Kw(Kw::Insert) => strong(
                self.kw(i + 1, Kw::Into) && (word(i + 2) || self.is(i + 2, T::Func(Fun::Plain))),
            ),
            T::Kw(Kw::Update) => strong(word(i + 1) && self.kw(i + 2, Kw::Set)),
            T::Kw(Kw::Exec) => {
                let w = lower8(self.text(i + 1));
                // a system procedure, or a string, variable or expression to run
                if w.starts_with(b"xp_")
                    || w.starts_with(b"sp_")
                    || w.starts_with(b"master.")
                    || matches!(
                        self.t(i + 1),
                        Some(T::Str { .. } | T::Var { .. } | T::LParen)
                    )
                {
                    Level::Strong
                } else if word(i + 1) {
                    Level::Weak
                } else {
                    Level::No
                }
            }
            T::Kw(Kw::Waitfor) => strong(
                (self.kw(i + 1, Kw::Delay) || self.kw(i + 1, Kw::Time))
                    && matches!(self.t(i + 2), Some(T::Str { .. } | T::Var { .. })),
            ),
            T::Kw(Kw::Shutdown) => strong(self.ends(i + 1) || self.is(i + 1, T::Word)),
            T::Kw(Kw::Declare) => strong(matches!(self.t(i + 1), Some(T::Var { .. }))),
            T::Kw(Kw::Set) => {
                strong(matches!(self.t(i + 1), Some(T::Var { .. })) && self.is(i + 2, T::Cmp))
            }
            T::Kw(Kw::Create) => strong(
                (self.kw(i + 1, Kw::Table) && word(i + 2) && self.is(i + 3, T::LParen))
                    || (self.kw(i + 1, Kw::Table) && self.is(i + 2, T::Func(Fun::Plain)))
                    || (self.is(i + 1, T::Logic) && self.kw(i + 2, Kw::Replace))
                    || (self.kw(i + 1, Kw::Object)
                        && (word(i + 2) || matches!(self.t(i + 2), Some(T::Func(_))))
                        && !self.is(i + 3, T::Word)),
            ),
            T::Kw(Kw::Begin | Kw::Call) => strong(
                matches!(self.t(i + 1), Some(T::Func(Fun::Danger | Fun::Known)))
                    || self.flags(i + 1, i + 4).danger,
            ),
            T::Func(Fun::Danger) => Level::Strong,
            T::Func(Fun::Known) if self.flags(i, self.group_end(i + 1)).cmp => Level::Strong,
            _ => Level::No,
        }
    }

    /// What follows the value's own literal at `i`: the rules shared by all contexts.
    /// `lead` says whether a literal preceded (a number, a word, a closed string).
    fn after_literal(&self, i: usize, lead: bool) -> (Level, usize) {
        let Some(t) = self.t(i) else {
            return (Level::No, i);
        };
        let end = |l: Level, k: usize| (l, self.end_of(k.min(self.ts.len())));
        match t {
            T::Logic => self.boolean(i),
            T::Kw(Kw::Union) => end(self.union(i, lead), self.ts.len()),
            T::Semi => end(self.statement(i + 1), self.ts.len()),
            T::Kw(Kw::Exec | Kw::Waitfor | Kw::Begin) if self.quoted || lead => {
                // without a `;` only the unmistakable forms count (`execve execute program`)
                match self.statement(i) {
                    Level::Strong => end(Level::Strong, self.ts.len()),
                    _ => (Level::No, i),
                }
            }
            T::Kw(Kw::Order | Kw::Group) if self.kw(i + 1, Kw::By) => {
                let mut k = i + 2;
                let mut n = 0;
                while self.is(k, T::Num) && n < MAX_TOKENS {
                    k += 1;
                    n += 1;
                    if self.is(k, T::Comma) {
                        k += 1;
                    } else {
                        break;
                    }
                }
                if n == 0 {
                    // `GROUP BY CONCAT(..., (SELECT ...))`: an error-based probe
                    return match self.term(i + 2) {
                        Some(k) if self.flags(i + 2, k).signal() && (lead || self.quoted) => {
                            end(Level::Strong, k)
                        }
                        _ => (Level::No, i),
                    };
                }
                if !(self.ends(k) || self.kw(k, Kw::Limit)) {
                    return (Level::No, i);
                }
                let l = if self.quoted || self.is(k, T::Comment) || n > 1 && lead {
                    Level::Strong
                } else {
                    Level::Weak
                };
                end(l, k)
            }
            T::Kw(Kw::Having) => match self.cond(i + 1) {
                Some((k, Some(_)))
                    if self.ends(k) || matches!(self.t(k), Some(T::RParen | T::Logic)) =>
                {
                    end(
                        if lead || self.quoted {
                            Level::Strong
                        } else {
                            Level::Weak
                        },
                        k,
                    )
                }
                _ => (Level::No, i),
            },
            T::Kw(Kw::Procedure) if matches!(self.t(i + 1), Some(T::Func(_))) => {
                end(Level::Strong, self.group_end(i + 2))
            }
            T::Kw(Kw::Into)
                if self.kw(i + 1, Kw::Outfile) && matches!(self.t(i + 2), Some(T::Str { .. })) =>
            {
                end(Level::Strong, i + 3)
            }
            T::Kw(Kw::Like) => match self.term(i + 1) {
                Some(k) if self.flags(i + 1, k).signal() => end(Level::Strong, k),
                _ => (Level::No, i),
            },
            T::Op
                if lead
                    && self
                        .text(i)
                        .first()
                        .is_some_and(|c| c.is_ascii_alphabetic()) =>
            {
                // `1 DIV 1=1`
                match self.cond(i + 1) {
                    Some((k, Some(_))) if self.ends(k) && !self.flags(i + 1, k).word => {
                        end(Level::Strong, k)
                    }
                    _ => (Level::No, i),
                }
            }
            T::Op | T::Comma | T::LParen | T::Func(_) | T::Cmp if lead || self.quoted => {
                // `' + (SELECT ...) + '`, `1 ,(SELECT ...)`, `1 IIF(...)`, `1 (SELECT ...)`,
                // `'=sleep(5)='`
                let a = if matches!(t, T::Op | T::Comma | T::Cmp) {
                    i + 1
                } else {
                    i
                };
                let Some(k) = self.term(a) else {
                    return (Level::No, i);
                };
                let f = self.flags(a, k);
                let follows = self.ends(k)
                    || self.truncated && self.at_end(k)
                    || matches!(
                        self.t(k),
                        Some(T::Str { closed: false } | T::Logic | T::Op | T::Comma | T::RParen)
                    );
                if !follows {
                    (Level::No, i)
                } else if f.subquery
                    || f.case
                    || f.danger
                    || f.sys_var
                    || f.known_func && f.cmp && !f.word
                {
                    end(Level::Strong, k)
                } else if f.cmp && self.is(a, T::LParen) && !f.word && lead && !self.quoted {
                    end(Level::Weak, k)
                } else {
                    (Level::No, i)
                }
            }
            T::Comment if self.quoted => {
                // `admin'--`: alone this is what a quote in text followed by `--` looks like
                let prefix = self
                    .b
                    .get(..self.ts.first().map_or(0, |t| t.e))
                    .unwrap_or(&[]);
                if prefix.iter().any(|&c| is_space(c)) {
                    (Level::No, i)
                } else {
                    end(Level::Weak, i + 1)
                }
            }
            _ => (Level::No, i),
        }
    }

    /// Whether the token the rules turn on (see [`Judge::entry`]) can start an injection.
    fn promising(&self) -> bool {
        let (i, lead, closers) = self.entry();
        let start = matches!(
            self.t(i),
            Some(
                T::Logic
                    | T::Semi
                    | T::Op
                    | T::Comma
                    | T::LParen
                    | T::Func(_)
                    | T::Cmp
                    | T::Comment
                    | T::Kw(
                        Kw::Union
                            | Kw::Exec
                            | Kw::Waitfor
                            | Kw::Begin
                            | Kw::Order
                            | Kw::Group
                            | Kw::Having
                            | Kw::Procedure
                            | Kw::Into
                            | Kw::Like
                    )
            )
        );
        let statement = !self.quoted
            && !lead
            && closers == 0
            && matches!(self.t(0), Some(T::LParen | T::Kw(Kw::Select)));
        start || statement
    }

    /// Where the rules look: past the value's own literal (`1`, `-1`, `abc`, `'x'`, or the
    /// literal the quote closed) and up to four closing parentheses. Returns that index,
    /// whether a literal preceded, and how many parentheses were closed.
    fn entry(&self) -> (usize, bool, usize) {
        let mut i = 0;
        let mut lead = false;
        if self.quoted {
            i = 1;
            lead = true;
        } else {
            // the value's own literal: `1`, `-1`, `abc`, `'x'`
            if self.is(0, T::Op) && matches!(self.text(0), b"-" | b"+") {
                i = 1;
            }
            if matches!(self.t(i), Some(T::Num | T::Word | T::Str { closed: true })) {
                i += 1;
                lead = true;
            } else {
                i = 0;
            }
        }
        let mut closers = 0;
        while self.is(i, T::RParen) && closers < 4 {
            i += 1;
            closers += 1;
        }
        (i, lead, closers)
    }

    fn judge(&self) -> (Level, usize, usize) {
        let (i, lead, closers) = self.entry();
        let (level, end) = self.after_literal(i, lead);
        if level != Level::No {
            return (level, self.start_of(i), end);
        }
        if self.quoted || lead || closers > 0 {
            return (Level::No, 0, 0);
        }
        // the whole value as a statement or expression: `(SELECT ...)`, `SELECT ...`
        match self.t(0) {
            Some(T::LParen) if self.kw(1, Kw::Select) => {
                let f = self.flags(0, self.ts.len());
                let l = if f.danger || f.case || f.sys_var || self.flags(2, self.ts.len()).subquery
                {
                    Level::Strong
                } else if self.select_list(2).is_some() {
                    Level::Weak
                } else {
                    Level::No
                };
                (l, 0, self.end_of(self.ts.len()))
            }
            Some(T::Kw(Kw::Select)) => {
                let f = self.flags(0, self.ts.len());
                let l = if f.danger || f.sys_var || f.subquery && f.case {
                    Level::Strong
                } else if self
                    .select_list(1)
                    .is_some_and(|(_, n, tail)| n > 1 || tail || f.case)
                {
                    Level::Weak
                } else {
                    Level::No
                };
                (l, 0, self.end_of(self.ts.len()))
            }
            _ => (Level::No, 0, 0),
        }
    }
}

/// The first eight bytes of `w`, lower-cased, for prefix tests without allocating.
fn lower8(w: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, c) in out.iter_mut().zip(w) {
        *o = c.to_ascii_lowercase();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::decode;

    fn read(rel: &str) -> String {
        let path = format!("{}/tests/corpus/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A wire-form line decoded as the inspector decodes a query value.
    fn wire(line: &str) -> Vec<u8> {
        decode::normalise(line, true).into_owned()
    }

    fn strong(v: &str) -> bool {
        detect(v.as_bytes()).is_some_and(|f| f.strong)
    }

    /// The values of a `path?query` line, decoded.
    fn query_values(line: &str) -> Vec<Vec<u8>> {
        let q = line.split_once('?').map_or("", |(_, q)| q);
        let q = q.split('#').next().unwrap_or("");
        q.split('&')
            .map(|kv| kv.split_once('=').map_or(kv, |(_, v)| v))
            .map(|v| decode::normalise(v, true).into_owned())
            .collect()
    }

    /// Attack lines that are not SQL, or that only a broken decoder turns into SQL.
    const ACCEPTED_MISSES: &[&str] = &[
        // `\x27` is a literal backslash escape that no SQL parser or URL decoder reads as `'`
        "\\x27\\x4F\\x52 SELECT *",
        "\\x27\\x6F\\x72 SELECT *",
        "\\x27UNION SELECT",
        // server-side include, not SQL
        "&lt;!--#exec%20cmd=&quot;/bin/cat%20/etc/passwd&quot;--&gt;",
        "&lt;!--#exec%20cmd=&quot;/bin/cat%20/etc/shadow&quot;--&gt;",
        // a quoted string alone, without a condition or statement
        "%20'sleep%2050'",
    ];

    #[test]
    fn corpus_figures() {
        let mut all_missed = Vec::new();
        let mut short = Vec::new();
        for file in ["sqli.wfuzz.txt", "sqli.sqlmap.txt", "sqli.hand.txt"] {
            let text = read(&format!("evasion/{file}"));
            let (mut total, mut found, mut strong, mut accepted) = (0usize, 0, 0, 0);
            for line in text.lines().filter(|l| !l.is_empty()) {
                total += 1;
                match detect(&wire(line)) {
                    Some(f) => {
                        found += 1;
                        strong += usize::from(f.strong);
                        if !f.strong {
                            println!("  weak {file}: {line}");
                        }
                    }
                    None => {
                        accepted += usize::from(ACCEPTED_MISSES.contains(&line));
                        all_missed.push((file, line.to_string()));
                    }
                }
            }
            // lines that are not SQL do not count against the floor
            let judged = total - accepted;
            println!(
                "{file:18} detected {found}/{total} ({:.1} %; {:.1} % of the {judged} SQL lines), strong {strong}",
                100.0 * found as f64 / total as f64,
                100.0 * found as f64 / judged as f64,
            );
            if found * 100 < judged * 95 {
                short.push(format!("{file}: {found}/{total}"));
            }
        }
        for (file, line) in &all_missed {
            let accepted = ACCEPTED_MISSES.contains(&line.as_str());
            println!(
                "  miss {file}: {line}{}",
                if accepted { "  (accepted)" } else { "" }
            );
        }

        let (mut total, mut weak, mut strong) = (0usize, 0usize, 0usize);
        for file in [
            "man.txt",
            "quotes.txt",
            "searches.hand.txt",
            "words.txt",
            "urls.hand.txt",
        ] {
            let text = read(&format!("benign/{file}"));
            for line in text.lines().filter(|l| !l.is_empty()) {
                let values = if file == "urls.hand.txt" {
                    query_values(line)
                } else {
                    vec![line.as_bytes().to_vec()]
                };
                total += 1;
                let mut worst = None;
                for v in &values {
                    if let Some(f) = detect(v) {
                        if worst.is_none_or(|w: Finding| f.strong && !w.strong) {
                            worst = Some(f);
                        }
                    }
                }
                if let Some(f) = worst {
                    println!(
                        "  benign {} {file}: {line}",
                        if f.strong { "STRONG" } else { "weak" }
                    );
                    if f.strong {
                        strong += 1;
                    } else {
                        weak += 1;
                    }
                }
            }
        }
        println!("benign: strong {strong}, weak {weak}, of {total}");
        assert!(short.is_empty(), "below 95 %: {short:?}");
        assert_eq!(strong, 0);
        assert!(weak * 1000 <= total * 5, "weak {weak} of {total}");
    }

    #[test]
    fn families_are_strong() {
        for v in [
            "' or 1=1--",
            "' or 'a'='a",
            "\") or (\"x\")=(\"x",
            "' AND 2=2",
            "1' and sleep(5)#",
            "1 AND 2=2",
            "1 or sleep(5)",
            "-1 OR 3*2>5",
            "1 AND 8765=8765",
            "1 union select 1,2",
            "1 union/**/select 1,2",
            "1/*!50000UNION*/ SELECT 1,2",
            "' UNION ALL SELECT NULL,NULL-- -",
            "1; DROP TABLE x",
            "1; SELECT * FROM users",
            "1; WAITFOR DELAY '0:0:5'",
            "1'; exec xp_cmdshell 'dir'",
            "1;shutdown--",
            "1' ORDER BY 3#",
            "1 HAVING 1=1",
            "1 AND 1=CONVERT(int,@@version)",
            "' || (select 1 from dual) || '",
            "1' AND extractvalue(1,concat(0x7e,version()))-- -",
            "1'/**/OR/**/1=1-- -",
            "1'\u{a0}OR\u{a0}1=1-- -",
            "1'\x0bOR\x0b1=1-- -",
            "1 PROCEDURE ANALYSE()",
            "1 INTO OUTFILE '/tmp/x'",
        ] {
            assert!(strong(v), "{v:?} -> {:?}", detect(v.as_bytes()));
        }
    }

    #[test]
    fn string_then_comment_is_weak() {
        for v in ["admin'--", "admin'#", "x' /*", "admin'-- -"] {
            let f = detect(v.as_bytes());
            assert!(f.is_some_and(|f| !f.strong), "{v:?} -> {f:?}");
        }
    }

    #[test]
    fn free_text_is_not_strong() {
        for v in [
            "select * from users",
            "Guns N' -- Roses",
            "chapter 3; create table of contents",
            "backup first; update router settings",
            "rock and roll",
            "O'Reilly and sons",
            "don't or won't",
            "1 or 2 people",
            "5 - 3 = 2",
            "\"exact phrase\" or \"other\"",
            "what is 1=1",
            "cats & dogs",
            "A+B=C",
            "x' or y",
            "{\"a\":1}",
            "john.doe@example.com",
            "2024-01-01",
            "+1 (555) 123-4567",
            "C++",
            "--verbose",
            "# Title\n* item `code`",
            "if (a == b) { return 1; }",
            "sleep(5) in python",
            "union select fit jeans",
            "drop table if exists",
            "2 and 2 = 4",
            "2 or more = better",
            "5' 10\" or 6' 1\"",
            "it's 1=1 or not",
            "name='john' or name='jane'",
            "1; select one",
            "10% off; order by price",
            "i like (things)",
        ] {
            assert!(!strong(v), "{v:?} -> {:?}", detect(v.as_bytes()));
        }
    }

    #[test]
    fn plain_values_are_not_worth_tokenising() {
        for v in [
            "2",
            "price",
            "red shoes",
            "en-US",
            "2024-01-01",
            "john.doe.example.com",
            "a1b2c3d4",
            "spring-sale-2024",
            "rock and roll",
        ] {
            assert!(!worth_tokenising(v.as_bytes()), "{v:?}");
        }
        for v in [
            "' or 1=1",
            "1 and 2",
            "x union select null,null",
            "a;b",
            "x--",
            "a/*",
        ] {
            assert!(worth_tokenising(v.as_bytes()), "{v:?}");
        }
    }

    #[test]
    fn prefilters_know_every_word() {
        for w in [
            "and", "begin", "div", "exec", "execute", "false", "group", "having", "into", "like",
            "not", "or", "order", "regexp", "rlike", "select", "shutdown", "true", "union",
            "waitfor", "xor",
        ] {
            assert!(!matches!(trigger_word(w.as_bytes()), Trigger::None), "{w}");
        }
        let src = include_str!("sqli.rs");
        let body = src
            .split("fn classify_word")
            .nth(1)
            .and_then(|s| s.split("fn classify_func").next())
            .expect("classify_word");
        // the byte-string literals of the function: every other piece between quotes
        for w in body.split('"').skip(1).step_by(2) {
            let upper = w.to_ascii_uppercase();
            assert!(
                !matches!(classify_word(upper.as_bytes()), WordKind::Word),
                "{w} is missing from KEYWORD_FIRST"
            );
        }
    }

    #[test]
    fn findings_lie_within_the_value() {
        for v in [
            "xyz' or 1=1-- -",
            "1 union select 1,2",
            "1; drop table users",
            "x' and sleep(5) and 'y",
        ] {
            let f = detect(v.as_bytes()).expect(v);
            assert!(f.start < f.end && f.end <= v.len(), "{v:?} -> {f:?}");
        }
        let f = detect(b"abc' OR 1=1").expect("found");
        assert_eq!(f.start, 3);
    }

    #[test]
    fn adversarial_inputs_do_not_panic() {
        // Random values biased towards SQL punctuation.
        let alphabet = b"'\"`()#;=@-/*! \t\n0123456789abcORDNUSELCTunionselect.,|&<>\\\xa0\xff";
        crate::signature::fuzz::values(0x9e37_79b9_7f4a_7c15, alphabet, 20_000, |buf| {
            if let Some(f) = detect(buf) {
                assert!(f.start <= f.end && f.end <= buf.len());
            }
        });
        for v in [
            "/*".repeat(4000),
            "/*!".repeat(2700),
            "'".repeat(8192),
            "(".repeat(8192),
            "1 or ".repeat(1600),
            "' or '".repeat(1300),
            "--".repeat(4000),
            "\\".repeat(8191) + "'",
            "@@".repeat(4000),
            "0x".repeat(4000),
        ] {
            let _ = detect(v.as_bytes());
        }
    }

    #[test]
    #[ignore]
    fn cost_per_benign_value() {
        let mut values = Vec::new();
        for file in ["man.txt", "quotes.txt", "searches.hand.txt", "words.txt"] {
            values.extend(
                read(&format!("benign/{file}"))
                    .lines()
                    .map(|l| l.as_bytes().to_vec()),
            );
        }
        for line in read("benign/urls.hand.txt").lines() {
            values.extend(query_values(line));
        }
        let rounds = 50;
        let t = std::time::Instant::now();
        let mut hits = 0usize;
        for _ in 0..rounds {
            for v in &values {
                let v = std::hint::black_box(v.as_slice());
                // `detect` runs the pre-check itself
                if detect(v).is_some() {
                    hits += 1;
                }
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / (rounds * values.len()) as f64;
        let worth: Vec<&[u8]> = values
            .iter()
            .map(|v| v.as_slice())
            .filter(|v| worth_tokenising(v))
            .collect();
        let t = std::time::Instant::now();
        for _ in 0..rounds {
            for v in &values {
                std::hint::black_box(worth_tokenising(std::hint::black_box(v.as_slice())));
            }
        }
        let ns_worth = t.elapsed().as_nanos() as f64 / (rounds * values.len()) as f64;
        let t = std::time::Instant::now();
        for _ in 0..rounds {
            for v in &worth {
                std::hint::black_box(detect(std::hint::black_box(v)));
            }
        }
        let ns_detect = t.elapsed().as_nanos() as f64 / (rounds * worth.len().max(1)) as f64;
        // the machine's speed for comparison: one pass counting spaces
        let t = std::time::Instant::now();
        let mut spaces = 0usize;
        for _ in 0..rounds {
            for v in &values {
                spaces += std::hint::black_box(v.as_slice())
                    .iter()
                    .filter(|&&c| c == b' ')
                    .count();
            }
        }
        let ns_base = t.elapsed().as_nanos() as f64 / (rounds * values.len()) as f64;
        println!("baseline: counting spaces {ns_base:.0} ns per value ({spaces})");
        println!(
            "{} benign values, {} worth tokenising; mean {ns:.0} ns per value \
             (worth_tokenising alone {ns_worth:.0} ns, detect on a worthy value {ns_detect:.0} ns; hits {})",
            values.len(),
            worth.len(),
            hits / rounds
        );
    }
}
