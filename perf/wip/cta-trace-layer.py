#!/usr/bin/env python3
"""perf/wip/cta-trace.patch stamps, one layer at a time: for `count` launches from launch `first` (in
start order), each launch's start, enter (past overlap_enter) and end quantiles in us from the first
launch's start. Tags as perf/wip/cta-trace-summary.py.

  perf/wip/cta-trace-layer.py FILE.tsv.gz FIRST COUNT
"""
import collections, csv, gzip, sys
path=sys.argv[1]; first=int(sys.argv[2]); count=int(sys.argv[3])
rows=[r for r in csv.DictReader(gzip.open(path,'rt'),delimiter='\t')]
by=collections.defaultdict(list)
for r in rows: by[r['tag']].append(r)
L=[]
for tag,rs in by.items():
    rs.sort(key=lambda r:int(r['start'])); n=int(rs[0]['units'])
    for i in range(0,len(rs),n): L.append((min(int(r['start']) for r in rs[i:i+n]),tag,rs[i:i+n]))
L.sort()
L=L[first:first+count]
t0=L[0][0]
for s,tag,rs in L:
    st=[(int(r['start'])-t0)/1000 for r in rs]; en=[(int(r['enter'])-t0)/1000 for r in rs]; ed=[(int(r['end'])-t0)/1000 for r in rs]
    st.sort(); en.sort(); ed.sort(); n=len(rs)
    q=lambda a,p:a[min(n-1,int(p*n))]
    print(f"{tag} n={n:5d} start {st[0]:6.1f}..{st[-1]:6.1f}  enter {en[0]:6.1f} med {q(en,.5):6.1f}  end {ed[0]:6.1f} p10 {q(ed,.1):6.1f} med {q(ed,.5):6.1f} p90 {q(ed,.9):6.1f} last {ed[-1]:6.1f}")
