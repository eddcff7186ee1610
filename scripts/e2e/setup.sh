#!/usr/bin/env bash
# scripts/e2e/setup.sh [PREFIX]
#
# Installs and builds the real cluster the end-to-end tests run obol on, on a machine with no
# Docker and no registry:
#   - Debian packages: containerd, runc, the CNI plugins, iptables, conntrack (the node);
#   - from Go modules: etcd; kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
#     kube-proxy and kubectl from k8s.io/kubernetes; CoreDNS; crictl; the Flux source,
#     kustomize and helm controllers at the versions obol embeds (internal/fluxmanifests);
#     Traefik, the stack's edge, at the version obol renders (internal/render/edge.go);
#   - the Flux controllers' and Traefik's images, FROM scratch, under the references the
#     stack's manifests use.
# Every step is skipped when its output exists, so a warm PREFIX (default ~/.cache/obol-e2e)
# costs nothing; a cold one costs tens of CPU-minutes, dominated by kube-apiserver and kubelet.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
prefix=${1:-${OBOL_E2E_PREFIX:-$HOME/.cache/obol-e2e}}
bin=$prefix/bin work=$prefix/work images=$prefix/images
mkdir -p "$bin" "$work" "$images"

# The Flux versions are the ones obol's embedded gotk-components.yaml deploys: one source.
flux_pin() { sed -n "s/^[[:space:]]*$1[[:space:]]*= \"\(v[^\"]*\)\"/\1/p" "$root/internal/fluxmanifests/fluxmanifests.go"; }
k8s=${K8S_VERSION:-1.37.2}
source_controller=$(flux_pin SourceControllerVersion)
kustomize_controller=$(flux_pin KustomizeControllerVersion)
helm_controller=$(flux_pin HelmControllerVersion)
etcd=${ETCD_VERSION:-v3.7.0}
coredns=${COREDNS_VERSION:-v1.15.0}
crictl=${CRICTL_VERSION:-v1.37.0}
traefik=$(sed -n 's/^[[:space:]]*TraefikVersion[[:space:]]*= "\(v[^"]*\)"/\1/p' "$root/internal/render/edge.go")
traefik_image=$(sed -n 's/^[[:space:]]*TraefikImage[[:space:]]*= "\([^"]*\)" + TraefikVersion/\1/p' "$root/internal/render/edge.go")$traefik

say() { printf '[e2e setup %s] %s\n' "$(date +%T)" "$*" >&2; }
moddir() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'; }

# The node's runtime comes from Debian: containerd 1.6 with runc (crun refuses this machine's
# hybrid cgroup layout) and the reference CNI plugins in /usr/lib/cni.
debian_packages() {
	local p missing=()
	for p in containerd runc containernetworking-plugins iptables conntrack iproute2 procps util-linux openssl curl; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} = 0 ] && return
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# k8s.io/kubernetes replaces its staging modules with ./staging paths that its module zip
# lacks, so it builds only as a dependency of a module that points those replaces at the
# published v0.x tags.
kubernetes() {
	local d=$work/kubernetes-$k8s minor=${k8s#1.} c missing=0
	minor=${minor%%.*}
	for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
		[ -x "$bin/$c" ] || missing=1
	done
	[ $missing = 1 ] || return 0
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
	printf '//go:build tools\n\npackage tools\n\nimport (\n' >"$d/tools.go"
	for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
		printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c" >>"$d/tools.go"
	done
	printf ')\n' >>"$d/tools.go"
	[ -f "$d/go.sum" ] && grep -q "^k8s.io/kubelet " "$d/go.sum" || (cd "$d" && go mod tidy)
	# A stamped version, so Helm's kubeVersion checks, kubectl and the node see v$k8s, not v0.0.0.
	local ld="-s -w -X k8s.io/component-base/version.gitVersion=v$k8s -X k8s.io/component-base/version.gitMajor=1"
	ld+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
	for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
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
	[ -x "$bin/$name-$version" ] && return
	local d=$work/$name-$version
	if [ ! -d "$d" ]; then
		cp -r "$(moddir "github.com/fluxcd/$name@$version")" "$d"
		chmod -R u+w "$d"
		local api
		api=$(awk -v m="github.com/fluxcd/$name/api" '$1 == m {print $2; exit}' "$d/go.mod")
		(cd "$d" && go mod edit -replace "github.com/fluxcd/$name/api=github.com/fluxcd/$name/api@$api" "$@")
	fi
	say "building $name $version"
	(cd "$d" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/$name-$version" .)
}

# The controller's image under the exact reference gotk-components.yaml deploys, so the
# kubelet's IfNotPresent finds it imported and never pulls. Flux's own images run the
# controller as their entrypoint from /usr/local/bin, as this one does.
flux_image() {
	local name=$1 version=$2 port=$3 out=$images/$1-$2.tar
	[ -f "$out" ] && return
	say "image ghcr.io/fluxcd/$name:$version"
	(cd "$root" && go run ./hack/mkimage --binary "$bin/$name-$version" --tag "ghcr.io/fluxcd/$name:$version" \
		--path "/usr/local/bin/$name" --port "$port" --out "$out.tmp" >/dev/null)
	mv "$out.tmp" "$out"
}

# Debian's etcd 3.4 lacks RequestWatchProgress, which the API server needs to serve streaming
# list-watches; etcd's server module replaces its siblings with ../ paths, so, as for
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

# Traefik's go.mod replaces three modules with forks, which `go install` refuses; its own
# module directory builds as the main module. The web UI's assets are not in the module (the
# dashboard is off in the stack), and its embed directory still has a file, so it compiles.
traefik() {
	local out=$images/traefik-$traefik.tar
	if [ ! -x "$bin/traefik-$traefik" ]; then
		local d=$work/traefik-$traefik
		if [ ! -d "$d" ]; then
			cp -r "$(moddir "github.com/traefik/traefik/v3@$traefik")" "$d.tmp"
			chmod -R u+w "$d.tmp"
			mv "$d.tmp" "$d"
		fi
		say "building traefik $traefik"
		(cd "$d" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
			-ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$traefik" \
			-o "$bin/traefik-$traefik" ./cmd/traefik)
	fi
	[ -f "$out" ] && return
	say "image $traefik_image"
	(cd "$root" && go run ./hack/mkimage --binary "$bin/traefik-$traefik" --tag "$traefik_image" \
		--path /usr/local/bin/traefik --port 8000 --out "$out.tmp" >/dev/null)
	mv "$out.tmp" "$out"
}

go_install() { # go_install BINARY MODULE/PATH@VERSION
	[ -x "$bin/$1" ] && return
	say "building $1 (${2##*@})"
	GOBIN=$bin CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "$2"
}

debian_packages
# pkg/artifact v0.18.3, which source-controller v1.9.5 pins, is not served; v0.18.0 is, with
# the same API.
flux_controller source-controller "$source_controller" -replace github.com/fluxcd/pkg/artifact=github.com/fluxcd/pkg/artifact@v0.18.0
flux_controller kustomize-controller "$kustomize_controller"
flux_controller helm-controller "$helm_controller"
flux_image source-controller "$source_controller" 9090
flux_image kustomize-controller "$kustomize_controller" 8080
flux_image helm-controller "$helm_controller" 8080
etcd_server
go_install coredns "github.com/coredns/coredns@$coredns"
traefik
go_install crictl "sigs.k8s.io/cri-tools/cmd/crictl@$crictl"
kubernetes
say "ready: $(ls "$bin" | tr '\n' ' ')"
