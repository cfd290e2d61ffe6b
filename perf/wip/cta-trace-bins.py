#!/usr/bin/env python3
"""perf/wip/cta-trace.patch stamps of one launch of one tag in 1-us bins: how many stamps started,
passed overlap_enter and ended in each, and the read rate the ends stand for at BYTES a stamp.

  perf/wip/cta-trace-bins.py FILE.tsv.gz TAG(hex) LAUNCH BYTES
"""
import gzip,csv,collections,sys
path,tagsel,idx=sys.argv[1],int(sys.argv[2],16),int(sys.argv[3])
rows=[r for r in csv.DictReader(gzip.open(path,'rt'),delimiter='\t') if int(r['tag'],16)==tagsel]
rows.sort(key=lambda r:int(r['start']))
n=int(rows[0]['units'])
L=rows[idx*n:(idx+1)*n]
t0=min(int(r['start']) for r in L)
bytes_per=float(sys.argv[4]) if len(sys.argv)>4 else 8192
ends=collections.Counter(); starts=collections.Counter(); enters=collections.Counter()
for r in L:
    ends[(int(r['end'])-t0)//1000]+=1; starts[(int(r['start'])-t0)//1000]+=1; enters[(int(r['enter'])-t0)//1000]+=1
T=max(ends)+1
act=0
for b in range(T):
    print(f"{b:3d} us: start {starts[b]:5d} enter {enters[b]:5d} end {ends[b]:5d}  GB/s~{ends[b]*bytes_per/1e3:7.0f}")
