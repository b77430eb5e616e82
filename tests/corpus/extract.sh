#!/usr/bin/env bash
# Regenerates the package-derived files of tests/corpus/ from Debian packages.
#
#   apt-get update && apt-get install -y --no-install-recommends \
#       wfuzz sqlmap wapiti fortunes fortune-mod wamerican manpages manpages-dev
#   bash tests/corpus/extract.sh        # also fetches one wheel from PyPI (boofuzz)
#
# Deterministic: same package versions, same output (no clock, no unseeded randomness; sorting
# under LC_ALL=C). The hand-written files (*.hand.txt) are not touched. The tests read only the
# committed files: nothing under /usr/share is needed at test time.
#
# File format (evasion/*.txt): one payload per line in *wire form*, the value as it is put in a
# URL: `%XX` is an encoded byte, `+` a space, everything else literal (spaces included; the
# harness escapes what a client must). Lines from wfuzz are kept as wfuzz sends them.
# benign/*.txt: one plain-text search query per line (the harness form-encodes it).
set -euo pipefail
export LC_ALL=C
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$here/evasion" "$here/benign" "$here/heldout"

python3 - "$here" <<'PY'
import glob, gzip, os, random, re, sys
import xml.etree.ElementTree as ET

out = sys.argv[1]
W = '/usr/share/wfuzz/wordlist/'
SQLMAP = '/usr/share/sqlmap/data/xml/'


def read(path):
    with open(path, encoding='latin-1') as f:
        return [l.rstrip('\r\n') for l in f]


def write(rel, lines):
    seen, uniq = set(), []
    for l in lines:
        if l.strip() and l not in seen:
            seen.add(l)
            uniq.append(l)
    with open(os.path.join(out, rel), 'w', encoding='utf-8') as f:
        f.write(''.join(l + '\n' for l in uniq))
    print(f'{rel}: {len(uniq)} lines')


def wire(text):
    """Text to wire form: `%`, `+` and control characters encoded, the rest kept."""
    o = []
    for ch in text:
        if ch in '%+' or ord(ch) < 0x20 or ord(ch) == 0x7f:
            o.append('%%%02X' % ord(ch))
        else:
            o.append(ch)
    return ''.join(o)


# ---------------------------------------------------------------- wfuzz
sql_all = read(W + 'Injections/SQL.txt') + read(W + 'vulns/sql_inj.txt')
xss_all = read(W + 'Injections/XSS.txt')
trav_all = read(W + 'Injections/Traversal.txt')
attack = read(W + 'Injections/All_attack.txt')

# Only lines that are an injection, not a lone probe character (`'`, `#`, `--`, `1e100`):
# the packs ask for structure on purpose, and a bare quote is not in scope.
SQL_KW = re.compile(r'(?i)\b(or|and|union|select|having|order\s+by|group\s+by|waitfor|sleep|'
                    r'benchmark|exec|xp_\w+|drop|insert\s+into|delete\s+from|user\s*\(\))\b')
SQL_STRUCT = re.compile(r"['\"=(#]|--|/\*|%2[07]|\\x")


def is_sql(l):
    if '$(' in l:
        return False  # a shell substitution, not SQL
    return bool(SQL_KW.search(l)) and bool(SQL_STRUCT.search(l)) and len(l) > 4


XSS_RE = re.compile(r'(?i)(<|%3c|&lt|\\x3c).*(script|javascript|on\w+\s*=|alert|<img|<iframe)'
                    r'|javascript:|alert\s*\(')


def is_xss(l):
    return bool(XSS_RE.search(l))


TARGET = re.compile(r'(?i)(etc[/\\%].*(passwd|shadow|hosts)|boot\.ini|win\.ini|system32)')
PARENT = re.compile(r'(?i)(\.\.|%2e%2e|%252e%252e|%c0%ae|\.\.\.)')


def is_trav(l):
    # Two parent segments or more, or one aiming at a file worth reading.
    return len(PARENT.findall(l)) >= 2 or (PARENT.search(l) and TARGET.search(l)) \
        or bool(re.match(r'(?i)^/(etc/(passwd|shadow)|boot\.ini)$', l))


CMD_RE = re.compile(r'(?i)(^|[;|`]|\\n|&quot;;)\s*(id|dir|ls|netstat|read|/bin/ls)\b|\$\(sleep')

sqli = [l for l in sql_all + attack if is_sql(l)]
xss = [l for l in xss_all + attack if is_xss(l) and not is_sql(l)]
trav = [l for l in trav_all + attack if is_trav(l) and not is_xss(l)]
cmdi = [l for l in attack + sql_all if CMD_RE.search(l) and not is_xss(l)]
write('evasion/sqli.wfuzz.txt', sqli)
write('evasion/xss.wfuzz.txt', xss)
write('evasion/cmdi.wfuzz.txt', cmdi)

# dirTraversal.txt: 848 templates in 8 depths; every 4th one, {FILE} alternating between a
# Unix and a Windows target.
tmpl = [l for l in read(W + 'vulns/dirTraversal.txt') if '{FILE}' in l]
files = ['etc/passwd', 'windows/win.ini']
trav += [t.replace('{FILE}', files[(i // 4) % 2]) for i, t in enumerate(tmpl) if i % 4 == 0]
write('evasion/traversal.wfuzz.txt', trav)

# ---------------------------------------------------------------- sqlmap
# Each test's <payload> (and <comment>) with placeholders filled from a seeded generator, put
# behind three of sqlmap's boundaries: a numeric value, a quoted string, a quoted string in
# parentheses. With a <comment>, the comment replaces the boundary suffix, as sqlmap does.
rng = random.Random(20261203)


def fill(s):
    # As sqlmap does, one value per placeholder name within a payload: [RANDNUM]=[RANDNUM] is
    # true, [RANDNUM]=[RANDNUM1] false.
    memo = {}

    def one(m):
        k = m.group(0)
        if k not in memo:
            memo[k] = value(k)
        return memo[k]

    def value(k):
        if k.startswith('[RANDNUM'):
            return str(rng.randint(1000, 9999))
        if k == '[RANDSTR]':
            return ''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(4))
        if k == '[SLEEPTIME]':
            return '5'
        if k == '[DELIMITER_START]':
            return 'qvkjq'
        if k == '[DELIMITER_STOP]':
            return 'qpxbq'
        if k == '[ORIGVALUE]':
            return '1'
        if k == '[GENERIC_SQL_COMMENT]':
            return '-- -'
        raise SystemExit('unknown placeholder ' + k)

    return re.sub(r'\[[A-Z_0-9]+\]', one, s)


BOUNDARIES = [('1', ' ', ''), ("1'", ' ', " AND '[RANDSTR]'='[RANDSTR]"),
              ("1')", ' ', " AND ('[RANDSTR]'='[RANDSTR]")]
sqlmap = []


def add_sqlmap(name, payload, comment):
    # Payloads for other clauses (ORDER BY, a column list: `,(SELECT ...)`, `(1=1)*2`)
    # only make sense after a number.
    lead = re.match(r'(?i)\s*(AND|OR|RLIKE|;|PROCEDURE|HAVING)\b|\s*;', payload)
    for pre, sep, suf in BOUNDARIES if lead else BOUNDARIES[:1]:
        if name == 'inline_query':
            # An inline query replaces the value itself.
            sqlmap.append(wire(fill(payload)))
            break
        if payload.startswith(';'):
            sep = ''
        tail = ' ' + comment if comment else suf
        sqlmap.append(wire(fill(pre + sep + payload + tail)))


for name in ['boolean_blind', 'error_based', 'inline_query', 'stacked_queries', 'time_blind']:
    for test in ET.parse(SQLMAP + 'payloads/%s.xml' % name).getroot().findall('test'):
        req = test.find('request')
        comment = req.findtext('comment')
        # Boolean tests send the true payload and its false twin (<comparison>).
        twin = test.find('response')
        twin = twin.findtext('comparison') if twin is not None else None
        for payload in [req.findtext('payload') or '', twin or '']:
            if payload.strip():
                add_sqlmap(name, payload, comment)


# union_query.xml tests have no payload: sqlmap builds UNION ALL SELECT with 1..10 columns of
# NULL, [RANDNUM] or CHAR(), one of them carrying the delimiters.
for cols in range(1, 11):
    for filler in ['NULL', '[RANDNUM]', 'CHAR(113,118,107,106,113)']:
        for pre, comment in [('1', ' -- -'), ("1'", ' -- -'), ("1')", '#'), ('-1', '')]:
            items = [filler] * cols
            items[cols // 2] = "CONCAT(0x716b6a7071,0x%s,0x7170786271)" % ''.join(
                '%02x' % rng.randint(0x61, 0x7a) for _ in range(10))
            sqlmap.append(wire(fill(pre + ' UNION ALL SELECT ' + ','.join(items) + comment)))
write('evasion/sqli.sqlmap.txt', sqlmap)

# ---------------------------------------------------------------- held out: wapiti
# Payloads the packs were NOT tuned on: wapiti's attack files, filled as wapiti fills them
# (`[TIME]` with its default timeout + 1, `[LF]`/`[TAB]`/`[FF]`, `\0`), `[VALUE]` with `1`.
# Lines outside the classes (PHP code evaluation, remote inclusion of a URL, a bare word such as
# `env` that no inspection can tell from a search) are left out: see the README.
WA = '/usr/lib/python3/dist-packages/wapitiCore/data/attacks/'


def wapiti_fill(line, value='1'):
    line = line.strip(' \n').replace('[TAB]', '\t').replace('[LF]', '\n').replace('[FF]', '\f')
    line = line.replace('[TIME]', '6').replace('[TIMEOUT]', '').replace('\\0', '\0')
    return line.replace('[VALUE]', value).replace('[DIRVALUE]', 'include').replace('[EXTVALUE]', 'php')


def ini_payloads(path):
    out, cur = [], {}
    for l in read(path) + ['[end]']:
        if l.startswith('['):
            if 'payload' in cur:
                out.append(cur)
            cur = {}
        elif '=' in l and not l.startswith((';', ' ', '\t')):
            k, v = l.split('=', 1)
            cur[k.strip()] = v.strip()
    return out


sql = [wapiti_fill(l) for l in read(WA + 'blindSQLPayloads.txt') if l.strip()]
# A server-side JavaScript (NoSQL) delay, not SQL.
sql = [l for l in sql if 'new Date()' not in l]
# The error-based probe of its `sql` module: `[VALUE]\xBF'"(`.
sql.append('1\u00bf\'"(')
write('heldout/sqli.wapiti.txt', [wire(l) for l in sql])

cmd = []
for l in read(WA + 'execPayloads.txt'):
    l = wapiti_fill(l)
    # PHP evaluation (`exit(md5(..))`, `data:` includes, the `/e` modifier) is code
    # injection into PHP, not a shell; a bare `env` or `set` is a word anyone may search for.
    if not l or 'md5(' in l or l.startswith('data:') or l.startswith('/e') or l in ('env', 'set'):
        continue
    cmd.append(l)
write('heldout/cmdi.wapiti.txt', [wire(l) for l in cmd])

trav = []
for e in ini_payloads(WA + 'fileHandlingPayloads.ini'):
    l = e['payload']
    # Remote inclusion (a URL as the value) and the request's own file name are not traversal.
    if '[EXTERNAL_ENDPOINT]' in l or '[FILE_NAME]' in l:
        continue
    trav.append(wapiti_fill(l, 'include/header.php'))
write('heldout/traversal.wapiti.txt', [wire(l) for l in trav])

# XSS: the taint code wapiti puts in place of __XSS__ is a random lower-case word. Payloads
# that close a tag are sent as they are (text context) and after `">` (breaking out of a
# double-quoted attribute); those that stay inside a tag are sent as wapiti builds them for a
# double-quoted attribute: `y` (a value), then the payload with `"` as its separators.
xss = []
for e in ini_payloads(WA + 'xssPayloads.ini'):
    body = e['payload'].replace('__XSS__', 'wxkqz4ptla')
    body = body.replace('[TAB]', '\t').replace('[LF]', '\n').replace('[FF]', '\f')
    if e.get('close_tag', 'yes').lower() in ('no', 'false', '0'):
        if '[ATTR_SEP]' in body:
            xss.append('y' + body.replace('[ATTR_SEP]', '"').replace('[VALUE_SEP]', '"'))
        else:
            xss.append(body)
    else:
        xss.append(body)
        xss.append('">' + body)
write('heldout/xss.wapiti.txt', [wire(l) for l in xss])

# ---------------------------------------------------------------- benign: fortunes
# Quotations cut into query-sized phrases: sentences (., ! and ? end one; ; and : do not),
# then runs of at most 10 words; 3 words at least. Every 7th phrase.
phrases = []
for path in sorted(glob.glob('/usr/share/games/fortunes/*')):
    base = os.path.basename(path)
    if '.' in base or base in ('art', 'ascii-art'):
        continue
    with open(path, encoding='utf-8', errors='replace') as f:
        text = f.read()
    for entry in text.split('\n%\n'):
        words_all = ' '.join(entry.split())
        for sentence in re.split(r'(?<=[.!?])\s+', words_all):
            words = [w for w in sentence.strip('-').split() if not w.startswith('--')]
            for i in range(0, len(words), 10):
                chunk = words[i:i + 10]
                if len(chunk) >= 3:
                    phrases.append(' '.join(chunk).strip('.!?"\''))
phrases = [p for p in phrases if p and '\ufffd' not in p and len(p) <= 100]
write('benign/quotes.txt', phrases[::7])

# ---------------------------------------------------------------- benign: man pages
# The NAME line of every page in manpages and manpages-dev: the summary, and "name summary"
# as someone would search for it.
summaries = []
pages = os.popen('dpkg -L manpages manpages-dev').read().split()
for page in sorted(p for p in pages if re.search(r'/usr/share/man/man\d/[^/]+\.gz$', p)):
    with gzip.open(page, 'rt', encoding='utf-8', errors='replace') as f:
        lines = f.read().split('\n')
    if any(l.startswith('.so ') for l in lines[:3]):
        continue
    for i, l in enumerate(lines):
        if l.strip().upper() in ('.SH NAME', '.SH "NAME"'):
            name_line = lines[i + 1] if i + 1 < len(lines) else ''
            if '\\-' in name_line:
                names, summary = name_line.split('\\-', 1)
                summary = re.sub(r'\\f[BIRP]|\\\(|\\&|\\', '', summary).strip()
                first = names.split(',')[0].strip().replace('\\', '')
                if summary:
                    summaries.append(summary)
                    summaries.append(first + ' ' + summary)
            break
write('benign/man.txt', summaries)

# ---------------------------------------------------------------- benign: word pairs
words = [w for w in read('/usr/share/dict/words') if w.isascii()]
wrng = random.Random(7)
pairs = []
for _ in range(2500):
    pairs.append(wrng.choice(words) + ' ' + wrng.choice(words))
write('benign/words.txt', pairs)
PY

# ---------------------------------------------------------------- held out: boofuzz (PyPI)
# boofuzz's string fuzz library (`boofuzz/primitives/string.py`, `_fuzz_library`), from its
# wheel on PyPI: the lines that put a command after a separator. Not used for tuning until
# measured (see the README's figures).
bf="$(mktemp -d)"
trap 'rm -rf "$bf"' EXIT
python3 -m pip download --quiet --no-deps boofuzz==0.4.2 -d "$bf"
python3 -m zipfile -e "$bf"/boofuzz-0.4.2-py3-none-any.whl "$bf/wheel"
python3 - "$here" "$bf/wheel/boofuzz/primitives/string.py" <<'PY'
import ast, re, sys

out, src = sys.argv[1], open(sys.argv[2], encoding='utf-8').read()


def wire(text):
    return ''.join('%%%02X' % ord(c) if c in '%+' or ord(c) < 0x20 or ord(c) == 0x7f else c
                   for c in text)


lib = None
for node in ast.walk(ast.parse(src)):
    if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '_fuzz_library'
                                            for t in node.targets):
        lib = node.value
items = []
for elt in lib.elts:
    # String literals and literal repetitions ("%n" * 100); nothing else is evaluated.
    v = eval(compile(ast.Expression(elt), 'lib', 'eval'), {'__builtins__': {}})
    if isinstance(v, str):
        items.append(v)
HEX = re.compile(r'%[0-9A-Fa-f]{2}')
SEP_CMD = re.compile(r'(?:[;|&\n\r`]|\$\()[ \t]*[A-Za-z_$/]')
keep = []
for s in items:
    # boofuzz sends `%0a` as three characters: in a URL they are an encoded byte.
    text = HEX.sub(lambda m: chr(int(m.group(0)[1:], 16)), s)
    # Binary junk and format strings; then only a separator followed by a command (not a
    # bare word, a command with a trailing separator, input redirection or SSI).
    if any((ord(c) < 0x20 and c not in '\n\r\t') or ord(c) >= 0x7f for c in text):
        continue
    if SEP_CMD.search(text):
        keep.append(wire(text))
with open(out + '/heldout/cmdi.boofuzz.txt', 'w', encoding='utf-8') as f:
    f.write('\n'.join(keep) + '\n')
PY
