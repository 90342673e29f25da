#!/usr/bin/env bash
# alexcl's fuzz run: every Go fuzz target in the module (found by name,
# `func FuzzXxx` in a _test.go file) runs for FUZZTIME (default 10s) on top
# of its seed corpus in testdata/fuzz/. The targets cover the readers of
# untrusted input: IDX and CIFAR-10 files (data), safetensors
# (model/safetensors), network TOML (model) and training TOML (train).
#
# A finding fails the script; go test writes the input that broke the
# target to <package>/testdata/fuzz/<target>/, where it stays as a
# regression seed once the bug is fixed (commit it with the fix). A bare
# "context deadline exceeded" with no failing input is Go 1.26's fuzz
# coordinator race (golang/go#75804, fixed in Go 1.27): that target runs
# again, and only a warning remains if it races again.
#
#   ci/fuzz.sh                 # about 1 minute: 5 targets x 10s, plus builds
#   FUZZTIME=2m ci/fuzz.sh     # longer, before a release
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"

fuzztime="${FUZZTIME:-10s}"
targets=$(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | sed -E 's#^\./##; s#:func # #' | sort)
if [ -z "$targets" ]; then
  echo "ci/fuzz.sh: no fuzz targets found" >&2
  exit 1
fi
# fuzz_once runs one target, printing its output, and returns 0 (clean), 1
# (a finding, or any failure it cannot tell from one) or 2 (the Go 1.26
# coordinator's shutdown race, golang/go#75804, fixed in Go 1.27: a bare
# "context deadline exceeded" at the -fuzztime boundary with no failing
# input written).
fuzz_once() {
  local pkg=$1 name=$2 log
  log=$(mktemp)
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 10s "$pkg" 2>&1 | tee "$log"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
    rm -f "$log"
    return 0
  fi
  local rc=1
  if grep -q 'context deadline exceeded' "$log" &&
     ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"; then
    rc=2
  fi
  rm -f "$log"
  return $rc
}

failed=()
flaked=()
while read -r file name; do
  pkg="./$(dirname "$file")"
  echo "--- $pkg $name ($fuzztime)"
  rc=0
  fuzz_once "$pkg" "$name" || rc=$?
  if [ $rc -eq 2 ]; then
    echo "ci/fuzz.sh: $pkg $name: the fuzz coordinator's deadline race (golang/go#75804), no input failed; running it again"
    rc=0
    fuzz_once "$pkg" "$name" || rc=$?
    if [ $rc -eq 2 ]; then
      flaked+=("$pkg $name")
      rc=0
    fi
  fi
  if [ $rc -ne 0 ]; then
    failed+=("$pkg $name")
  fi
done <<< "$targets"
if [ ${#flaked[@]} -gt 0 ]; then
  printf 'ci/fuzz.sh: warning: %s hit the deadline race twice (no failing input)\n' "${flaked[@]}" >&2
fi
if [ ${#failed[@]} -gt 0 ]; then
  printf 'ci/fuzz.sh: finding in %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "ci/fuzz.sh: $(wc -l <<< "$targets") fuzz targets ran $fuzztime each without a finding"
