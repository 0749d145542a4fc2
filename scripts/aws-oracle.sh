#!/usr/bin/env bash
# Runs LocalStack's AWS-recorded SQS test suite against holdfast and prints passed / failed /
# skipped. The suite's tests were recorded against real AWS (their snapshots are AWS's answers),
# so a failure here is a difference from AWS unless the test relies on LocalStack itself.
#
#   scripts/aws-oracle.sh LOCALSTACK_CHECKOUT [pytest args...]
#   scripts/aws-oracle.sh ~/src/localstack -k fifo -x
#
# LOCALSTACK_CHECKOUT is a git checkout of github.com/localstack/localstack (the archived
# repository's last commit is the reference). Needs Python 3.12 or newer ($ORACLE_PYTHON, else
# python3.12/python3.13 from PATH or pyenv); the pinned packages (scripts/oracle/requirements.txt)
# go into <repo>/.oracle-venv. The server is this tree's holdfast (`cargo build`, so never a stale
# binary) with --storage memory on a free loopback port. Results: target/oracle/junit.xml,
# pytest.txt and summary.txt.
# Not part of CI: it needs the checkout and takes several minutes.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
checkout="${1:?usage: scripts/aws-oracle.sh LOCALSTACK_CHECKOUT [pytest args...]}"
shift
checkout="$(cd "$checkout" && pwd)"
out="$repo/target/oracle"
mkdir -p "$out"

python="${ORACLE_PYTHON:-}"
if [ -z "$python" ]; then
    for candidate in python3.13 python3.12 "$HOME/.pyenv/versions/3.13.0/bin/python3" "$HOME/.pyenv/versions/3.12.1/bin/python3"; do
        # pyenv shims exist for versions that are not selected: ask the interpreter itself.
        if "$candidate" -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then
            python="$candidate"
            break
        fi
    done
fi
[ -n "$python" ] || { echo "aws-oracle: needs Python 3.12+ (set ORACLE_PYTHON)" >&2; exit 2; }

venv="$repo/.oracle-venv"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/scripts/oracle/requirements.txt"

(cd "$repo" && cargo build --quiet -p holdfast)
binary="${CARGO_TARGET_DIR:-$repo/target}/debug/holdfast"

# The suite's tests import helpers from across its tests/ tree and chain conftest files: run it
# from an export of the checkout's tests/ and pyproject.toml.
suite="$(mktemp -d)"
data="$(mktemp -d)"
cleanup() {
    [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$suite" "$data"
}
trap cleanup EXIT
git -C "$checkout" archive HEAD tests pyproject.toml | tar -x -C "$suite"

# A few tests address LocalStack's fixed endpoint (http://localhost:4566) directly: serve there
# when the port is free.
bind=127.0.0.1:4566
if (exec 3<>/dev/tcp/127.0.0.1/4566) 2>/dev/null; then bind=127.0.0.1:0; fi
"$binary" serve --bind "$bind" --storage memory --data-dir "$data" >"$out/server.out" 2>"$out/server.log" &
server_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$out/server.out" 2>/dev/null && break; sleep 0.1; done
url="$(sed -n 's/^listening on //p' "$out/server.out")"
[ -n "$url" ] || { echo "aws-oracle: the server did not start; see $out/server.log" >&2; exit 2; }
hostport="${url#http://}"

unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_SQS AWS_PROFILE
export TEST_SKIP_LOCALSTACK_START=1 TEST_AWS_ENDPOINT_URL="$url" TEST_AWS_ACCOUNT_ID=000000000000 \
    TEST_AWS_REGION_NAME=us-east-1 SERVICES=sqs GATEWAY_LISTEN="$hostport" LOCALSTACK_HOST="$hostport" \
    LOCALSTACK_TELEMETRY=0 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1

cd "$suite"
set +e
"$venv/bin/python" -m pytest -p no:cacheprovider -q -rfE \
    -m "not aws_only_localstack and not requires_in_process" \
    --junitxml="$out/junit.xml" \
    tests/aws/services/sqs/test_sqs.py tests/aws/services/sqs/test_sqs_move_task.py "$@" | tee "$out/pytest.txt"
status=${PIPESTATUS[0]}
set -e
tail -1 "$out/pytest.txt" | tee "$out/summary.txt"
exit "$status"
