# Sourced by the gemm_narrow device scripts (gemm-narrow.sh, gemm-narrow-share.sh) after device-call.sh.

# ptxas's view of the kernel: registers, spills, and C7510 (wgmma serialized: a call or an accumulator
# touched inside the pipeline would cost most of the tensor-core rate without failing anything).
narrow_ptxas() {
  python3 -c "import json; print([e for e in json.load(open('build-gpu/compile_commands.json'))
    if e['file'].endswith('/sm90a/gemm_narrow.cu')][0]['command'])" >"$W/nvcc.cmd" &&
    (cd build-gpu && eval "$(sed 's/ -o [^ ]*/ -o \/dev\/null/' "$W/nvcc.cmd") -Xptxas -v" 2>&1 |
      grep -E "registers|spill|C7510" | head -6)
}

# narrow_tests SECONDS: the kernel's tests; sets tests_rc and prints the verdicts, failures, worst NMSE.
narrow_tests() {
  RIDGELINE_REQUIRE_GPU=1 timeout "$1" build-gpu/tests/ridgeline_gpu_tests --gtest_filter='KernelGemmNarrow*' \
    >"$W/tests.log" 2>&1
  tests_rc=$?
  echo "tests exit $tests_rc at $(( $(date +%s) - start )) s"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[gemm_narrow\]" "$W/tests.log" | head -12
  grep -E -A3 "Failure" "$W/tests.log" | head -30
  echo "worst NMSE:"; grep "^\[nmse\]" "$W/tests.log" | awk '{print $NF, $0}' | sort -g | tail -4 | cut -d" " -f2-
}

# narrow_sweep MODE MODEL TAG: a B=256 ctx 1024 fp16 sweep with RL_X_GEMM_NARROW=MODE, ending in time for
# the summary (the call's limit, GEMM_NARROW_CALL_S, less what has run, less a minute).
narrow_sweep() {
  local left=$(( ${GEMM_NARROW_CALL_S:-580} - ($(date +%s) - start) - 60 ))
  RL_X_GEMM_NARROW=$1 timeout "$left" build-gpu/ridgeline sweep --device cuda --model "$2" \
    --batch 256 --context 1024 --weights fp16 --kv fp16 --ceilings "$W/ceilings.json" --out "$W/$3.json" \
    >"$W/$3.log" 2>&1 || echo "$3 failed"
  echo "$3: $(grep -E '^\[[0-9]+/[0-9]+\]' "$W/$3.log" | sed 's/^\[[0-9/]*\] //' | tr '\n' ';')"
}
