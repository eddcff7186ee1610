#!/usr/bin/env bash
# scripts/e2e/down.sh [STATE]: stops what scripts/e2e/up.sh started (by the PIDs it recorded).
set -euo pipefail
state=${1:-${OBOL_E2E_STATE:-/tmp/obol-e2e}}
if [ -x "$state/down.sh" ]; then exec "$state/down.sh"; fi
echo "nothing to stop: no $state/down.sh" >&2
