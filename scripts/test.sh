#!/usr/bin/env bash
# The whole test suite: formatting and lints, the Rust tests (unit, storage conformance, end to
# end with aws-sdk-sqs against the real binary, crash and fault tests, the form system against
# SQLite, MariaDB, PostgreSQL and Chromium, the raw SQL baseline against PostgreSQL), then the
# Python compatibility suite (boto3 on both wire protocols, the AWS CLI, the web console in
# Chromium) in its own virtualenv, on SQLite, on the journal engine, with authentication on, and on
# two nodes sharing PostgreSQL. The PostgreSQL engine also runs the storage conformance suite, the
# engines-agree test and a two-node crash test among the Rust tests.
#
# Tests that need MariaDB, PostgreSQL, Chromium or a tmpfs mount print SKIPPED when those are
# missing, and fail instead under CI=true;
# `eval "$(scripts/forms-deps.sh)"` installs and starts them (.ci/run does).
#
# Usage: scripts/test.sh            everything
#        scripts/test.sh --rust     only the Rust side
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "the server builds without the form system"
cargo clippy --quiet -p holdfast --no-default-features -- -D warnings

# One build of the server binary for every test process.
cargo build --quiet --workspace --bins --features holdfast-store/fault-injection
export HOLDFAST_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/holdfast"

step "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

if [[ "${1:-}" == "--rust" ]]; then
  exit 0
fi

step "Python compatibility suite on SQLite (boto3 JSON + Query, AWS CLI) and the README, run top to bottom"
scripts/python-tests.sh -q

# The README and packaging tests (test_readme.py, test_packaging.py) start their own servers, as
# a newcomer or a container would: once is enough.
# The journal engine is the memory engine's state with every change journaled, so this pass
# covers both.
step "Python compatibility suite on the journal engine"
HOLDFAST_STORAGE=journal scripts/python-tests.sh -q --ignore=tests/python/test_readme.py --ignore=tests/python/test_packaging.py

step "Python compatibility suite with every request signed (--credentials)"
HOLDFAST_TEST_AUTH=sigv4 scripts/python-tests.sh -q --ignore=tests/python/test_readme.py --ignore=tests/python/test_packaging.py

# Two holdfast nodes on one PostgreSQL database, every request to the next node in turn. The
# CloudWatch and dashboard tests read the open minute's live figures, which are each node's own
# until written (docs/scale-out.md), so they run in the single-node passes above.
step "Python compatibility suite on two nodes sharing PostgreSQL"
if [[ -n "${HOLDFAST_TEST_POSTGRES_URL:-}" ]]; then
  schema="holdfast_py_$$"
  psql "$HOLDFAST_TEST_POSTGRES_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema"
  HOLDFAST_NODES=2 HOLDFAST_STORAGE="$HOLDFAST_TEST_POSTGRES_URL?options=-csearch_path%3D$schema" \
    scripts/python-tests.sh -q -W ignore::pytest.PytestUnraisableExceptionWarning \
    --ignore=tests/python/test_readme.py --ignore=tests/python/test_packaging.py \
    --ignore=tests/python/test_cloudwatch.py --ignore=tests/python/test_dashboard.py
  psql "$HOLDFAST_TEST_POSTGRES_URL" -qc "DROP SCHEMA $schema CASCADE"
elif [[ -n "${CI:-}" ]]; then
  echo "HOLDFAST_TEST_POSTGRES_URL is not set: the two-node pass cannot run" >&2
  exit 1
else
  echo "SKIPPED: HOLDFAST_TEST_POSTGRES_URL is not set (eval \"\$(scripts/forms-deps.sh)\" starts PostgreSQL)"
fi
