#!/usr/bin/env python3
"""Score flagged client addresses against a `tower-siem generate` ground-truth file.

usage: score.py TRUTH.json TOOL=FLAGGED [TOOL=FLAGGED ...] [--lines-per-sec TOOL=N ...] [--markdown]

FLAGGED is a file of flagged addresses, one per line, or a `tower-siem triage --output json`
report (recognised by its `clients` list). Every tool is scored by the same code:

- recall per attack scenario = flagged addresses of that scenario / its addresses;
- precision = flagged attacker addresses / all flagged addresses (an address absent from the
  truth counts as a false positive);
- false positives per benign scenario, so a reader sees whom a tool would have hurt.
"""
import json
import sys


def load_flagged(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    stripped = text.lstrip()
    if stripped.startswith("{"):
        report = json.loads(text)
        return {c["ip"] for c in report["clients"] if c["verdict"] != "allow"}
    return {line.strip() for line in text.splitlines() if line.strip()}


def score(truth, flagged):
    by_ip = {c["ip"]: c for c in truth["clients"]}
    rows = {}
    for s in truth["scenarios"]:
        rows[s["name"]] = {"attacker": s["attacker"], "total": 0, "flagged": 0}
    for c in truth["clients"]:
        r = rows[c["scenario"]]
        r["total"] += 1
        if c["ip"] in flagged:
            r["flagged"] += 1
    tp = sum(1 for ip in flagged if ip in by_ip and by_ip[ip]["attacker"])
    unknown = sum(1 for ip in flagged if ip not in by_ip)
    precision = tp / len(flagged) if flagged else 1.0
    attackers = sum(1 for c in truth["clients"] if c["attacker"])
    return {
        "rows": rows,
        "precision": precision,
        "recall": tp / attackers if attackers else 1.0,
        "flagged": len(flagged),
        "tp": tp,
        "unknown": unknown,
    }


def main(argv):
    args = [a for a in argv[1:]]
    markdown = "--markdown" in args
    args = [a for a in args if a != "--markdown"]
    speeds = {}
    if "--lines-per-sec" in args:
        i = args.index("--lines-per-sec")
        for kv in args[i + 1:]:
            k, v = kv.split("=", 1)
            speeds[k] = v
        args = args[:i]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        truth = json.load(f)
    tools = []
    for kv in args[1:]:
        name, path = kv.split("=", 1)
        tools.append((name, score(truth, load_flagged(path))))
    scen = [s["name"] for s in truth["scenarios"]]
    attack = [s for s in scen if any(x["name"] == s and x["attacker"] for x in truth["scenarios"])]
    benign = [s for s in scen if s not in attack]
    width = max(len(s) for s in scen) + 2

    def cell(r):
        if r["total"] == 0:
            return "-"
        return f"{r['flagged'] / r['total']:.2f} ({r['flagged']}/{r['total']})"

    header = ["scenario"] + [n for n, _ in tools]
    lines = []
    lines.append(header)
    lines.append(["**recall**" if markdown else "RECALL (flagged / attackers)"] + [""] * len(tools))
    for s in attack:
        lines.append([s] + [cell(t["rows"][s]) for _, t in tools])
    lines.append(["all attackers"] + [f"{t['recall']:.3f} ({t['tp']})" for _, t in tools])
    lines.append(["**false positives**" if markdown else "FALSE POSITIVES (flagged / clients)"] + [""] * len(tools))
    for s in benign:
        lines.append([s] + [cell(t["rows"][s]) for _, t in tools])
    lines.append(["**precision**" if markdown else "PRECISION"] + [f"{t['precision']:.3f} ({t['tp']}/{t['flagged']})" for _, t in tools])
    if speeds:
        lines.append(["lines/s"] + [speeds.get(n, "-") for n, _ in tools])
    if markdown:
        print("| " + " | ".join(lines[0]) + " |")
        print("|" + "---|" * len(lines[0]))
        for row in lines[1:]:
            print("| " + " | ".join(row) + " |")
    else:
        cols = [max(len(row[i]) for row in lines) + 2 for i in range(len(lines[0]))]
        for row in lines:
            print("".join(c.ljust(w) for c, w in zip(row, cols)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
