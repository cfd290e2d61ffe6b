#!/usr/bin/env bash
# Builds everything and runs every test. CPU tests always run; GPU tests run where a GPU answers
# and are reported as skipped ("GPU not available: ...") elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --preset release -j "$(nproc)" "$@"
