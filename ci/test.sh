#!/usr/bin/env bash
# alexcl's test command (README): installs the test dependencies when
# missing, checks formatting and vet, runs every fuzz target for a bounded
# time, then runs every test with OpenCL and OpenBLAS required, so a test
# that finds no OpenCL platform (or no BLAS) fails instead of skipping, and
# the packages with goroutines again under the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"

bash ci/install-deps.sh

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on: $unformatted" >&2
  exit 1
fi
go vet ./...
# The CPU device without its assembly (other architectures, -tags purego)
# must build and vet too; its Go loops are tested against the assembly
# below, and run whole here.
GOARCH=arm64 go vet ./...
go vet -tags purego ./device/cpu/...
CGO_ENABLED=0 go build -o /dev/null ./cmd/alexcl
bash ci/fuzz.sh    # each fuzz target, bounded (about a minute)
ALEXCL_REQUIRE_OPENCL=1 ALEXCL_REQUIRE_BLAS=1 go test -count=1 -timeout 30m "$@" ./...
go test -count=1 -tags purego ./device/cpu/...
# The goroutines of the data loader and the training loop's prefetching
# under the race detector.
ALEXCL_REQUIRE_OPENCL=1 go test -count=1 -race ./data ./train
