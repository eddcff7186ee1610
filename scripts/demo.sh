#!/usr/bin/env bash
# demo.sh OBOL: the README's walkthrough, run for real in a throwaway stack repo (./.demo).
set -euo pipefail
obol="$(realpath "${1:-bin/obol}")"
repo="$(pwd)/.demo/stack"
rm -rf "$repo"
unset OBOL_REPO
# A fixed author keeps the demo independent of the machine's git config.
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-obol demo}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-demo@obol.invalid}"
pay_to=0x8ba1f109551bD432803012645Ac136ddd64DBA72

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$obol" stack init --stack dev --repo "$repo"
# From here on obol uses the stack repo it stands in, as git does: no --repo, no OBOL_REPO.
step cd "$repo"
step "$obol" sell http weather --upstream weather-api --namespace apps --port 8080 \
	--per-request 0.001 --pay-to "$pay_to" --chain base-sepolia
step "$obol" sell http news --upstream-url https://api.example.com/v1 --namespace apps \
	--per-request 0.001 --pay-to "$pay_to" --chain base-sepolia
step "$obol" sell inference qwen --model qwen3:8b --upstream-url http://host.k3d.internal:11434 \
	--per-mtok 0.5 --pay-to "$pay_to" --chain base-sepolia
step "$obol" sell list
# --dry-run prints the diff and exits 1 when there is a change (the `flux diff` contract).
printf '\n\033[1m$ %s\033[0m\n' "$obol sell update weather --per-request 0.002 --dry-run"
"$obol" sell update weather --per-request 0.002 --dry-run || [ $? -eq 1 ]
step "$obol" sell update weather --per-request 0.002
step "$obol" sell show weather
step "$obol" render --check
step "$obol" validate
step "$obol" version
step git log --format='%h %an: %s'
step git status --short
printf '\nThe stack repo is in %s; try `cd %s && %s sell --help`.\n' "$repo" "$repo" "$obol"
