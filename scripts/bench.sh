#!/usr/bin/env bash
# The benchmark suite in one command: builds the gateway, the hello-world baseline and the loader in release, runs
# every HTTP path with wrk beside the baseline, then the in-process micro-benchmarks (ordo-one's package-benchmark).
#
#     scripts/bench.sh            # full: ~10 s per path, 1,000 concurrent onboardings, 1,000,000 tenants
#     scripts/bench.sh --smoke    # CI: debug build, seconds per path, small counts; figures are printed, never judged
#
# Extra arguments go to scripts/bench.py (e.g. --tenants 100000 --json artifacts/bench.json).
# Needs wrk (apt-get install wrk); nginx, when installed, is measured as a reference.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ "${1:-}" = "--smoke" ]; then
    swift build --product gateway && swift build --product bench-hello && swift build --product bench-load
    python3 scripts/bench.py --bin "$(swift build --show-bin-path)" "$@"
    # The micro-benchmarks, built in debug and run once each: proof they run, not figures.
    swift build --product GatewayBenchmarks
    BENCHMARK_SMOKE=1 "$(swift build --show-bin-path)/GatewayBenchmarks" --quiet true 2>&1 | grep "^Debug results for" | sed "s/^Debug results for /ran: /; s/:$//"
else
    # Built as the Dockerfile builds the image's binary (the standard library and Foundation linked in), the
    # baseline and the loader with the same flags: the figures are those of what users run.
    swift build -c release --static-swift-stdlib --product gateway
    swift build -c release --static-swift-stdlib --product bench-hello
    swift build -c release --static-swift-stdlib --product bench-load
    python3 scripts/bench.py --bin "$(swift build -c release --show-bin-path)" "$@"
    swift package --allow-writing-to-package-directory benchmark --no-progress
fi
