#!/usr/bin/env bash
# Run every fuzz target in the module, one `go test -fuzz` invocation per target (go fuzzes a
# single target at a time). Targets are discovered from the source, so new ones are picked up
# without editing this script. Fails if any target fails (a crash, a failed assertion or a
# build error); a crashing input is written by go to testdata/fuzz/<Target>/ in the package,
# where it becomes a regression seed for plain `go test`.
#
# Environment: FUZZTIME (default 10s) is how long each target runs.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline exceeded" when
# -fuzztime expires while a worker is mid-call (golang/go#75804, fixed in Go 1.27). Such a run
# found nothing (no input is written), so it is retried once, and if it flakes again it is
# reported as a warning, not a failure. Any other output on failure (a failing input, a
# panic, a t.Fatal message, a build error) fails the script.
set -euo pipefail

cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10s}"

# file:line:func FuzzName(... -> "<dir> <FuzzName>", sorted and deduplicated.
mapfile -t targets < <(
	grep -rn --include='*_test.go' '^func Fuzz' . |
		grep -v '/vendor/' |
		sed -E 's|^(.*)/[^/]+_test\.go:[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*$|\1 \2|' |
		sort -u
)

if [ "${#targets[@]}" -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# deadline_flake: the failed run in $log printed nothing but the coordinator's deadline error.
deadline_flake() {
	grep -q '^    context deadline exceeded$' "$log" || return 1
	! grep -vE '^(fuzz: elapsed: .*|fuzz: minimizing.*|warning: .*|--- FAIL: Fuzz[A-Za-z0-9_]* \([0-9.]+s\)|    context deadline exceeded|FAIL|exit status [0-9]+|FAIL	[^ ]+	[0-9.]+s|)$' "$log" >/dev/null
}

# fuzz runs one target; 0 passed, 1 failed, 2 deadline flake.
fuzz() {
	if go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1" 2>&1 | tee "$log"; then
		return 0
	fi
	deadline_flake && return 2
	return 1
}

failed=()
flaked=()
start=$SECONDS
for t in "${targets[@]}"; do
	dir="${t% *}"
	name="${t#* }"
	echo "=== fuzz $name in $dir for $fuzztime"
	rc=0
	fuzz "$dir" "$name" || rc=$?
	if [ "$rc" -eq 2 ]; then
		echo "fuzz.sh: $name: deadline flake (golang/go#75804), nothing found; retrying once" >&2
		rc=0
		fuzz "$dir" "$name" || rc=$?
	fi
	case "$rc" in
	0) ;;
	2) flaked+=("$name ($dir)") ;;
	*) failed+=("$name ($dir)") ;;
	esac
done

echo "fuzz.sh: ran ${#targets[@]} targets in $((SECONDS - start))s"
if [ "${#flaked[@]}" -gt 0 ]; then
	echo "fuzz.sh: warning: deadline flake twice, nothing found:" >&2
	printf '  %s\n' "${flaked[@]}" >&2
fi
if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz.sh: FAILED:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
