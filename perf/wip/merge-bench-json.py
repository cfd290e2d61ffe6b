#!/usr/bin/env python3
"""The benchmarks of several Google Benchmark JSON files as one file on stdout; a file that a time
limit cut off (missing, empty or not JSON) is named on stderr and left out.

    python3 perf/wip/merge-bench-json.py A.json B.json ... > ALL.json
"""
import json
import sys

benchmarks = []
for path in sys.argv[1:]:
    try:
        benchmarks += json.load(open(path))["benchmarks"]
    except (OSError, ValueError, KeyError) as e:
        print(f"{path}: left out ({e})", file=sys.stderr)
print(json.dumps({"benchmarks": benchmarks}))
