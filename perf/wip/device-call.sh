# Sourced by the perf/wip device-call scripts: strict mode, $OUT required, the repo root as the working
# folder, nvcc on PATH, and $W = $OUT/w created (what comes back from the device call).
set -uo pipefail
: "${OUT:?set OUT to the folder that comes back from the device call}"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH=/usr/local/cuda/bin:$PATH
W=$OUT/w
mkdir -p "$W"
