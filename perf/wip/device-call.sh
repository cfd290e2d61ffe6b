# Sourced by the perf/wip device-call scripts: strict mode, $OUT required, the repo root as the working
# folder, nvcc on PATH, and $W = $OUT/w created (what comes back from the device call).
set -uo pipefail
: "${OUT:?set OUT to the folder that comes back from the device call}"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH=/usr/local/cuda/bin:$PATH
W=$OUT/w
mkdir -p "$W"
# build_gpu TARGET...: configures build-gpu (preset gpu), refreshes its mtimes and builds the targets,
# logs under $W; exits the script on a failure. Sets $start (seconds) for the caller's timings.
build_gpu() {
  start=$(date +%s)
  cmake --preset gpu -B build-gpu >"$W/cfg.log" 2>&1 || { tail -20 "$W/cfg.log"; exit 1; }
  bash scripts/refresh-mtimes.sh build-gpu >/dev/null
  cmake --build build-gpu -j16 --target "$@" >"$W/build.log" 2>&1 ||
    { grep -E "error|FAILED" "$W/build.log" | head -30; exit 1; }
  echo "built in $(( $(date +%s) - start )) s"
}
