#!/usr/bin/env bash
# alexcl's fuzz run: every Go fuzz target in the module (found by name,
# `func FuzzXxx` in a _test.go file) runs for FUZZTIME (default 10s) on top
# of its seed corpus in testdata/fuzz/. The targets cover the readers of
# untrusted input: IDX and CIFAR-10 files (data), safetensors
# (model/safetensors), network TOML (model) and training TOML (train).
#
# A finding fails the script; go test writes the input that broke the
# target to <package>/testdata/fuzz/<target>/, where it stays as a
# regression seed once the bug is fixed (commit it with the fix).
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
failed=()
while read -r file name; do
  pkg="./$(dirname "$file")"
  echo "--- $pkg $name ($fuzztime)"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 10s "$pkg"; then
    failed+=("$pkg $name")
  fi
done <<< "$targets"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'ci/fuzz.sh: finding in %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "ci/fuzz.sh: $(wc -l <<< "$targets") fuzz targets ran $fuzztime each without a finding"
