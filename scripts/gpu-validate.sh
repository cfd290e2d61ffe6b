#!/usr/bin/env bash
# Everything a change to kernels/ or the CUDA engine must show on a real GPU, in stages that can run
# in one call or be split over several (a build left in RIDGELINE_BUILD_DIR is reused):
#   build    configure (CMake preset `gpu`: sm_90, Ninja) and build ridgeline, the GPU tests and the
#            microbenchmarks, -j16;
#   check    scripts/gpu-check.sh without memcheck: every GPU test and the B=1/B=16 decode benchmark;
#   memcheck compute-sanitizer memcheck, racecheck and initcheck (RIDGELINE_SANITIZE_TOOLS narrows
#            them) over the engine and kernel tests (gpu-check.sh's filter);
#   probe    `ridgeline probe` (measured ceilings) into OUTDIR/ceilings.json;
#   sweep    the default sweep twice, back to back (reproducibility of the median step time);
#   bench    the kernel microbenchmarks (Google Benchmark JSON; RIDGELINE_BENCH_FILTER narrows them);
#   formats  the weight x KV format sweep (fp16, w4a16 x fp16, int8, int4) of the 1.8b preset at batch
#            1..256 and context 1024..8192, of the 7b preset at batch 1, 16, 64 and context 1024, 8192,
#            and a prefill of 512 and 2048 tokens on both, against OUTDIR/ceilings.json (run `probe`
#            first) into OUTDIR/formats-*.json;
#   kv       issue 10's KV comparison: fp16, int8 and int4 KV at context 8192, batch 16, 64 and 256, on
#            the 1.8b and 7b presets (the whole step per format, and the largest batch that fits: the
#            skipped configurations carry the capacity), into OUTDIR/kv-*.json;
#   ci       scripts/gpu-ci.sh three times on the built tree: once as committed (its sweep becomes
#            OUTDIR/ci-baseline.json), once clean against it, once with RIDGELINE_INJECT_DELAY_US set
#            (layers.3.w2 200 us), which the gate must call a regression;
#   overlap  what overlapped launches (kernels/overlap.cuh) buy: the fp16 and W4A16 decode steps of
#            the 1.8b and 7b presets (DecodeBench.W4A16VsFp16OnThe1_8bAnd7bPresets) run twice by the
#            same binary, RIDGELINE_OVERLAP_LAUNCHES=0 then 1;
#   awq7b    issue 9's GPU quantizer timing: `ridgeline quantize --model internlm2-chat-7b --method
#            awq --device cuda` (per-layer upload/forward/search seconds, total GPU seconds);
#   chat     a chat transcript with the tiny model on the GPU, and the 20b preset generating.
# Reports stamp the commit that `git rev-parse` finds; on a machine whose copy of .git is stale, set
# RIDGELINE_GIT_COMMIT to the commit under test (cmake/git_stamp.cmake, bench/build_info.h).
# Results go under OUTDIR (a handful of files, logs packed into logs-<stages>.tar.gz); the summary
# comes last.
#
#   scripts/gpu-validate.sh OUTDIR [STAGE...]     (default: build check memcheck probe sweep bench chat)
set -uo pipefail
out=${1:?usage: scripts/gpu-validate.sh OUTDIR [build check memcheck probe sweep bench chat]}
shift
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build check memcheck probe sweep bench chat)
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
build=${RIDGELINE_BUILD_DIR:-build-gpu}
tag=$(IFS=-; echo "${stages[*]}")
logs="$out/logs-$tag"
mkdir -p "$logs"
export PATH="/usr/local/cuda/bin:$PATH"
# On a GPU machine a test that finds no GPU fails instead of skipping (tests/gpu/gpu_test_util.h).
export RIDGELINE_REQUIRE_GPU=${RIDGELINE_REQUIRE_GPU:-1}
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0)) s] $*" | tee -a "$logs/timeline.txt" >&2; }
rl="$build/ridgeline"
summary="$out/summary-$tag.txt"
: >"$summary"

for stage in "${stages[@]}"; do
  stamp "$stage"
  case $stage in
    build)
      cmake --preset gpu -B "$build" >"$logs/configure.log" 2>&1 || { tail -30 "$logs/configure.log"; exit 1; }
      bash scripts/refresh-mtimes.sh "$build"
      cmake --build "$build" -j16 --target ridgeline ridgeline_gpu_tests ridgeline_bench >"$logs/build.log" 2>&1 ||
        { grep -E "error|FAILED" "$logs/build.log" | head -30; exit 1; }
      echo "== build: ok" >>"$summary"
      ;;
    check)
      RIDGELINE_PREBUILT=1 RIDGELINE_SKIP_MEMCHECK=1 RIDGELINE_BUILD_DIR="$build" scripts/gpu-check.sh "$logs/check" \
        >"$logs/gpu-check.out" 2>&1
      echo "== check (exit $?)" >>"$summary"
      cat "$logs/check/summary.txt" >>"$summary" 2>/dev/null
      ;;
    memcheck)
      RIDGELINE_PREBUILT=1 RIDGELINE_ONLY_MEMCHECK=1 RIDGELINE_BUILD_DIR="$build" scripts/gpu-check.sh "$logs/memcheck" \
        >"$logs/memcheck.out" 2>&1
      echo "== memcheck (exit $?)" >>"$summary"
      cat "$logs/memcheck/summary.txt" >>"$summary" 2>/dev/null
      ;;
    probe)
      "$rl" probe --out "$out/ceilings.json" >"$logs/probe.txt" 2>&1
      { echo "== probe"; cat "$logs/probe.txt"; } >>"$summary"
      ;;
    sweep)
      "$rl" sweep --out "$out/sweep1.json" 2>"$logs/sweep1.log"
      "$rl" sweep --out "$out/sweep2.json" 2>"$logs/sweep2.log"
      { echo "== sweep 1"; grep -E "^\[|sweep:" "$logs/sweep1.log"; echo "== sweep 2";
        grep -E "^\[|sweep:" "$logs/sweep2.log"; } >>"$summary"
      ;;
    bench)
      "$build/bench/ridgeline_bench" --benchmark_min_time="${RIDGELINE_BENCH_MIN_TIME:-100x}" \
        --benchmark_filter="${RIDGELINE_BENCH_FILTER:-.}" \
        --benchmark_out="$out/kernels.json" --benchmark_out_format=json >"$logs/bench.txt" 2>&1
      echo "== bench (exit $?): $out/kernels.json" >>"$summary"
      ;;
    formats)
      ceil=()
      [ -f "$out/ceilings.json" ] && ceil=(--ceilings "$out/ceilings.json")
      fmts=(--weights fp16,w4a16 --kv fp16,int8,int4)
      "$rl" sweep "${fmts[@]}" "${ceil[@]}" --context 1024,4096,8192 --out "$out/formats-1_8b.json" \
        2>"$logs/formats-1_8b.log"
      echo "== formats 1.8b (exit $?)" >>"$summary"
      "$rl" sweep --model internlm2-chat-7b "${fmts[@]}" "${ceil[@]}" --batch 1,16,64 --context 1024,8192 \
        --out "$out/formats-7b.json" 2>"$logs/formats-7b.log"
      echo "== formats 7b (exit $?)" >>"$summary"
      for m in internlm2-chat-1_8b internlm2-chat-7b; do
        "$rl" sweep --model $m --weights fp16,w4a16 "${ceil[@]}" --phase prefill --batch 1 --prompt-len 512,2048 \
          --iters 10 --warmup 2 --out "$out/prefill-$m.json" 2>"$logs/prefill-$m.log"
        echo "== prefill $m (exit $?)" >>"$summary"
      done
      grep -hE "sweep:|prefill B=|failed" "$logs"/formats-*.log "$logs"/prefill-*.log >>"$summary"
      ;;
    kv)
      ceil=()
      [ -f "$out/ceilings.json" ] && ceil=(--ceilings "$out/ceilings.json")
      [ ${#ceil[@]} -eq 0 ] && [ -f bench/ceilings/h200.json ] && nvidia-smi -L 2>/dev/null | grep -q H200 &&
        ceil=(--ceilings bench/ceilings/h200.json)
      for m in internlm2-chat-1_8b internlm2-chat-7b; do
        "$rl" sweep --model $m --kv fp16,int8,int4 --batch 16,64,256 --context 8192 "${ceil[@]}" --iters 20 \
          --warmup 3 --out "$out/kv-$m.json" 2>"$logs/kv-$m.log"
        echo "== kv $m (exit $?)" >>"$summary"
        grep -hE "^\[|sweep:|skip|failed" "$logs/kv-$m.log" >>"$summary"
      done
      ;;
    ci)
      ci() { RIDGELINE_CI_SKIP_BUILD=1 RIDGELINE_CI_SKIP_TESTS=1 RIDGELINE_BUILD_DIR="$build" scripts/gpu-ci.sh "$@"; }
      ci "$logs/ci1" >"$logs/ci1.out" 2>&1
      echo "== ci 1 (against the committed baseline, if any; exit $?)" >>"$summary"
      cp "$logs/ci1/sweep.json" "$out/ci-baseline.json"
      RIDGELINE_CI_BASELINE="$out/ci-baseline.json" ci "$logs/ci2" >"$logs/ci2.out" 2>&1
      echo "== ci 2 (clean, exit $?)" >>"$summary"
      cat "$logs/ci2/compare.txt" >>"$summary" 2>/dev/null
      RIDGELINE_INJECT_DELAY_US=layers.3.w2:200 RIDGELINE_CI_BASELINE="$out/ci-baseline.json" ci "$logs/ci3" \
        >"$logs/ci3.out" 2>&1
      echo "== ci 3 (200 us injected into layers.3.w2, exit $?)" >>"$summary"
      cat "$logs/ci3/compare.txt" >>"$summary" 2>/dev/null
      cp "$logs/ci3/report.html" "$out/ci-report.html" 2>/dev/null
      ;;
    overlap)
      for v in 0 1; do
        RIDGELINE_OVERLAP_LAUNCHES=$v "$build/tests/ridgeline_gpu_tests" \
          --gtest_filter='DecodeBench.W4A16VsFp16OnThe1_8bAnd7bPresets' >"$logs/overlap$v.txt" 2>&1
        echo "== overlap: RIDGELINE_OVERLAP_LAUNCHES=$v (exit $?)" >>"$summary"
        grep -E "ms/step|faster" "$logs/overlap$v.txt" >>"$summary"
      done
      ;;
    awq7b)
      rm -rf "$logs/q7b"
      "$rl" quantize --model internlm2-chat-7b --method awq --device cuda --out "$logs/q7b" \
        >"$logs/awq7b.out" 2>"$logs/awq7b.err"
      echo "== awq7b (exit $?)" >>"$summary"
      { tail -2 "$logs/awq7b.err"; tail -1 "$logs/awq7b.out"; } >>"$summary"
      rm -rf "$logs/q7b"
      ;;
    chat)
      printf 'What is 40 + 20?\nWhat is the capital of Kenya?\n/stats\n/reset\nRepeat after me: silver eagle rocket garden\n' |
        "$rl" chat --model tests/data/tiny-internlm2-chat --device cuda >"$logs/chat.txt" 2>&1
      "$rl" generate --model tests/data/tiny-internlm2-chat --device cuda --chat "What is 40 + 20?" >>"$logs/chat.txt" 2>&1
      "$rl" generate --model internlm2-chat-20b --device cuda --prompt "hello" --max-new-tokens 8 >>"$logs/chat.txt" 2>&1
      { echo "== chat"; cat "$logs/chat.txt"; } >>"$summary"
      ;;
    *)
      echo "gpu-validate: unknown stage '$stage'" >&2
      exit 2
      ;;
  esac
done
stamp "done"
{ echo "== timeline"; cat "$logs/timeline.txt"; } >>"$summary"
tar -czf "$out/logs-$tag.tar.gz" -C "$out" "logs-$tag" && rm -rf "$logs"
cat "$summary"
