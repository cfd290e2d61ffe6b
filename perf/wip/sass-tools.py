#!/usr/bin/env python3
"""SASS on a machine without a GPU (perf/wip/local-sass.sh drives it).

  sass-tools.py elf7 IN.cubin OUT.cubin   rewrite a CUDA 12.8+ cubin's ELF header (ABI version 8,
                                          the SM in e_flags bits 8-15) into the version-7 form that
                                          Debian's CUDA 11.8 cuobjdump / nvdisasm read
  sass-tools.py seq SASS REGEX            the first function matching REGEX as one line of events per
                                          loop: L 16-byte global load, r narrower one, c cp.async,
                                          M mma, l/s local load/store, W the overlapped launch's
                                          wait (ACQBULK), B a block barrier, <addr a backward branch
  sass-tools.py serial-loads SASS...      loops whose body reads the result of its own global loads
                                          (a memory round trip an iteration): per loop its size, its
                                          loads and how many of them the same iteration waits for
"""
import re
import subprocess
import sys


def functions(path):
    text = open(path).read()
    for body in re.split(r"\n\s*Function : ", text)[1:]:
        name = body.split("\n", 1)[0]
        ins = [(int(a, 16), i.strip()) for a, i in re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", body)]
        yield name, ins


def unpredicated(i):
    return re.sub(r"^@!?U?P\w+\s+", "", i)


def elf7(src, dst):
    d = bytearray(open(src, "rb").read())
    if d[8] == 8:
        sm = (int.from_bytes(d[0x30:0x34], "little") >> 8) & 0xFF
        d[8] = 7
        d[0x30:0x34] = (sm | 0x500 | (sm << 16)).to_bytes(4, "little")
    open(dst, "wb").write(d)


def seq(path, pattern):
    for name, ins in functions(path):
        if not re.search(pattern, name):
            continue
        out = []
        for a, i in ins:
            op = unpredicated(i).split(" ")[0]
            if op.startswith("LDGSTS"):
                out.append("c")
            elif op.startswith("LDGDEPBAR"):
                continue
            elif op.startswith("LDG"):
                out.append("L" if ".128" in op else "r")
            elif op.startswith("HMMA"):
                out.append("M")
            elif op.startswith("LDL"):
                out.append("l")
            elif op.startswith("STL"):
                out.append("s")
            elif op.startswith("BAR"):
                out.append("\nB ")
            elif op.startswith("ACQBULK"):
                out.append("\nW ")
            elif op.startswith("BRA"):
                m = re.search(r"0x([0-9a-f]+)", i)
                if m and int(m.group(1), 16) < a:
                    out.append(f"<{a:x}\n")
        print(name)
        print("".join(out))
        return
    sys.exit(f"no function matches {pattern}")


def regs(token, width):
    m = re.match(r"R(\d+)$", token)
    return {f"R{int(m.group(1)) + k}" for k in range(width)} if m else set()


def serial_loads(paths):
    for path in paths:
        for name, ins in functions(path):
            at = {a: k for k, (a, _) in enumerate(ins)}
            short = None
            for k, (a, i) in enumerate(ins):
                m = re.search(r"\bBRA\S*\s+(?:\S+,\s*)?0x([0-9a-f]+)", i)
                if not m or int(m.group(1), 16) >= a or int(m.group(1), 16) not in at:
                    continue
                body = ins[at[int(m.group(1), 16)] : k + 1]
                loads = waited = 0
                for j, (_, b) in enumerate(body):
                    parts = unpredicated(b).split(None, 1)
                    if len(parts) < 2 or not parts[0].startswith("LDG") or parts[0].startswith(("LDGSTS", "LDGDEPBAR")):
                        continue
                    loads += 1
                    width = 4 if ".128" in parts[0] else 2 if ".64" in parts[0] else 1
                    dst = regs(parts[1].split(",")[0].strip(), width)
                    for _, later in body[j + 1 :]:
                        p2 = unpredicated(later).split(None, 1)
                        if len(p2) < 2:
                            continue
                        ops = [o.strip() for o in p2[1].split(",")]
                        store = p2[0].startswith(("ST", "RED", "ATOM"))
                        if set(re.findall(r"R\d+", " ".join(ops if store else ops[1:]))) & dst:
                            waited += 1
                            break
                        if not store and regs(ops[0], 1) & dst:
                            break
                if waited:
                    if short is None:
                        short = subprocess.run(["c++filt"], input=name, capture_output=True, text=True).stdout
                        short = short.strip().replace("ridgeline::cuda::", "").replace("(anonymous namespace)::", "")
                    print(f"{short[:100]:100s} loop {int(m.group(1), 16):#x}-{a:#x} "
                          f"{len(body):4d} instructions, {loads:2d} global loads, {waited:2d} waited for")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "elf7":
        elf7(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "seq":
        seq(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == "serial-loads":
        serial_loads(sys.argv[2:])
    else:
        sys.exit(__doc__)
