#!/usr/bin/env bash
# Queued (twenty-eighth): same-machine A/B of the landed rope_in_attention (f001daf) at 1.8b B=4 ctx 4096/8192,
# which the baselines at f001daf flagged (+2..+6.6% against d9fb392's, on a machine 1.6% slower); the
# same-machine A/B at B=1/4/16/64 ctx 1024 and B=16 ctx 8192 showed no loss. Builds HEAD without the
# change (build-old) and with it (build-gpu), two sweeps each. Run: bash perf/wip/rope-in-attention-b4-ab.sh
set -uo pipefail
export PATH=/usr/local/cuda/bin:$PATH
export RIDGELINE_GIT_COMMIT=${RIDGELINE_GIT_COMMIT:-unknown}
W=$OUT/w; mkdir -p $W
trap 'tar czf $OUT/w.tgz -C $OUT w' EXIT
git apply -R perf/wip/rope-in-attention-landed.patch || exit 1
cmake --preset gpu -B build-old > $W/c1.log 2>&1 && cmake --build build-old -j16 --target ridgeline > $W/b1.log 2>&1 || { echo old build failed; exit 1; }
git apply perf/wip/rope-in-attention-landed.patch || exit 1
cmake --preset gpu -B build-gpu > $W/c2.log 2>&1 && cmake --build build-gpu -j16 --target ridgeline > $W/b2.log 2>&1 || { echo new build failed; exit 1; }
for rep in 1 2; do for tag in old new; do b=build-gpu; [ $tag = old ] && b=build-old
  $b/ridgeline sweep --model internlm2-chat-1_8b --batch 4 --context 4096,8192 --weights fp16,w4a16 --kv fp16,int4 --out $W/$tag-$rep.json > $W/$tag-$rep.log 2>&1 || echo "sweep $tag failed"
done; done
python3 - $W <<'PY'
import json, sys
w = sys.argv[1]
def load(t):
    out = {}
    for rep in (1, 2):
        for r in json.load(open(f"{w}/{t}-{rep}.json"))["runs"]:
            k = (r["batch"], r["context"], r["weights"], r["kv"])
            ops = {}
            for o in r["ops"]:
                n = o["name"].split(".")[-1]
                ops[n] = ops.get(n, 0) + o["time_us"]
            out.setdefault(k, []).append((r["step"]["time_us"]["median"], ops))
    return out
o, n = load("old"), load("new")
for k in sorted(o):
    so = [x[0] for x in o[k]]; sn = [x[0] for x in n[k]]
    ao = o[k][0][1]; an = n[k][0][1]
    print(k, "step old", [round(x) for x in so], "new", [round(x) for x in sn],
          "| attention", round(ao.get("attention", 0)), "->", round(an.get("attention", 0)),
          "rope_kv_write", round(ao.get("rope_kv_write", 0)))
PY
