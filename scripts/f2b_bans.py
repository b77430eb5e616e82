#!/usr/bin/env python3
"""Which addresses a fail2ban jail bans, from `fail2ban-regex -o row` output.

usage: f2b_bans.py JAIL [JAIL.CONF] < rows > banned-ips

fail2ban bans an address once `maxretry` failures fall within `findtime`; this applies that rule,
with the jail's stock values from jail.conf (default /etc/fail2ban/jail.conf, [DEFAULT] when the
jail does not set them), to the failures fail2ban-regex found (each row: ['ip', epoch, {...}]).
Prints "maxretry findtime" of the jail on stderr.
"""
import ast
import collections
import configparser
import sys


def seconds(text):
    text = text.split("#")[0].strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def jail_params(jail, path):
    cp = configparser.ConfigParser(interpolation=None, strict=False, inline_comment_prefixes=("#", ";"))
    cp.read(path)
    section = cp[jail] if cp.has_section(jail) else cp["DEFAULT"]
    return int(section.get("maxretry")), seconds(section.get("findtime"))


def main():
    jail = sys.argv[1]
    conf = sys.argv[2] if len(sys.argv) > 2 else "/etc/fail2ban/jail.conf"
    maxretry, findtime = jail_params(jail, conf)
    print(f"{maxretry} {findtime:.0f}", file=sys.stderr)
    times = collections.defaultdict(list)
    for line in sys.stdin:
        line = line.strip().rstrip(",")
        if not line.startswith("["):
            continue
        try:
            row = ast.literal_eval(line)
        except (ValueError, SyntaxError):
            continue
        times[row[0]].append(float(row[1]))
    for ip, ts in sorted(times.items()):
        ts.sort()
        window = collections.deque()
        for t in ts:
            window.append(t)
            while window and t - window[0] >= findtime:
                window.popleft()
            if len(window) >= maxretry:
                print(ip)
                break


if __name__ == "__main__":
    main()
