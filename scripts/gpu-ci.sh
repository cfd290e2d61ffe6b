#!/usr/bin/env bash
# The GPU regression gate: the same script by hand on any GPU machine and in CI
# (.github/workflows/gpu-regression.yml calls it and nothing else).
#
#   build    CMake preset `gpu` (CUDA required, sm_90, Ninja): ridgeline and the GPU tests;
#   tests    the GPU tests (all but DecodeBench.*, which scripts/gpu-check.sh runs);
#   sweep    a short fixed sweep: the internlm2-chat-1_8b preset, decode at batch 1 and 16 and context
#            1024, a prefill of 512 tokens at the same batches, 3 interleaved repetitions of 30 timed
#            steps each (samples pooled), against the committed ceilings of this GPU
#            (bench/ceilings/<gpu>.json, what `ridgeline probe --out` wrote) when there are some, else
#            a probe's;
#   compare  `ridgeline compare` against the committed baseline of this GPU,
#            reports/baselines/<gpu>-ci.json(.gz), <gpu> from the device name ("NVIDIA H200" -> h200,
#            "NVIDIA H100 80GB HBM3" -> h100-80gb-hbm3, then h100): a regression fails the gate; no
#            baseline for this GPU is a warning and exit 0 (commit OUTDIR/sweep.json, gzipped, as one); a
#            baseline found by the short name but measured on another device name (an H100 PCIe
#            against an SXM one) is refused by compare, exit 2, with what to commit instead;
#   report   OUTDIR/report.html: this run beside the baseline (or alone).
# After the build it takes about a minute (the GPU tests most of it).
#
#   scripts/gpu-ci.sh OUTDIR
#
# Environment:
#   RIDGELINE_GIT_COMMIT       the commit under test, recorded in the report (needed where the copy of
#                              .git is stale or absent; else the build stamps `git rev-parse` + -dirty)
#   RIDGELINE_BUILD_DIR        build folder (default build-gpu)
#   RIDGELINE_CI_SKIP_BUILD=1  use the build folder as it is;  RIDGELINE_CI_SKIP_TESTS=1  no GPU tests
#   RIDGELINE_CI_BASELINE      compare against this report instead of the committed baseline
#   RIDGELINE_CI_CEILINGS      this ceilings file instead of the committed one; "probe" measures them
#   RIDGELINE_CI_THRESHOLD     slowdown that counts (default 0.05: 5 %, and significant)
#   RIDGELINE_INJECT_DELAY_US  op:us, a fixed delay after that op (engine/inject_delay.h): tests the gate
#
# OUTDIR gets sweep.json, compare.txt, compare.md, report.html, logs/ and summary.txt (printed last).
# Exit: 0 clean or no baseline; 1 a regression, or a step that failed (build, tests, sweep); 2 unusable
# input (ridgeline compare's 2: a baseline of another schema or another device, nothing matched).
set -uo pipefail
out=${1:?usage: scripts/gpu-ci.sh OUTDIR}
mkdir -p "$out/logs" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
build=${RIDGELINE_BUILD_DIR:-build-gpu}
export PATH="/usr/local/cuda/bin:$PATH"
# On a GPU machine a test that finds no GPU fails instead of skipping (tests/gpu/gpu_test_util.h).
export RIDGELINE_REQUIRE_GPU=${RIDGELINE_REQUIRE_GPU:-1}
rl="$build/ridgeline"
summary="$out/summary.txt"
: >"$summary"
t0=$(date +%s)
note() { echo "[$(($(date +%s) - t0)) s] $*" | tee -a "$summary" >&2; }
fail() {
  note "FAILED: $*"
  cat "$summary"
  exit "${2:-1}"
}

commit=${RIDGELINE_GIT_COMMIT:-}
note "gpu-ci: commit ${commit:-(from the build stamp)}${RIDGELINE_INJECT_DELAY_US:+, injected delay $RIDGELINE_INJECT_DELAY_US}"

# 1. build
if [ "${RIDGELINE_CI_SKIP_BUILD:-0}" != 1 ]; then
  cmake --preset gpu -B "$build" >"$out/logs/configure.log" 2>&1 || { tail -30 "$out/logs/configure.log"; fail "configure"; }
  bash scripts/refresh-mtimes.sh "$build"
  cmake --build "$build" -j"$(nproc)" --target ridgeline ridgeline_gpu_tests >"$out/logs/build.log" 2>&1 ||
    { grep -E "error|FAILED" "$out/logs/build.log" | head -30; fail "build"; }
  note "build: ok"
fi
[ -x "$rl" ] || fail "no ridgeline binary at $rl"
nvidia-smi >"$out/logs/nvidia-smi.txt" 2>&1 || true

# 2. GPU tests
status=0
if [ "${RIDGELINE_CI_SKIP_TESTS:-0}" != 1 ]; then
  if "$build/tests/ridgeline_gpu_tests" --gtest_filter="${RIDGELINE_CI_TEST_FILTER:--DecodeBench.*}" \
    >"$out/logs/gpu_tests.log" 2>&1; then
    note "GPU tests: $(grep -E '^\[  PASSED  \]' "$out/logs/gpu_tests.log" | head -1)"
  else
    grep -E '^\[  FAILED  \]' "$out/logs/gpu_tests.log" | tee -a "$summary" >&2
    note "GPU tests: FAILED (the sweep and the comparison still run)"
    status=1
  fi
fi

# 3. the fixed sweep. The device name picks the baseline and the ceilings.
device=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
slug=$(echo "${device:-unknown}" | tr '[:upper:]' '[:lower:]' | sed -e 's/^nvidia //' -e 's/[^a-z0-9]\{1,\}/-/g' -e 's/^-//' -e 's/-$//')
short=${slug%%-*}
pick() {  # the first existing <folder>/<slug><suffix>, most specific name first, gzipped or not
  for s in "$slug" "$short"; do
    for f in "$1/$s$2.gz" "$1/$s$2"; do
      [ -f "$f" ] && { echo "$f"; return; }
    done
  done
}
ceilings=${RIDGELINE_CI_CEILINGS:-$(pick bench/ceilings .json)}
ceiling_args=()
if [ -n "$ceilings" ] && [ "$ceilings" != probe ]; then
  ceiling_args=(--ceilings "$ceilings")
fi
note "device: ${device:-unknown} (baseline name $slug); ceilings: ${ceilings:-measured by a probe}"
"$rl" sweep --model internlm2-chat-1_8b --device cuda --batch 1,16 --context 1024 --phase decode,prefill \
  --prompt-len 512 --repeat 3 --iters 30 --warmup 5 "${ceiling_args[@]}" --out "$out/sweep.json" \
  2>"$out/logs/sweep.log"
sweep_status=$?
grep -E "^\[|sweep:" "$out/logs/sweep.log" >>"$summary"
[ -f "$out/sweep.json" ] || fail "sweep wrote no report (exit $sweep_status)"
[ $sweep_status = 0 ] || { note "sweep: exit $sweep_status (a configuration failed)"; status=1; }

# 4. compare against the baseline of this GPU.
baseline=${RIDGELINE_CI_BASELINE:-$(pick reports/baselines -ci.json)}
verdict=0
if [ -z "$baseline" ]; then
  note "WARNING: no baseline for '${device:-unknown}' (looked for reports/baselines/$slug-ci.json(.gz) and $short-ci.json(.gz)): nothing compared; commit $out/sweep.json gzipped as reports/baselines/$slug-ci.json.gz (gzip -9n <$out/sweep.json >reports/baselines/$slug-ci.json.gz) to gate this GPU"
  "$rl" report "$out/sweep.json" -o "$out/report.html" >"$out/logs/report.log" 2>&1 || note "report: failed"
else
  "$rl" compare "$baseline" "$out/sweep.json" --threshold "${RIDGELINE_CI_THRESHOLD:-0.05}" --md "$out/compare.md" \
    >"$out/compare.txt" 2>"$out/logs/compare.log"
  verdict=$?
  cat "$out/compare.txt" "$out/logs/compare.log" >>"$summary"
  case $verdict in
    0) note "compare against $baseline: clean" ;;
    1) note "compare against $baseline: REGRESSION" ;;
    *) note "compare against $baseline: unusable input (exit $verdict)"
       # Another card's baseline (found by the short name): compare refuses it rather than call the card
       # a regression.
       grep -q -- "--across-devices" "$out/logs/compare.log" &&
         note "the baseline is another device's: commit $out/sweep.json gzipped as reports/baselines/$slug-ci.json.gz to gate this GPU" ;;
  esac
  # 5. the HTML report: the baseline beside this run.
  "$rl" report "$baseline" "$out/sweep.json" -o "$out/report.html" >"$out/logs/report.log" 2>&1 || note "report: failed"
fi
[ -f "$out/report.html" ] && note "report: $out/report.html"

cat "$summary"
[ $verdict != 0 ] && exit $verdict
exit $status
