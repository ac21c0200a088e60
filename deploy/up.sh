#!/usr/bin/env bash
# One command to a running single-machine cluster: install what is missing, then `shoal up`.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-local.sh
exec .venv/bin/shoal up "$@"
