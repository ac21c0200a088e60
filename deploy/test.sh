#!/usr/bin/env bash
# One command for the whole test suite: install what is missing, lint, type-check, check the layers,
# then run every test (unit, integration against a real nats-server, end to end with real Podman).
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-local.sh
echo "==> ruff";          .venv/bin/ruff check .
echo "==> mypy (strict)"; .venv/bin/mypy
echo "==> import layers"; .venv/bin/lint-imports
echo "==> benchmark smoke run (figures printed, nothing asserted on timing)"
.venv/bin/python -m bench.suite --quick --json "${TMPDIR:-/tmp}/shoal-bench-quick.json"
echo "==> pytest"
set +e
.venv/bin/pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then echo "no tests were collected"; exit 1; fi
exit "$status"
