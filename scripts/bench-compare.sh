#!/usr/bin/env bash
# The side-by-side benchmark: builds the release binary, then runs `holdfast bench compare`,
# which starts every server on loopback, runs the scenarios and prints the tables (raw results
# and results.md in target/bench). Options pass through; see `holdfast bench compare --help`:
#   --quick      short runs (about 5 minutes) instead of the full ones (15-20 minutes)
#   --peers all  also measure the other SQS-compatible servers (fauxqs, sqslite, fakecloud, moto,
#                ministack), installed at pinned versions under target/bench/peers on first use
#                (fakecloud compiles for about 15 minutes); or a comma-separated list of them
#   --moto       the same as --peers moto
#   --no-side, --no-cost, --no-idle, --tables-only
set -euo pipefail
cd "$(dirname "$0")/.."
# Each long poll holds a socket on both sides.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release -p holdfast --quiet
exec "${CARGO_TARGET_DIR:-target}/release/holdfast" bench compare "$@"
