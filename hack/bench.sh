#!/usr/bin/env bash
# bench.sh: the figures of issue 8 as one JSON object on stdout (progress on stderr).
#
#   hack/bench.sh [podmedic-bench flags]     e.g. hack/bench.sh -pods 5000
#
# It builds kube-apiserver and etcd once (hack/testbins.sh, cached in .cache/bin), builds the
# podmedic binary, and runs cmd/podmedic-bench: a real kube-apiserver with 20,000 Airflow worker
# pods, the real `podmedic run` measured from outside (/proc, /readyz, /metrics), and the
# in-process pipeline throughput. Everything binds to 127.0.0.1. Bounded by -timeout (10m).
# Go micro-benchmarks of the hot paths: hack/bench.sh -micro (go test -bench, not JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

if [[ "${1:-}" == "-micro" ]]; then
	shift
	exec $GO test -run '^$' -bench . -benchmem "$@" ./watchers ./bus ./rules ./app ./internal/bench ./overrides ./webhook
fi

hack/testbins.sh kube-apiserver etcd >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$GO build -o "$tmp/podmedic" ./cmd/podmedic
$GO build -o "$tmp/podmedic-bench" ./cmd/podmedic-bench
"$tmp/podmedic-bench" -podmedic "$tmp/podmedic" -testbins "${PODMEDIC_TESTBIN_DIR:-$PWD/.cache/bin}" "$@"
