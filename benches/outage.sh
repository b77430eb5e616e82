#!/usr/bin/env bash
# Added request latency while a sink is down: runs tests/outage.rs in release and prints its
# report (p50/p99 with the webhook receiver up and down, and what each scenario delivered,
# dropped and spooled). Bounded: about 10 s of load after the build.
#
# The figures are reported, not asserted; on a shared machine repeat the run and compare.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --features webhook --test outage -- --include-ignored --nocapture 2>&1 \
    | grep -E '^(spool|memory|small queue):|^test result'
