#!/usr/bin/env bash
# gen-gateway-api-crds.sh [OUTDIR]
#
# Vendors the Gateway API CRDs of the standard channel that the gateway chart's HTTPRoute and
# the stack's edge need (GatewayClass, Gateway, HTTPRoute, ReferenceGrant, and GRPCRoute and
# BackendTLSPolicy, which Traefik's Gateway provider watches and fails to start without) from the pinned sigs.k8s.io/gateway-api module,
# the same files as the project's standard-install.yaml release asset, into the stack's
# infrastructure. Its kustomization marks them kustomize.toolkit.fluxcd.io/ssa: IfNotPresent
# (a cluster whose ingress already installed Gateway API, k3s's Traefik among them, keeps its
# own) and prune: disabled (removing them would delete every route in the cluster).
#
# OUTDIR defaults to templates/infrastructure/gateway-api. internal/render's
# TestGatewayAPICRDsUpToDate reruns this into a temp dir and fails when the committed files differ.
set -euo pipefail

version=v1.6.3
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/templates/infrastructure/gateway-api}"
kinds=(gatewayclasses gateways httproutes grpcroutes referencegrants backendtlspolicies)

dir=$(cd "$root" && go mod download -json "sigs.k8s.io/gateway-api@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -d "$dir/config/crd/standard" ] || { echo "gen-gateway-api-crds: no config/crd/standard in sigs.k8s.io/gateway-api@$version" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/*.yaml
{
	echo "# Gateway API $version, standard channel: the CRDs the offers' HTTPRoutes and the edge (Traefik) need."
	echo "# Written by scripts/gen-gateway-api-crds.sh from sigs.k8s.io/gateway-api@$version/config/crd/standard."
	echo "apiVersion: kustomize.config.k8s.io/v1beta1"
	echo "kind: Kustomization"
	echo "commonAnnotations:"
	echo "  kustomize.toolkit.fluxcd.io/ssa: IfNotPresent"
	echo "  kustomize.toolkit.fluxcd.io/prune: disabled"
	echo "resources:"
	for k in "${kinds[@]}"; do echo "- gateway.networking.k8s.io_$k.yaml"; done
} >"$out/kustomization.yaml"
for k in "${kinds[@]}"; do
	f=gateway.networking.k8s.io_$k.yaml
	install -m 0644 "$dir/config/crd/standard/$f" "$out/$f"
done
