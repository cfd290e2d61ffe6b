# Emulates the consumers' index logic of bench_layer_stream.cu: every (row, input) of each linear is
# met exactly once, with the x column the x-in-registers path assumes.
import itertools
G=132; W=16
for w4 in (False, True):
    kElems = 32768 if w4 else 8192
    kSeg = 1024 if w4 else 256
    kPer = kElems // kSeg // W
    assert kPer == 2
    for hidden, inter, kv in ((2048, 8192, 1024), (4096, 14336, 1024)):
        qkv = hidden + 2*kv
        for k,(inp,out) in enumerate(((hidden,qkv),(hidden,hidden),(hidden,2*inter),(inter,hidden))):
            cover = {}
            for b in range(G):
                r0 = out*b//G; r1 = out*(b+1)//G
                total = (r1-r0)*inp
                x_regs = kElems % inp == 0
                regcols = [((w*kPer+j)*kSeg) % inp for w in range(W) for j in range(kPer)]
                e0 = 0
                while e0 < total:
                    segs = min(kElems, total-e0)//kSeg
                    assert min(kElems, total-e0) % kSeg == 0
                    for w in range(W):
                        sg0 = w*kPer
                        if sg0 >= segs: continue
                        e = e0 + sg0*kSeg
                        row, col = e//inp, e%inp
                        for j in range(kPer):
                            sg = sg0+j
                            if sg >= segs: break
                            if x_regs: assert regcols[w*kPer+j] == col, (k, b, w, j)
                            key = (r0+row, col)
                            assert key not in cover
                            cover[key] = 1
                            col += kSeg
                            if col == inp: col = 0; row += 1
                    e0 += kElems
            assert len(cover) == out*inp//kSeg, (k, len(cover))
            assert all(c % kSeg == 0 for (_, c) in cover)
        print("ok", "w4" if w4 else "fp16", hidden)
