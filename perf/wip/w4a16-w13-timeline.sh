#!/usr/bin/env bash
# Fiftieth session (~5 min from a bare machine, any Hopper card): why the 1.8b w13's split moves the step
# 4-8x more than the kernel alone (bench/results/h100-ba5a60b-tuned-splits/, h100-2e91963-w13-unsplit-48-64/).
# The 1.8b w4a16 steps at B = 24 / 48 with `sweep --timeline` at HEAD (the table's unsplit w13 at 24, the
# rule's clusters of 2 at 48), with w4a16-tuned-splits-off.patch (clusters of 2 at 24) and with
# w4a16-w13-unsplit-48-64.patch (unsplit at 48): per kernel, its duration, lead and advance in the graph.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=<full hash> bash perf/wip/w4a16-w13-timeline.sh
here=$(cd "$(dirname "$0")" && pwd)
AB_PATCH="perf/wip/w4a16-tuned-splits-off.patch perf/wip/w4a16-w13-unsplit-48-64.patch" AB_BATCHES=24,48 \
  AB_MODELS=internlm2-chat-1_8b AB_SWEEP_ARGS=--timeline bash "$here/w4a16-steps-ab.sh"
source "$here/device-call.sh"
python3 - "$W" <<'PY'
import glob, json, sys
for f in sorted(glob.glob(sys.argv[1] + "/steps-*-internlm2-chat-1_8b.json")):
    for r in json.load(open(f))["runs"]:
        t = r.get("timeline") or {}
        print(f.split("/")[-1], "B", r["batch"], "step", round(r["step"]["time_us"]["median"], 1),
              "span", round(t.get("span_us", 0), 1))
        for k in t.get("kernels", []):
            if k["us"] > 20:
                print("   %-110s n %3d us %7.1f lead %7.1f adv %7.1f" % (k["name"][:110], k["launches"], k["us"],
                      k["lead_us"], k["advance_us"]))
PY
