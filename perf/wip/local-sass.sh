#!/usr/bin/env bash
# SASS of one kernel file on a machine without a GPU or cuobjdump (this CPU machine has nvcc and ptxas
# only). Fetches Debian bookworm's non-free nvidia-cuda-toolkit package once (CUDA 11.8: cuobjdump and
# nvdisasm know sm_90 and sm_90a), compiles FILE for sm_90 (sm_90a under kernels/sm90a/) into a cubin,
# rewrites its ELF header into the form 11.8 reads (perf/wip/sass-tools.py elf7) and writes the SASS.
# Without a patch argument the tree as it is; with one, FILE compiled with PATCH applied (and reversed
# after). The reading side: `sass-tools.py seq` (a kernel's loads, mmas and barriers per loop) and
# `sass-tools.py serial-loads` (loops that wait on their own loads).
#
#   bash perf/wip/local-sass.sh kernels/w4a16_gemv_regs.cu /tmp/regs.sass [PATCH]
#   python3 perf/wip/sass-tools.py seq /tmp/regs.sass 'kernelILi1ELi4E6__halfLb0ELNS1_8EpilogueE1E'
set -euo pipefail
src=$1 out=$2 patch=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
tools=${RIDGELINE_SASS_TOOLS:-$HOME/.cache/ridgeline-sass}
if [ ! -x "$tools/usr/bin/cuobjdump" ]; then
  mkdir -p "$tools/lists/partial" "$tools/cache/archives/partial"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    >"$tools/non-free.sources"
  apt_opts=(-o Dir::Etc::sourcelist="$tools/non-free.sources" -o Dir::Etc::sourceparts=/dev/null
    -o Dir::State::Lists="$tools/lists" -o Dir::Cache="$tools/cache" -o Debug::NoLocking=1)
  apt-get "${apt_opts[@]}" update >/dev/null
  (cd "$tools" && apt-get "${apt_opts[@]}" download nvidia-cuda-toolkit >/dev/null 2>&1)
  dpkg-deb -x "$tools"/nvidia-cuda-toolkit_*.deb "$tools"
fi
export PATH=/usr/local/cuda/bin:$PATH
arch=sm_90
case $src in kernels/sm90a/*) arch=sm_90a ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "$patch" ]; then
  git apply "$patch"
  trap 'git apply -R "$patch"; rm -rf "$tmp"' EXIT
fi
nvcc -std=c++20 -O3 -arch=$arch --expt-relaxed-constexpr -lineinfo -cubin -I. -Xptxas -v -o "$tmp/k.cubin" "$src" 2>"$out.ptxas"
python3 "$here/sass-tools.py" elf7 "$tmp/k.cubin" "$tmp/k7.cubin"
"$tools/usr/bin/cuobjdump" -sass "$tmp/k7.cubin" >"$out"
echo "$out: $(grep -c 'Function :' "$out") functions; ptxas's registers and spills in $out.ptxas"
