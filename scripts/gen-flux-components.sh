#!/usr/bin/env bash
# gen-flux-components.sh [OUTFILE]
#
# Writes clusters/flux-system/gotk-components.yaml (or OUTFILE) with
# internal/fluxmanifests.Components: the header, the CRDs of clusters/flux-system/crds
# (scripts/gen-flux-crds.sh) and obol's templates in clusters/flux-system/components, with the
# controller image tags pinned in internal/fluxmanifests. Run it after gen-flux-crds.sh.
# internal/fluxmanifests's TestComponentsUpToDate fails when the committed file is stale.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

out="${1:-clusters/flux-system/gotk-components.yaml}"
go run ./internal/fluxmanifests/gen "$out"
