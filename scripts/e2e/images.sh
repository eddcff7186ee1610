#!/usr/bin/env bash
# scripts/e2e/images.sh [STATE]
#
# Builds the images of this checkout that the end-to-end node runs, without Docker: the gateway
# and obol-git (`make image git-image`, under the references the chart and the stack's
# manifests use) and the pod sandbox's pause image (hack/pause, obol.test/pause:1, the
# containerd sandbox_image). up.sh imports them with the Flux controllers' images from
# setup.sh. Run it again after changing the gateway or obol-git.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
state=${1:-${OBOL_E2E_STATE:-/tmp/obol-e2e}}
images=$state/images
mkdir -p "$images"
cd "$root"
CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o "$images/pause" ./hack/pause
go run ./hack/mkimage --binary "$images/pause" --tag obol.test/pause:1 --path /pause --ca-certs "" --out "$images/pause.tar" >/dev/null 2>&1
make -s image git-image >/dev/null
cp bin/obol-gateway.tar bin/obol-git.tar "$images/"
printf '[e2e images %s] %s\n' "$(date +%T)" "built $(cd "$images" && ls ./*.tar | tr '\n' ' ')" >&2
