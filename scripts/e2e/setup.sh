#!/usr/bin/env bash
# scripts/e2e/setup.sh [PREFIX]
#
# Builds the real control plane the end-to-end tests run obol against, on a machine with no
# Docker and no registry: kube-apiserver, kube-controller-manager and kube-scheduler from the
# k8s.io/kubernetes module, the Flux source, kustomize and helm controllers from their modules,
# kwok for simulated nodes, and etcd from its module. Every step is skipped when its output
# exists, so a warm PREFIX (default ~/.cache/obol-e2e) costs nothing; a cold one costs tens of
# CPU-minutes, dominated by kube-apiserver.
set -euo pipefail

prefix=${1:-${OBOL_E2E_PREFIX:-$HOME/.cache/obol-e2e}}
bin=$prefix/bin work=$prefix/work
mkdir -p "$bin" "$work"

# Pinned to what go.mod's Flux API modules and k8s libraries match.
k8s=${K8S_VERSION:-1.37.2}
source_controller=${FLUX_SOURCE_CONTROLLER:-v1.9.5}
kustomize_controller=${FLUX_KUSTOMIZE_CONTROLLER:-v1.9.5}
helm_controller=${FLUX_HELM_CONTROLLER:-v1.6.4}
kwok=${KWOK_VERSION:-v0.8.0}
etcd=${ETCD_VERSION:-v3.7.0}

say() { printf '[e2e setup %s] %s\n' "$(date +%T)" "$*" >&2; }
moddir() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'; }

# k8s.io/kubernetes replaces its staging modules with ./staging paths that its module zip
# lacks, so it builds only as a dependency of a module that points those replaces at the
# published v0.x tags.
control_plane() {
	local d=$work/kubernetes-$k8s minor=${k8s#1.}
	minor=${minor%%.*}
	if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/kube-scheduler" ] && [ -x "$bin/kubectl" ]; then
		return
	fi
	mkdir -p "$d"
	if [ ! -f "$d/go.sum" ]; then
		go mod download "k8s.io/kubernetes@v$k8s"
		local gomod
		gomod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$k8s.mod"
		{
			echo "module obol.e2e/kubernetes"
			echo "go 1.26.0"
			echo "require k8s.io/kubernetes v$k8s"
			# The sample-* staging modules are neither served nor needed.
			awk -v v="v0.${k8s#1.}" '$2 == "=>" && $3 ~ /^\.\/staging/ && $1 !~ /sample-/ {print "replace " $1 " => " $1 " " v}' "$gomod"
		} >"$d/go.mod"
	fi
	# kubectl too: the scripts need one, and a fresh machine has none.
	printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager"\n\t_ "k8s.io/kubernetes/cmd/kube-scheduler"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' >"$d/tools.go"
	[ -f "$d/go.sum" ] || (cd "$d" && go mod tidy)
	# A stamped version, so Helm's kubeVersion checks and kubectl see v$k8s, not v0.0.0.
	local ld="-s -w -X k8s.io/component-base/version.gitVersion=v$k8s -X k8s.io/component-base/version.gitMajor=1"
	ld+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
	for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
		[ -x "$bin/$c" ] && continue
		say "building $c"
		(cd "$d" && GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" -o "$bin/$c" "k8s.io/kubernetes/cmd/$c")
	done
}

# A Flux controller's go.mod replaces its api module with ./api, which `go install` refuses;
# build a copy whose api replace points at the published module of the same version.
flux_controller() {
	local name=$1 version=$2
	shift 2
	[ -x "$bin/$name" ] && return
	local d=$work/$name-$version
	if [ ! -d "$d" ]; then
		cp -r "$(moddir "github.com/fluxcd/$name@$version")" "$d"
		chmod -R u+w "$d"
		local api
		api=$(awk -v m="github.com/fluxcd/$name/api" '$1 == m {print $2; exit}' "$d/go.mod")
		(cd "$d" && go mod edit -replace "github.com/fluxcd/$name/api=github.com/fluxcd/$name/api@$api" "$@")
	fi
	say "building $name $version"
	(cd "$d" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/$name" .)
}

# Debian's etcd 3.4 lacks RequestWatchProgress, which the API server needs to serve the
# streaming list-watches of client-go v0.36 (kwok's): its watches fail and it sees pods only on
# relists, ~20s late. etcd's server module replaces its siblings with ../ paths, so, as for
# Kubernetes, build it as a dependency.
etcd_server() {
	[ -x "$bin/etcd" ] && return
	local d=$work/etcd-$etcd
	mkdir -p "$d"
	if [ ! -f "$d/go.sum" ]; then
		printf 'module obol.e2e/etcd\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$etcd" >"$d/go.mod"
		printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$d/tools.go"
		(cd "$d" && go mod tidy)
	fi
	say "building etcd $etcd"
	(cd "$d" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
}

simulated_nodes() {
	[ -x "$bin/kwok" ] && return
	say "building kwok $kwok"
	GOBIN=$bin CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok"
}

# pkg/artifact v0.18.3, which source-controller v1.9.5 pins, is not served; v0.18.0 is, with
# the same API.
flux_controller source-controller "$source_controller" -replace github.com/fluxcd/pkg/artifact=github.com/fluxcd/pkg/artifact@v0.18.0
flux_controller kustomize-controller "$kustomize_controller"
flux_controller helm-controller "$helm_controller"
simulated_nodes
etcd_server
control_plane
say "ready: $(ls "$bin" | tr '\n' ' ')"
