#!/usr/bin/env bash
# gen-flux-crds.sh [OUTDIR]
#
# Generates the CustomResourceDefinitions of the Flux controllers obol installs from the Flux
# API modules pinned in go.mod, with the controller-gen pinned as a go.mod tool. Nothing is
# downloaded from GitHub and no YAML is copied out of a module zip.
#
# OUTDIR defaults to clusters/flux-system/crds (relative to the module root). Its *.yaml files
# are replaced by exactly the generated set, so a rerun gives identical bytes and a CRD that
# disappears upstream disappears here too. internal/validate's TestFluxCRDsUpToDate reruns this
# script into a temp dir and fails when the committed files differ.
#
# controller-gen is given each API module's directory in the module cache, so it loads the
# module with that module's own go.mod (e.g. the pkg/apis/meta version Flux itself built
# with): the output is byte-identical to upstream's config/crd/bases except for the
# controller-gen version annotation.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

out="${1:-clusters/flux-system/crds}"
case "$out" in
/*) ;;
*) out="$root/$out" ;;
esac

# The Flux API modules whose CRDs a stack needs (source, kustomize and helm controllers).
modules=(
	github.com/fluxcd/source-controller/api
	github.com/fluxcd/kustomize-controller/api
	github.com/fluxcd/helm-controller/api
)

args=()
for m in "${modules[@]}"; do
	dir="$(go list -m -f '{{.Dir}}' "$m")"
	if [ -z "$dir" ]; then
		# Listed in go.mod but not in the module cache yet.
		go mod download "$m"
		dir="$(go list -m -f '{{.Dir}}' "$m")"
	fi
	if [ -z "$dir" ] || [ ! -d "$dir" ]; then
		echo "gen-flux-crds: cannot find the module directory of $m" >&2
		exit 1
	fi
	args+=("paths=$dir/...")
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

go tool controller-gen crd "${args[@]}" "output:crd:dir=$tmp"

count="$(find "$tmp" -maxdepth 1 -name '*.yaml' | wc -l)"
if [ "$count" -eq 0 ]; then
	echo "gen-flux-crds: controller-gen wrote no CRDs" >&2
	exit 1
fi

mkdir -p "$out"
find "$out" -maxdepth 1 -name '*.yaml' -delete
cp "$tmp"/*.yaml "$out"/
chmod 0644 "$out"/*.yaml
