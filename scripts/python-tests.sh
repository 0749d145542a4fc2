#!/usr/bin/env bash
# Runs the Python compatibility suite (tests/python) against the holdfast binary.
#
# Creates or reuses a virtualenv at <repo>/.venv, installs tests/python/requirements.txt into it,
# then runs pytest; extra arguments go to pytest, and the exit code is pytest's.
#   scripts/python-tests.sh -k messages -x
# The server binary is $HOLDFAST_BIN or <repo>/target/debug/holdfast (cargo build -p holdfast);
# HOLDFAST_STORAGE=memory runs it with --storage memory. See tests/python/conftest.py.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

venv="$repo/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# Without a path among the arguments, run the whole suite.
paths=()
for arg in "$@"; do
    [[ "$arg" == tests/python* ]] && paths+=("$arg")
done
((${#paths[@]})) || set -- tests/python "$@"
exec "$venv/bin/python" -m pytest "$@"
