#!/usr/bin/env bash
# The long crash test: load against the release binary, `kill -9` at random moments, restart on the
# same data directory, then check the whole history (nothing acknowledged lost, no acknowledged
# delete undone, nothing delivered that was never sent). See crates/holdfast/tests/e2e/crash.rs.
#
# Usage: scripts/crash-test.sh [--cycles N] [--seed S]
#   --cycles N   kills to run (default 50; CI runs 3 through plain `cargo test`)
#   --seed S     replay the choices of an earlier run (its seed is printed first)
set -euo pipefail
cd "$(dirname "$0")/.."

cycles=50
seed=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cycles) cycles="${2:?--cycles needs a number}"; shift 2 ;;
    --seed) seed="${2:?--seed needs a number}"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "crash-test.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done

export HOLDFAST_CRASH_CYCLES="$cycles"
if [[ -n "$seed" ]]; then
  export HOLDFAST_CRASH_SEED="$seed"
fi
exec cargo test --release -p holdfast --test e2e -- --nocapture crash::kill_9
