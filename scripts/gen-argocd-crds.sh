#!/usr/bin/env bash
# gen-argocd-crds.sh [OUTDIR]
#
# Vendors Argo CD's own CRDs (Application, ApplicationSet, AppProject) from the pinned
# github.com/argoproj/argo-cd/v3 module zip into internal/argocd/crds: obol renders Argo CD
# objects from its own typed subset (internal/argocd; Argo CD's Go module cannot be required
# here) and checks every one against these schemas, in tests and in `obol validate`.
# internal/argocd's TestCRDsUpToDate reruns this into a temp dir and fails when they differ.
set -euo pipefail

version=v3.5.7
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/internal/argocd/crds}"
dir=$(cd "$root" && go mod download -json "github.com/argoproj/argo-cd/v3@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -d "$dir/manifests/crds" ] || { echo "gen-argocd-crds: no manifests/crds in github.com/argoproj/argo-cd/v3@$version" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/*.yaml
for f in application-crd.yaml applicationset-crd.yaml appproject-crd.yaml; do
	install -m 0644 "$dir/manifests/crds/$f" "$out/$f"
done
echo "$version" >"$out/VERSION"
