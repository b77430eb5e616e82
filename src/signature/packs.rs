//! The built-in pattern packs.
//!
//! Written for precision first: a false positive blocks a real user, while a missed probe is
//! usually caught by the next one or by a rate rule. Every pattern therefore asks for some
//! structure of the attack (a quote *and* a boolean *and* a comparison; a tag *and* an event
//! handler), never a lone keyword that also occurs in a search box.
//!
//! Patterns are matched case-insensitively over bytes, with ASCII-only `\w`/`\s` classes,
//! against the decoded text (see the module docs of [`crate::signature`]).

use super::{Field, Pack, Tokeniser};

fn pack(id: &str, fields: &[Field], patterns: &[&str], literals: &[&str]) -> Pack {
    weak_pack(id, fields, patterns, literals, &[])
}

fn weak_pack(
    id: &str,
    fields: &[Field],
    patterns: &[&str],
    literals: &[&str],
    weak: &[&str],
) -> Pack {
    let owned = |v: &[&str]| v.iter().map(|p| (*p).to_owned()).collect();
    Pack {
        id: id.to_owned(),
        fields: fields.to_vec(),
        patterns: owned(patterns),
        literals: owned(literals),
        weak: owned(weak),
        tokeniser: None,
    }
}

const ALL: &[Field] = &[Field::Path, Field::Query, Field::UserAgent];

/// Attack and scanning tools that announce themselves in `User-Agent`.
///
/// Only tools whose purpose is probing or attacking; general HTTP clients (curl,
/// python-requests, Go-http-client, okhttp) and monitors are deliberately absent.
fn scanner_ua() -> Pack {
    pack(
        "scanner_ua",
        &[Field::UserAgent],
        &[
            r"\bnmap\b",
            r"\bdirb\b",
            r"\bhydra\b",
            r"\bparos/",
            r"\bzmeu\b",
            r"\bffuf\b",
            r"\bhavij\b",
            r"\bmorfeus\b",
        ],
        &[
            "sqlmap",
            "nikto",
            "nuclei",
            "masscan",
            "zgrab",
            "gobuster",
            "dirbuster",
            "wfuzz",
            "fuzz faster u fool",
            "feroxbuster",
            "wpscan",
            "acunetix",
            "netsparker",
            "burpcollaborator",
            "burp collaborator",
            "openvas",
            "w3af",
            "nessus",
            "jaeles",
            "whatweb",
            "commix",
            "xsstrike",
            "arachni",
            "skipfish",
            "sqlninja",
            "fimap",
            "dotdotpwn",
            "webinspect",
            "appscan",
            "wapiti",
            "joomscan",
            "droopescan",
            "interactsh",
        ],
    )
}

/// Requests for files and consoles that should never be served: VCS metadata, secrets,
/// editor leftovers, backups, PHP admin tools, debug endpoints.
fn sensitive_file() -> Pack {
    pack(
        "sensitive_file",
        &[Field::Path],
        &[
            // Dotfiles and dot-directories with secrets or history.
            r"/\.env(?:\.[\w.-]*)?(?:/|$)",
            r"/\.(?:git|svn|hg|bzr|cvs)(?:/|$)",
            r"/\.(?:git-credentials|gitconfig|npmrc|pypirc|netrc|pgpass|s3cfg|dockercfg|boto)$",
            r"/\.(?:bash|zsh|mysql|psql|python|node_repl)_history$",
            r"/\.(?:aws|ssh|docker|kube|gnupg|azure|config/gcloud)/",
            r"/\.(?:idea|vscode)/",
            r"/\.ht(?:access|passwd)$",
            r"/id_(?:rsa|dsa|ecdsa|ed25519)(?:\.pub)?$",
            // Editor swap files and backup copies.
            r"\.(?:bak|old|orig|save|swp|swo|sql|backup)$",
            r"/[^/]+\.\w{1,5}~$",
            r"/(?:backup|backups|db|database|dump|site|www|wwwroot|htdocs|public_html|sql)\.(?:zip|tar|tgz|tar\.gz|tar\.bz2|gz|7z|rar|sql|sql\.gz)$",
            // Server and framework configuration.
            r"/(?:web|app)\.config$",
            r"/(?:wp-)?config(?:uration)?\.(?:php|inc|ini)$",
            r"/(?:settings|local_settings|secrets?|credentials|database)\.(?:py|ya?ml|ini|php)$",
            r"/(?:docker-compose|\.gitlab-ci|\.travis)\.ya?ml$",
            r"/terraform\.tfstate(?:\.backup)?$",
            r"/(?:sftp|ftp)-config\.json$",
            // Admin tools and consoles nobody should reach from outside.
            r"/wp-(?:login|config|signup|cron)\.php",
            r"/wp-(?:admin|includes)(?:/|$)",
            r"/wp-content/(?:debug\.log|uploads/.*\.php)",
            r"/xmlrpc\.php",
            r"/phpmyadmin\d*(?:/|$)",
            r"^/(?:pma|myadmin|mysqladmin|dbadmin|sqladmin)(?:/|$)",
            r"/adminer(?:-[\d.]+)?(?:-\w+)?\.php",
            r"/(?:php)?info\.php$",
            r"/server-(?:status|info)(?:/|$)",
            r"/actuator/(?:env|heapdump|threaddump|configprops|mappings|beans|jolokia|gateway|loggers|shutdown|trace|httptrace|logfile)",
            r"/debug/(?:pprof|vars)(?:/|$)",
            r"/(?:elmah|trace)\.axd",
            r"/(?:jmx-console|web-console|manager/html|host-manager/html)(?:/|$)",
            r"/vendor/phpunit/",
            r"/cgi-bin/(?:test-cgi|printenv|php\d?(?:-cgi)?)",
            r"/_profiler(?:/|$)",
            r"/telescope/requests",
            r"/etc/(?:passwd|shadow)\b",
        ],
        &["/.ds_store", "/.aws/credentials", "/.ssh/authorized_keys"],
    )
}

/// Directory traversal, including the encodings the decoder cannot fold.
fn traversal() -> Pack {
    weak_pack(
        "traversal",
        &[Field::Path, Field::Query],
        &[
            // An absolute path that climbs above the root: `/../` at the start of the path or
            // of a value. The resolved view (`/static/../../x` → `/../x`) brings every climbing
            // path to this form; one that stays inside the site (`/account/../orders`) is
            // resolved away.
            r#"(?:^|[=&\s"',(|<>])/\.\.(?:;[^/]*)?(?:/|$)"#,
            // Two parent segments at the start of a relative value: above its base.
            r#"(?:^|[=&\s"',(|<>])\.\.(?:;[^/]*)?/+(?:\./+)*\.\.(?:;[^/]*)?(?:/|$)"#,
            // A NUL byte after dots (`..%00/`): truncation, never in a real path.
            r"\.\.\x00",
            // One parent segment at the start of a value, aiming at something worth reading.
            r#"(?:^|[=\s"':,])\.\.;?/[^&]*?(?:etc/|windows/|winnt/|proc/self|boot\.ini|win\.ini|passwd|shadow|web\.xml|wp-config|\.(?:env|ini|conf|config|log|xml|ya?ml|properties|pem|key|git|htaccess|htpasswd)\b)"#,
            r"\.\.\.\.//",
            r"(?:^|[/=\s])\.{3,}/+\.{2,}",
            // Targets that only a traversal or file-inclusion payload names.
            r"\betc/(?:passwd|shadow)\b",
            r"\b(?:win|boot|system)\.ini\b",
            r"\bproc/self/(?:environ|cmdline|maps|fd|status|cwd)\b",
            r"\bwindows/system32/",
            r"\bsystem32/drivers/etc",
            // Escapes still visible after decoding: double-encoded overlong forms and `%u`.
            r"%(?:c0%(?:ae|af|2e|2f)|c1%(?:9c|1c)|e0%80%(?:ae|af))",
            r"%u(?:002e|002f|005c|2215|2216|ff0e|ff0f)",
        ],
        &[],
        // Any parent segment: a relative link or a scanner's probe that stays inside the
        // site. Evidence, not a verdict.
        &[r#"(?:^|[/=&\s"',(|<>])\.\.(?:;[^/]*)?(?:/|$)"#],
    )
}

/// Statements that follow a `;` in a stacked injection.
const STACKED: &str = r"(?:drop\s+(?:table|database|schema)|delete\s+from|insert\s+into|update\s+[\w`.]+\s+set\s+[\w`.]+\s*=|truncate\s+table|alter\s+table|create\s+(?:table\s+[\w`.]+\s*\(|user\s|database\s)|shutdown\b|exec(?:ute)?\s+(?:xp_|sp_|master\.)|declare\s+@|waitfor\s+delay|iif\s*\(|call\s+\w+\s*\(|select\s+(?:pg_sleep|sleep|benchmark|\*\s+from|\(|count\s*\(|case\b|\d|'|if\s*\(|iif\s*\(|like\s*\(|[\w,\s]+\bfrom\b))";

/// SQL injection: quote-breaking with boolean logic, UNION SELECT, stacked statements,
/// comment truncation, time delays and database fingerprinting functions.
fn sqli() -> Pack {
    let stacked = format!(r#"(?:['`)]|(?:^|[=&])[^\s&=;]*[\w)])\s*;\s*{STACKED}"#);
    let stacked_in_text = format!(r"['`\w)]\s*;\s*{STACKED}");
    let mut p = weak_pack(
        "sqli",
        ALL,
        &[
            // ' or 1=1 / " and 'a'='a / ') or ('x'<>'y
            r#"['"`]\s*\)*\s*(?:\bor\b|\band\b|\bxor\b|\|\||&&)\s*\(*\s*(?:['"`]?[\w.-]*['"`]?\s*(?:=|<>|!=|<=?|>=?|\blike\b|\brlike\b|\bregexp\b|\bis\s+(?:not\s+)?null\b|\bbetween\b|\bin\s*\()|\b(?:true|false|sleep|benchmark|pg_sleep|exists|select)\b)"#,
            // 1 or 1=1 / 5 and 0=0-- : a number, then a tautology.
            r#"\d['")]*\s+(?:or|and|xor)\s+['"(]*(?:[01]\s*=\s*[01]\b|\d+\s*=\s*\d+\s*(?:--|#|/\*)|(?:true|false)\s*(?:--|#|/\*))"#,
            // UNION [ALL] SELECT with a column list.
            r"\bunion(?:\s+|/\*[^*]*\*/|\()+(?:all|distinct)?(?:\s+|/\*[^*]*\*/|\()*select(?:\s+|/\*[^*]*\*/|\()+(?:null\b|\d|@@|0x|\*|char\s*\(|concat|version\s*\(|user\s*\(|database\s*\(|group_concat|[\w.`]+\s*(?:,|\bfrom\b))",
            // Stacked statements, after a closing quote or parenthesis, or in the first word
            // of a value (`id=1;drop table users`).
            &stacked,
            // A quote closed in the first word of a value, then the rest commented away.
            r"(?:^|[=&])[^\s&=']*'\s*\)*\s*(?:--(?:[\s\-+]|$)|#(?:\s|$)|/\*)",
            r"'\s*\)*\s*(?:--|#)[\s-]*(?:$|&)",
            r#"["`]\)*(?:--(?:[\s\-+]|$)|#(?:\s|$)|/\*)"#,
            r"\border\s+by\s+\d+\s*(?:--|#|/\*)",
            // Time delays and fingerprinting functions.
            r"\bsleep\s*\(\s*\d+(?:\.\d+)?\s*\)",
            r"\bbenchmark\s*\(\s*\d+\s*,",
            r"\bpg_sleep\s*\(",
            r"\bwaitfor\s+(?:delay|time)\s+'",
            r"\binformation_schema\s*\.",
            r"\b(?:extractvalue|updatexml|load_file)\s*\(",
            r"\binto\s+(?:out|dump)file\b",
            r"\bdbms_pipe\.receive_message\b",
            r"\butl_(?:inaddr|http)\.",
            r"\bxp_cmdshell\b",
            r"@@(?:version|datadir|hostname|basedir)\b",
            r"\bchar\s*\(\s*\d+\s*(?:,\s*\d+\s*){2,}\)",
            r"\b(?:unhex|concat(?:_ws)?|char|select|where|like|and|or)\s*\(?\s*0x[0-9a-f]{8,}",
            r"\bsqlite_master\b",
            r"\bpg_shadow\b",
            // A value that opens with a boolean operator (after a number or nothing) and
            // compares: `1 OR NOT 2514=2514`, `1 AND CHAR(49)=CHAR(49)`, `or 1=1--`.
            // (No space around the comparison: `1 and 1 = 2` typed in a search box is weak.)
            r#"(?:^|[=&])\s*-?\d*['")]*\s*(?:or|and|xor|having|&&|\|\|)\s+(?:not\s+)?[^&\s=<>!]{1,60}(?:=|<>|!=|<=?|>=?)['"(]*[\w$@.]"#,
            // Subqueries, conditionals and functions of blind and error-based payloads.
            r#"\(\s*select\s+(?:\*|count\s*\(|\d|'|"|\(|case\b|concat|char\s*\(|if\s*\(|elt\s*\(|top\s+\d|[\w.@$]+\s*(?:,|\bfrom\b))"#,
            r#"\bcase\s+when\s*\(*\s*[\w'.]+\s*(?:=|<>|!=|<|>)\s*[\w'.]+\s*\)*\s*then\b"#,
            r"\b(?:elt|make_set|iif|if|nullif|ifnull|gtid_subset)\s*\(\s*\(*\s*\d+\s*=\s*\d+",
            r"\bexp\s*\(\s*~",
            r"\b(?:generate_series|randomblob|zeroblob|regexp_substring|crypt_key|gtid_subset|json_keys|make_set)\s*\(",
            r"\b(?:sysibm\.sys\w+|rdb\$\w+|sysmaster:\w+|ctxsys\.\w+|domain\.domains)\b",
            r"\ball_users\s+t\d",
            r"\bfrom\s+dual\b",
            r"\bascii\s*\(\s*substr(?:ing)?\s*\(",
        ],
        &[],
        &[
            // The same in free text: `chapter 3; create table (...)`, `Guns N' -- Roses`.
            &stacked_in_text,
            r"'\s*\)*\s*(?:--(?:[\s\-+]|$)|#(?:\s|$)|/\*)",
            r#"(?:^|[=&])\s*-?\d*['")]*\s*(?:or|and|xor|having)\s+(?:not\s+)?[^&\s]{1,60}\s*(?:=|<>|!=|<=?|>=?)\s*['"(]*[\w$@.]"#,
        ],
    );
    p.tokeniser = Some(Tokeniser::Sql);
    p
}

/// Cross-site scripting: script tags, event handlers inside tags, `javascript:` URLs,
/// dangerous embedding tags, dialog probes and data URLs.
fn xss() -> Pack {
    const EVENTS: &str = "(?:error|load|click|dblclick|auxclick|contextmenu|mouse\\w+|pointer\\w+|focus\\w*|blur|key\\w+|submit|change|input|invalid|reset|select|scroll|wheel|drag\\w*|drop|copy|paste|cut|resize|unload|beforeunload|hashchange|message|popstate|pageshow|pagehide|toggle|begin|end|start|finish|animation\\w+|transition\\w+|play\\w*|ended|canplay\\w*|loadstart|loadeddata|search|show|afterprint|beforeprint|readystatechange|touch\\w+|scroll\\w+|before\\w+|after\\w+|content\\w+|page\\w+|fullscreen\\w*|security\\w+)";
    // Inside a tag any `on…=` attribute is a handler: new events need no list update.
    let handler_in_tag = r"<[a-z!/][^<>]*?[\s/'\x22]on[a-z]{3,}\s*=".to_owned();
    let handler_after_quote = format!(r"['\x22`]\s*[\s/]*on{EVENTS}\s*=");
    let mut p = pack(
        "xss",
        ALL,
        &[
            // A closing tag that ends the value or is followed by markup (breaking out of an
            // inline script), a script element with an attribute, or an opening tag that ends
            // the value or is followed by markup or code; `<script> tag placement` or `how to
            // close a </script> tag` typed in a search is evidence only (below).
            r"</script\b[^<>]*>?\s*(?:$|[&<'\x22;`])",
            r"<script[\s/][^<>]*?=",
            r#"<script\b[^<>]*>\s*(?:$|[&<'\x22(\[{;`]|[\w.$]+\s*[(=\[`.])"#,
            // Browsers drop tabs and newlines inside a scheme: `java&Tab;script:`.
            r"(?:j[\t\n\r]*a[\t\n\r]*v[\t\n\r]*a|vb|live)[\t\n\r]*s[\t\n\r]*c[\t\n\r]*r[\t\n\r]*i[\t\n\r]*p[\t\n\r]*t\s*:(?:[^\s]|\s+[\w.$\[\]]+\s*[(=\[`])",
            r"<(?:iframe|frame|object|embed|applet)\b[^<>]*?\b(?:src|data|code|codebase|srcdoc)\s*=",
            r"<meta\b[^<>]*?\bhttp-equiv\b",
            r"<base\b[^<>]*?\bhref\s*=",
            r"<(?:svg|math|img|image|video|audio|body|details|marquee|input|form|button|a|div|style|link|x)\b[^>]*?\b(?:src|href|data|action|formaction|xlink:href|srcdoc)\s*=\s*['\x22]?\s*(?:javascript|vbscript|data)\s*:",
            // A dialog probe that ends the value or is followed by markup or script, not words.
            r"\b(?:alert|prompt|confirm)\s*(?:\(|`)\s*(?:\d+|(?:document|window|top|self|parent)\.[\w.]+|['\x22`][^'\x22`]{0,40}['\x22`]|/[^/]{0,40}/|string\.fromcharcode\s*\([^)]{0,80}\))\s*[)`]\s*(?:$|[;<>'\x22`)}/&,]|-->)",
            r"[(+]\s*document\.(?:cookie|domain)\b",
            r"\bdocument\.location\s*=",
            r"\bdata\s*:\s*(?:text/html|image/svg\+xml|application/(?:x-)?javascript)",
            r"\bsrcdoc\s*=",
            r"\bstyle\s*=[^>]*expression\s*\(",
            r"\beval\s*\(\s*(?:atob|string\.fromcharcode|unescape|decodeuri)",
        ],
        &[],
    );
    p.weak.push(r"</?script\b".to_owned());
    // The same probe in free text (`alert('hi') not working`): evidence only.
    p.weak.push(
        r"\b(?:alert|prompt|confirm)\s*(?:\(|`)\s*(?:\d|document\.|window\.|['\x22`]|/|string\.fromcharcode)".to_owned(),
    );
    p.patterns.push(handler_in_tag);
    p.patterns.push(handler_after_quote);
    p.tokeniser = Some(Tokeniser::Html);
    p
}

/// OS command injection: a shell separator followed by a command, shell metasyntax.
fn cmdi() -> Pack {
    // Separators that end one shell command and begin another (a lone `&` is excluded: it
    // separates query parameters).
    const SEP: &str = r"(?:[;|`\n]|\$\(|&&|\|\|)\s*";
    // Commands that are not everyday words: enough on their own after a separator.
    const RECON: &str = r"(?:whoami|uname|netstat|tasklist|ifconfig|ipconfig|systeminfo|printenv|certutil|bitsadmin|busybox|nslookup|powershell|/bin/\w+|/usr/bin/\w+)";
    // Commands whose names are words or abbreviations: they need shell-looking arguments.
    const TOOLS: &str = r"(?:curl|wget|bash|sh|zsh|python[23]?|perl|ruby|php|node|nc|ncat|netcat|chmod|chown|cat|more|less|head|tail|ls|rm|echo|ping|dir|type|dig|telnet|sleep|kill|touch|tftp|net|pwsh|cmd|netstat|base64|dir)";
    // Short commands that only count when followed by another separator.
    const BARE: &str = r"(?:id|ls|pwd|hostname|whoami|uname|env|ifconfig|dir|netstat|set)";
    // The separator in the first word of a value (`host=127.0.0.1;id`, `x%0aid`): a value
    // that is not free text. After other words (`cd app; ls -la` in a search box) the same
    // shape is a code snippet a person typed, weak evidence only.
    const FIRST: &str = r"(?:^|[=&])[^\s&=|;`]*\s*";
    let patterns = vec![
        format!(r"(?:{SEP}|&\s*){RECON}\b(?:\s|$|[;|&`)<>#]|\$)"),
        format!(r"{FIRST}{SEP}{TOOLS}\s*<\s*/"),
        r"\{\s*(?:cat|ls|id|wget|curl|nc|bash|sh|echo|ping)\s*,".to_owned(),
        r"(?:^|[;|&`\s=])/[?*]{2,}/[?*\w]*[?*]".to_owned(),
        r"\|\s*base64\s+-{1,2}d".to_owned(),
        r"\b(?:nc|ncat|netcat)\s+[^&]{0,60}\s-[a-z]*e\s+(?:/bin/|/usr/bin/|cmd|sh\b|bash\b)".to_owned(),
        format!(
            r#"{FIRST}{SEP}{TOOLS}\s+(?:-{{1,2}}\w|/|~/|\.\.?/|[a-z]:/|\$|https?:|ftp:|['"]|\d+\s*(?:[;|&`)#]|$)|user\b|localgroup\b)"#
        ),
        format!(r"{FIRST}(?:[;`\n]|\$\(|&&|\|\|)\s*{BARE}(?:\s|$|[;|&`)#])"),
        // A pipe also separates field lists (`fields=name|id`): only after a host, a number
        // or nothing.
        format!(r"(?:^|[=&])(?:[\d.:]*|[\w-]+(?:\.[\w-]+)+)\|\s*{BARE}(?:\s|$|[;|&`)#])"),
        r"\$\{?IFS\b".to_owned(),
        r"/dev/(?:tcp|udp)/".to_owned(),
        r"\b(?:nc|ncat|netcat)\s+(?:-\w+\s+)*-[a-z]*e\s".to_owned(),
        r"\bcmd(?:\.exe)?\s+/[ck]\s".to_owned(),
        r"\bpowershell(?:\.exe)?\s+-(?:e|enc|encodedcommand|nop|noprofile|w|windowstyle|c|command)\b".to_owned(),
        r"`\s*(?:id|whoami|dir|ls|pwd|uname[^`]*|echo\s[^`]+|sleep\s+\d+|nslookup\s[^`]+|curl\s[^`]+|wget\s[^`]+)`".to_owned(),
        r"\$\(\s*(?:id|whoami|uname|cat|ls|sleep|nslookup|curl|wget|echo)\b[^)]*\)".to_owned(),
    ];
    let weak = vec![
        format!(
            r#"{SEP}{TOOLS}\s+(?:-{{1,2}}\w|/|~/|\.\.?/|[a-z]:/|\$|https?:|ftp:|['"]|\d+\s*(?:[;|&`)#]|$)|user\b|localgroup\b)"#
        ),
        format!(r"{SEP}{BARE}\s*(?:[;|`)#\n]|&&)"),
    ];
    Pack {
        id: "cmdi".to_owned(),
        fields: ALL.to_vec(),
        patterns,
        literals: Vec::new(),
        weak,
        tokeniser: Some(Tokeniser::Shell),
    }
}

/// Server-side template injection probes for Jinja, Twig, Freemarker, Velocity, ERB,
/// Thymeleaf/Spring EL, Smarty and friends.
fn ssti() -> Pack {
    pack(
        "ssti",
        ALL,
        &[
            // Arithmetic probes: {{7*7}}, ${7*7}, #{7*7}, *{7*7}, {{7*'7'}}, @(7*7).
            r#"(?:[{$#*]\{|\[\[|@\()=?\s*['"]?\d+['"]?\s*[*+/-]\s*['"]?\d+['"]?\s*[}\])]"#,
            // Code execution from a template expression.
            r#"(?:\{\{|\$\{|#\{|\{%|<%|@\{|@\(|\[\[)[^}]{0,160}?(?:child_process|mainmodule|processbuilder|\.popen\s*\(|\bos\.system|passthru|shell_exec|getclass\s*\(\s*\)|forname\s*\(|__import__|\bsystem\s*\(|diagnostics\.process|\bexec\s*\(|getruntime|pagecontext\.|\.getsession\s*\(|\|\s*(?:map|filter|sort|attr|reduce)\s*\(\s*['"]?(?:system|passthru|exec|shell_exec|\\x5f))"#,
            r"\{\s*(?:system|passthru|exec|shell_exec)\s*\(",
            r"\{\$smarty\.",
            r"smarty_internal_\w+",
            r"\bsystem\.diagnostics\.process\.start\b",
            r#"\{\{#with\s+['"][^'"]*['"]\s+as\s+\|"#,
            r"<%=?[^%>]{1,80}%>",
            // Object-graph walking.
            r#"[.\['"]__(?:class|mro|base|bases|subclasses|globals|builtins|import|init)__\b"#,
            r"\{\{[^}]{0,80}?\b(?:config|self|request|lipsum|cycler|joiner|namespace|url_for|get_flashed_messages)\b[^}]{0,80}\}\}",
            r"\{\{[^}]{0,80}?constructor\.constructor",
            r"\{\{\s*_self\.env\b",
            r"\bT\s*\(\s*java\.lang\.",
            r"\bgetRuntime\s*\(\s*\)\s*\.\s*exec\b",
            r"freemarker\.template\.utility\.(?:Execute|ObjectConstructor)",
            r"<#assign\b",
            r"#set\s*\(\s*\$\w+\s*=",
            r"\$\{[^}]{0,80}\?new\s*\(",
            r"\{php\}",
            r"\{%\s*(?:import|debug|include|load|extends|set\s+\w+\s*=|for\s+\w+\s+in\s+\(\)\.__)",
        ],
        &[],
    )
}

/// Log4Shell (CVE-2021-44228) lookups and their obfuscations.
fn log4shell() -> Pack {
    pack(
        "log4shell",
        ALL,
        &[
            r"\$\{\s*jndi\s*:",
            // Nested lookups: ${${lower:j}ndi:…}, ${j${::-n}di:…}.
            r"\$\{[^}]{0,30}\$\{",
            // Lookups used to build or exfiltrate: ${::-j}, ${lower:…}, ${env:…}, ${sys:…}.
            r"\$\{\s*(?:::-|(?:lower|upper|env|sys|java|main|k8s|docker|bundle|ctx|spring|jvmrunargs|log4j|marker|sd|web|base64|date|event|map)\s*:)",
            r"\bjndi\s*:\s*(?:ldaps?|rmi|dns|iiop|corba|nds|nis|https?)\s*:",
        ],
        &[],
    )
}

/// Shellshock (CVE-2014-6271) function-definition prefixes.
fn shellshock() -> Pack {
    pack(
        "shellshock",
        ALL,
        &[r"\(\s*\)\s*\{\s*[\w:]\s*;\s*\}", r"\(\s*\)\s*\{\s*:\s*;"],
        &[],
    )
}

/// The built-in packs, in the order [`Inspector::inspect`](super::Inspector::inspect) reports
/// them: `scanner_ua`, `sensitive_file`, `traversal`, `sqli`, `xss`, `cmdi`, `ssti`,
/// `log4shell`, `shellshock`.
///
/// ```
/// let ids: Vec<String> = tower_siem::signature::builtin_packs().into_iter().map(|p| p.id).collect();
/// assert!(ids.contains(&"sqli".to_owned()));
/// ```
pub fn builtin_packs() -> Vec<Pack> {
    vec![
        scanner_ua(),
        sensitive_file(),
        traversal(),
        sqli(),
        xss(),
        cmdi(),
        ssti(),
        log4shell(),
        shellshock(),
    ]
}
