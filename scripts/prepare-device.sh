#!/usr/bin/env bash
# prepare-device.sh: fill the git-ignored folders that scripts/device-bench.sh
# needs on the lent GPU machine (which has no network), on THIS machine.
# Idempotent: what is already there is kept; run it again after a rebuild.
#
#   bash scripts/prepare-device.sh            # from the repository root
#   bash scripts/prepare-device.sh --refresh  # download the .debs again
#
# It makes:
#   .gl/               libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0
#                      libgles2 (amd64 .debs; the device README's recipe):
#                      the Vulkan/EGL loaders the device image lacks
#   .device/hashcat/   Debian's hashcat + hashcat-data .debs and the shared
#                      libraries hashcat links or dlopens that a bare CUDA
#                      image may lack (libminizip1 libxxhash0 zlib1g
#                      ocl-icd-libopencl1); unpacked under /tmp there
#   .device/bin/wgminer        copy of target/release/wgminer (debug info
#                              stripped; build it first: cargo build --release)
#   .device/bin/sha256d_ref    prebuilt benches/cuda/sha256d_ref.cu, a fallback
#                              for when nvcc fails there; only if an nvcc is
#                              found here (PATH, $NVCC, /usr/local/cuda, or
#                              the pip wheels in /tmp/cudapip, see below)
# and adds /.gl/ and /.device/ to .git/info/exclude.
#
# Optional nvcc here (about 300 MB in /tmp, nothing installed system-wide):
#   pip install --no-deps --target /tmp/cudapip nvidia-cuda-nvcc==13.0.88 \
#     nvidia-cuda-runtime==13.0.96 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
#
# Then call the device tool's run with
#   command: bash scripts/device-bench.sh
#   carry:   [".gl", ".device"]     timeout_s: 600
set -u
cd "$(git rev-parse --show-toplevel 2>/dev/null || pwd)" || exit 1
[ -d .git ] || { echo "run from the repository root (no .git here)"; exit 1; }

REFRESH=0
[ "${1:-}" = "--refresh" ] && REFRESH=1

GL_PKGS="libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2"
HC_PKGS="hashcat hashcat-data libminizip1 libxxhash0 zlib1g ocl-icd-libopencl1"

EXCL=.git/info/exclude
for pat in /.gl/ /.device/; do
    grep -qxF "$pat" "$EXCL" 2>/dev/null || { echo "$pat" >>"$EXCL"; echo "added $pat to $EXCL"; }
done

APT_OPTS="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64"
apt_ready=0
apt_update() {
    [ $apt_ready = 1 ] && return 0
    mkdir -p /tmp/amd64/partial
    # shellcheck disable=SC2086
    if apt-get $APT_OPTS update >/tmp/amd64-update.log 2>&1; then apt_ready=1; return 0; fi
    echo "apt-get update failed, see /tmp/amd64-update.log"; return 1
}

# download_debs DIR PKG...: downloads each PKG's .deb into DIR unless one is there
download_debs() {
    local dir=$1; shift
    mkdir -p "$dir"
    local missing=()
    for p in "$@"; do
        if [ $REFRESH = 1 ]; then rm -f "$dir/${p}_"*.deb; fi
        compgen -G "$dir/${p}_*.deb" >/dev/null || missing+=("$p")
    done
    if [ ${#missing[@]} = 0 ]; then echo "$dir: all .debs present"; return 0; fi
    apt_update || return 1
    echo "$dir: downloading ${missing[*]}"
    # shellcheck disable=SC2086
    (cd "$dir" && apt-get $APT_OPTS download "${missing[@]}" 2>&1 | grep -v 'unsandboxed\|^Get:\|^Fetched')
    for p in "${missing[@]}"; do
        compgen -G "$dir/${p}_*.deb" >/dev/null || { echo "  FAILED to download $p"; return 1; }
    done
}

download_debs .gl $GL_PKGS || echo "WARNING: .gl incomplete"
download_debs .device/hashcat $HC_PKGS || echo "WARNING: .device/hashcat incomplete"

mkdir -p .device/bin
if [ -x target/release/wgminer ]; then
    if [ ! -e .device/bin/wgminer ] || [ target/release/wgminer -nt .device/bin/wgminer ]; then
        if command -v strip >/dev/null; then
            strip --strip-debug -o .device/bin/wgminer target/release/wgminer
        else
            cp target/release/wgminer .device/bin/wgminer
        fi
        echo ".device/bin/wgminer updated from target/release/wgminer"
    else
        echo ".device/bin/wgminer is up to date"
    fi
else
    echo "WARNING: target/release/wgminer missing: run cargo build --release, then this again"
fi

NVCC=${NVCC:-}
if [ -z "$NVCC" ]; then
    for c in "$(command -v nvcc 2>/dev/null)" /usr/local/cuda/bin/nvcc /tmp/cudapip/nvidia/cu13/bin/nvcc; do
        [ -n "$c" ] && [ -x "$c" ] && { NVCC=$c; break; }
    done
fi
REF_SRC=benches/cuda/sha256d_ref.cu
if [ -n "$NVCC" ]; then
    if [ ! -e .device/bin/sha256d_ref ] || [ "$REF_SRC" -nt .device/bin/sha256d_ref ] ||
        [ benches/cuda/sha256d_core.h -nt .device/bin/sha256d_ref ]; then
        libdir=$(dirname "$(dirname "$NVCC")")/lib
        if "$NVCC" -O3 -arch=sm_90 -L"$libdir" -o .device/bin/sha256d_ref "$REF_SRC"; then
            echo ".device/bin/sha256d_ref built with $NVCC"
        else
            echo "WARNING: prebuilding sha256d_ref failed (the device script builds it there anyway)"
            rm -f .device/bin/sha256d_ref
        fi
    else
        echo ".device/bin/sha256d_ref is up to date"
    fi
else
    echo "no nvcc here: skipping the prebuilt sha256d_ref (the device script builds it there)"
fi

echo
echo "carried sizes:"
du -sh .gl .device 2>/dev/null
du -sh .device/* 2>/dev/null
total=$(du -sk .gl .device 2>/dev/null | awk '{s+=$1} END {print s}')
tree_kb=$(git ls-files -co --exclude-standard -z | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
echo "carried total: ${total} KiB; working tree that travels: ${tree_kb:-?} KiB; limit 65536 KiB together"
