#!/usr/bin/env bash
# device-bench.sh: wgminer's GPU hash rate beside hashcat's and a plain CUDA
# sha256d reference, in one call on the lent NVIDIA machine.
#
# Prepare here first (downloads, copies the binary; idempotent):
#   cargo build --release && bash scripts/prepare-device.sh
# Then one call of the device tool:
#   run(command="bash scripts/device-bench.sh", carry=[".gl", ".device"], timeout_s=600)
#
# Steps, each allowed to fail without stopping the others (the summary says why):
#   env      unpack .gl (Vulkan/EGL loaders) into / when the machine lacks
#            libvulkan.so.1, find the NVIDIA Vulkan ICD, nvidia-smi
#   wgminer  `wgminer devices`, then $WGMINER_BENCH (JSON, total_hashes_per_second)
#   cudaref  nvcc -O3 -arch=sm_90 benches/cuda/sha256d_ref.cu, run it (known-answer
#            check on the genesis block, then the median of timed 2^32 sweeps)
#   hashcat  unpack .device/hashcat/*.deb into /tmp/device-bench-work/hc, run from its data
#            folder (portable mode), `hashcat -I`, then -b -m 21400 (sha256d)
#            and -b -m 1400 (sha256), CUDA backend first, OpenCL on failure
#   wgminer again, when time is left (a second reading gives the spread)
# Logs go to $OUT (at most 8 files come back): env.log wgminer.log cudaref.log
# hashcat.log gpu_monitor.csv summary.txt summary.json. The summary table is
# printed last.
#
# Overrides (environment): WGMINER_BIN, WGMINER_BENCH, BUDGET_S (total seconds,
# default 480), OUT (default /tmp/device-bench-out when unset),
# DEVICE_BENCH_FORCE_GL=1 (unpack .gl into / even without an NVIDIA GPU: don't
# do that on a workstation).
set -u
cd "$(dirname "$0")/.." || exit 1
REPO=$(pwd)

# ---- what to measure: edit here --------------------------------------------
WGMINER_BIN=${WGMINER_BIN:-$REPO/.device/bin/wgminer}
WGMINER_BENCH=${WGMINER_BENCH:-"$WGMINER_BIN bench --backend gpu --json -s 20"}
# ----------------------------------------------------------------------------

BUDGET_S=${BUDGET_S:-480}
OUT=${OUT:-/tmp/device-bench-out}
mkdir -p "$OUT"
SECONDS=0
HC_OCL_VENDORS=""
HC_LD=""

# scratch folder for unpacked hashcat and the built reference: /tmp unless it
# cannot run programs (noexec), else inside the repository copy
WORK=/tmp/device-bench-work
mkdir -p "$WORK" && cp /bin/true "$WORK/exec-test" 2>/dev/null && "$WORK/exec-test" ||
    WORK=$REPO/.device/work
mkdir -p "$WORK"
HC_ROOT=$WORK/hc

# deb_x DEB DIR: unpack a .deb without installing it (dpkg -x, or ar + tar)
deb_x() {
    if command -v dpkg >/dev/null; then dpkg -x "$1" "$2"; return; fi
    local member
    member=$(ar t "$1" | grep '^data\.tar') || return 1
    case $member in
    *.xz) ar p "$1" "$member" | tar -xJ -C "$2" ;;
    *.zst) ar p "$1" "$member" | tar --zstd -x -C "$2" ;;
    *.gz) ar p "$1" "$member" | tar -xz -C "$2" ;;
    *) ar p "$1" "$member" | tar -x -C "$2" ;;
    esac
}

declare -A RES=()   # numbers (H/s)
declare -A NOTE=()  # why a number is missing, or details

say() { echo "[device-bench +${SECONDS}s] $*"; }
remaining() { echo $((BUDGET_S - SECONDS)); }
# tmo CAP: a timeout for the next command, at most CAP, within the budget
# (keeping RESERVE seconds for the summary); prints 0 when no time is left.
RESERVE=10
tmo() {
    local r=$(($(remaining) - RESERVE))
    if [ "$r" -lt 5 ]; then echo 0; elif [ "$r" -lt "$1" ]; then echo "$r"; else echo "$1"; fi
}
# run_to LOG CAP CMD...: runs CMD under timeout, stdout+stderr into LOG (and
# on screen); returns its exit status (124: timed out, 125: no time left).
run_to() {
    local log=$1 cap=$2; shift 2
    local t
    t=$(tmo "$cap")
    if [ "$t" = 0 ]; then echo "SKIPPED (out of time budget): $*" | tee -a "$log"; return 125; fi
    echo "\$ timeout $t $*" | tee -a "$log"
    timeout -k 5 "$t" "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    echo "[exit status $rc$([ "$rc" = 124 ] && echo ', timed out')]" | tee -a "$log"
    return "$rc"
}
# json_num FILE KEY: the number KEY has in the last line of FILE that holds it
json_num() {
    local line
    line=$(grep -a "\"$2\"" "$1" 2>/dev/null | grep -a '^ *{' | tail -1)
    [ -n "$line" ] || return 1
    if command -v python3 >/dev/null; then
        python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print(v if v is not None else "")' "$line" "$2" 2>/dev/null | grep -E '^[0-9.eE+-]+$'
    else
        echo "$line" | grep -oE "\"$2\": *[0-9.eE+-]+" | head -1 | sed 's/.*: *//'
    fi
}

# ============================================================================ env
step_env() {
    local log=$OUT/env.log
    : >"$log"
    {
        say "env step"
        echo "date: $(date -u +%FT%TZ)  host: $(hostname)  kernel: $(uname -r)  arch: $(uname -m)"
        echo "repo: $REPO  commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
        echo "nproc: $(nproc)  python3: $(command -v python3 || echo none)  scratch: $WORK"
    } | tee -a "$log"

    HAVE_NVIDIA=0
    if command -v nvidia-smi >/dev/null; then
        HAVE_NVIDIA=1
        run_to "$log" 30 nvidia-smi
        run_to "$log" 20 nvidia-smi --query-gpu=name,driver_version,pci.bus_id,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu,compute_mode --format=csv
        GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
        GPU_DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
        # background monitor, ended by its PID at the end
        nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu --format=csv -l 2 \
            >"$OUT/gpu_monitor.csv" 2>&1 &
        MON_PID=$!
    else
        echo "nvidia-smi: NOT FOUND (no NVIDIA driver tools on this machine); continuing" | tee -a "$log"
        GPU_NAME="(no nvidia-smi)"; GPU_DRIVER="?"
    fi
    NOTE[gpu]="$GPU_NAME, driver $GPU_DRIVER"

    # Vulkan/EGL loaders, the device README's recipe.
    if ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 ' && ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1 '; then
        echo "libvulkan.so.1 and libEGL.so.1 already present: not unpacking .gl" | tee -a "$log"
    elif ! compgen -G "$REPO/.gl/*.deb" >/dev/null; then
        echo "NO .gl/*.deb (carry .gl, see scripts/prepare-device.sh): wgpu will find no Vulkan loader" | tee -a "$log"
    elif [ "$HAVE_NVIDIA" = 1 ] || [ "${DEVICE_BENCH_FORCE_GL:-0}" = 1 ]; then
        for f in "$REPO"/.gl/*.deb; do deb_x "$f" / || echo "unpacking $f failed"; done 2>&1 | tee -a "$log"
        ldconfig 2>&1 | tee -a "$log"
        echo "unpacked .gl into /" | tee -a "$log"
    else
        echo "no NVIDIA GPU here: not unpacking .gl into / (DEVICE_BENCH_FORCE_GL=1 to force)" | tee -a "$log"
    fi
    ldconfig -p 2>/dev/null | grep -E 'libvulkan.so.1|libEGL.so.1|libGLX_nvidia|libEGL_nvidia|libcuda.so|libnvidia-opencl' | tee -a "$log"

    # Vulkan ICD: use the system's nvidia_icd.json if one is where the loader
    # looks, else the driver folder's (README: "if no driver is found").
    if [ -z "${VK_DRIVER_FILES:-}" ]; then
        local sys_icd
        sys_icd=$(ls /usr/share/vulkan/icd.d/nvidia*.json /etc/vulkan/icd.d/nvidia*.json \
            /usr/local/share/vulkan/icd.d/nvidia*.json 2>/dev/null | head -1)
        if [ -n "$sys_icd" ]; then
            echo "Vulkan ICD found where the loader looks: $sys_icd" | tee -a "$log"
        elif [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
            export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
            [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] &&
                export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
            echo "set VK_DRIVER_FILES=$VK_DRIVER_FILES" | tee -a "$log"
        else
            echo "no NVIDIA Vulkan ICD json found (looked in /usr/share, /etc, /usr/local/share, /usr/local/nvidia)" | tee -a "$log"
        fi
        cat "${VK_DRIVER_FILES:-$sys_icd}" 2>/dev/null | tee -a "$log"
    fi
    if command -v vulkaninfo >/dev/null; then run_to "$log" 20 vulkaninfo --summary; fi
    if command -v nvcc >/dev/null; then nvcc --version 2>&1 | tail -2 | tee -a "$log"; else echo "nvcc: not on PATH" | tee -a "$log"; fi
    if command -v python3 >/dev/null; then
        run_to "$log" 40 python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no cuda device")'
    fi
}

# ======================================================================= wgminer
# wgminer_bench TAG: one reading into RES[TAG]
wgminer_bench() {
    local tag=$1 log=$OUT/wgminer.log tmp
    tmp=$(mktemp)
    say "wgminer bench ($tag): $WGMINER_BENCH" | tee -a "$log"
    # shellcheck disable=SC2086
    run_to "$tmp" 150 env RUST_BACKTRACE=1 $WGMINER_BENCH
    local rc=$?
    cat "$tmp" >>"$log"
    local v
    v=$(json_num "$tmp" total_hashes_per_second)
    if [ -n "$v" ]; then
        RES[$tag]=$v
        # the per-device part, for the summary
        NOTE[$tag]=$(grep -a '^ *{' "$tmp" | tail -1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print("; ".join("%s %s %.4g H/s hw_err=%s" % (x.get("backend"), x.get("detail", x.get("name","")), x.get("hashes_per_second",0), x.get("hardware_errors","?")) for x in d.get("devices",[])))' 2>/dev/null)
    else
        NOTE[$tag]="no total_hashes_per_second in its output (exit $rc): $(grep -av '^\$ \|^\[exit' "$tmp" | tail -3 | tr '\n' ' ' | cut -c1-300)"
    fi
    rm -f "$tmp"
}

step_wgminer() {
    local log=$OUT/wgminer.log
    : >"$log"
    if [ ! -x "$WGMINER_BIN" ]; then
        NOTE[wgminer]="binary $WGMINER_BIN missing (copy target/release/wgminer to .device/bin/, carry .device)"
        echo "${NOTE[wgminer]}" | tee -a "$log"
        return
    fi
    run_to "$log" 20 "$WGMINER_BIN" --version
    run_to "$log" 60 env RUST_BACKTRACE=1 "$WGMINER_BIN" devices
    if ! grep -av '^\$ ' "$log" | grep -qiE 'gpu|vulkan|nvidia' && [ -z "${VK_DRIVER_FILES:-}" ] &&
        [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
        export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
        export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
        echo "no GPU listed: retrying with VK_DRIVER_FILES=$VK_DRIVER_FILES" | tee -a "$log"
        run_to "$log" 60 env RUST_BACKTRACE=1 "$WGMINER_BIN" devices
    fi
    wgminer_bench wgminer
}

# ======================================================================= cudaref
step_cudaref() {
    local log=$OUT/cudaref.log bin=$WORK/sha256d_ref nvcc
    : >"$log"
    say "cuda reference" | tee -a "$log"
    nvcc=$(command -v nvcc 2>/dev/null)
    [ -z "$nvcc" ] && for c in /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do [ -x "$c" ] && { nvcc=$c; break; }; done
    local built=0
    if [ -n "$nvcc" ]; then
        if run_to "$log" 180 "$nvcc" -O3 -arch=sm_90 -Xptxas -v -o "$bin" "$REPO/benches/cuda/sha256d_ref.cu"; then
            built=1
        else
            NOTE[cudaref]="nvcc build failed; "
        fi
    else
        NOTE[cudaref]="nvcc not found; "
        echo "nvcc not found (PATH, /usr/local/cuda*/bin)" | tee -a "$log"
    fi
    if [ $built = 0 ] && [ -x "$REPO/.device/bin/sha256d_ref" ]; then
        echo "using the prebuilt $REPO/.device/bin/sha256d_ref" | tee -a "$log"
        NOTE[cudaref]+="used the prebuilt binary; "
        bin=$REPO/.device/bin/sha256d_ref
        built=1
    fi
    [ $built = 1 ] || { NOTE[cudaref]+="nothing to run"; return; }
    run_to "$log" 150 "$bin" 7 32
    local rc=$?
    local v
    v=$(json_num "$log" cuda_ref_hashes_per_second)
    if [ -n "$v" ]; then
        RES[cudaref]=$v
        [ $rc = 0 ] || NOTE[cudaref]+="exit $rc (a check failed: see cudaref.log)"
    else
        NOTE[cudaref]+="no result (exit $rc): $(grep -av '^\$ \|^\[exit' "$log" | tail -2 | tr '\n' ' ' | cut -c1-300)"
    fi
}

# ======================================================================= hashcat
HC=""
hashcat_setup() {
    local log=$1
    if ! compgen -G "$REPO/.device/hashcat/hashcat_*.deb" >/dev/null; then
        echo "no .device/hashcat/hashcat_*.deb (run scripts/prepare-device.sh, carry .device)" | tee -a "$log"
        return 1
    fi
    rm -rf "$HC_ROOT" && mkdir -p "$HC_ROOT"
    for f in "$REPO"/.device/hashcat/*.deb; do deb_x "$f" "$HC_ROOT" || echo "unpacking $f failed"; done 2>&1 | tee -a "$log"
    # Portable mode: hashcat takes its data (OpenCL/, modules/, hcstat2) from
    # the folder its executable lies in, unless that folder is the build's
    # install folder (/usr/bin for Debian). So copy (not link: it resolves
    # /proc/self/exe) the binary into the data folder. modules is a relative
    # link ../../lib/hashcat/modules there, which resolves inside $HC_ROOT.
    local share=$HC_ROOT/usr/share/hashcat
    cp "$HC_ROOT/usr/bin/hashcat" "$share/hashcat" || return 1
    HC=$share/hashcat

    # Shared libraries: ours only for the sonames the system lacks.
    local extra=$HC_ROOT/extra-lib
    mkdir -p "$extra"
    local so
    for so in libminizip.so.1 libxxhash.so.0 libz.so.1 libOpenCL.so.1; do
        if ldconfig -p | grep -q "$so "; then
            echo "system has $so" | tee -a "$log"
        else
            local src
            src=$(ls "$HC_ROOT"/usr/lib/x86_64-linux-gnu/$so "$HC_ROOT"/lib/x86_64-linux-gnu/$so 2>/dev/null | head -1)
            [ -n "$src" ] && ln -sf "$src" "$extra/$so" && echo "carried $so" | tee -a "$log"
        fi
    done
    HC_LD=$extra

    # libcuda (the driver's), which hashcat dlopens as libcuda.so / libcuda.so.1
    if ! ldconfig -p | grep -q 'libcuda.so.1 '; then
        local cu
        cu=$(find /usr/local/nvidia /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/cuda/compat -maxdepth 3 -name 'libcuda.so.1' 2>/dev/null | head -1)
        if [ -n "$cu" ]; then HC_LD=$HC_LD:$(dirname "$cu"); echo "libcuda: $cu" | tee -a "$log"
        else echo "libcuda.so.1: not found (not in ldconfig nor the usual folders)" | tee -a "$log"; fi
    fi
    if ! ldconfig -p | grep -q 'libcuda.so '; then
        local cu1
        cu1=$( (ldconfig -p | grep 'libcuda.so.1 ' | sed 's/.*=> //'; find /usr/local/nvidia /usr/lib/x86_64-linux-gnu -maxdepth 3 -name 'libcuda.so.1' 2>/dev/null) | head -1)
        [ -n "$cu1" ] && ln -sf "$cu1" "$extra/libcuda.so"
    fi

    # NVRTC: hashcat dlopens libnvrtc.so, then libnvrtc.so.1; CUDA 13 ships
    # libnvrtc.so.13 (+ libnvrtc.so in the toolkit). Prefer the toolkit's.
    local nvrtc=""
    local cands
    cands=$( (ldconfig -p | grep -E 'libnvrtc\.so(\.[0-9]+)* ' | sed 's/.*=> //'
        find /usr/local/cuda/ /usr/local/cuda-*/ /usr/lib/x86_64-linux-gnu /opt /usr/local/lib /usr/lib/python3* \
            -name 'libnvrtc.so*' -not -name '*builtins*' -not -name '*alt*' 2>/dev/null) | awk '!seen[$0]++')
    echo "libnvrtc candidates:" | tee -a "$log"
    echo "$cands" | sed 's/^/  /' | tee -a "$log"
    nvrtc=$(echo "$cands" | grep -m1 '/usr/local/cuda')
    [ -z "$nvrtc" ] && nvrtc=$(echo "$cands" | grep -m1 .)
    if [ -n "$nvrtc" ]; then
        nvrtc=$(readlink -f "$nvrtc")
        ln -sf "$nvrtc" "$extra/libnvrtc.so"
        ln -sf "$nvrtc" "$extra/libnvrtc.so.1"
        HC_LD=$HC_LD:$(dirname "$nvrtc")   # for libnvrtc-builtins
        echo "NVRTC: $nvrtc" | tee -a "$log"
        NOTE[nvrtc]=$(basename "$nvrtc")
    else
        echo "NVRTC not found: hashcat's CUDA backend will be off, OpenCL only" | tee -a "$log"
        NOTE[nvrtc]="not found"
    fi

    # OpenCL ICD for the fallback: /etc/OpenCL/vendors, else NVIDIA's library.
    if compgen -G "/etc/OpenCL/vendors/*.icd" >/dev/null; then
        echo "OpenCL ICDs: $(cat /etc/OpenCL/vendors/*.icd | tr '\n' ' ')" | tee -a "$log"
    else
        local ocl
        ocl=$( (find /usr/local/nvidia /etc /usr/share /usr/local/etc -name '*.icd' -path '*OpenCL*' 2>/dev/null
            ldconfig -p | grep 'libnvidia-opencl.so.1 ' | sed 's/.*=> //'
            find /usr/local/nvidia /usr/lib/x86_64-linux-gnu /usr/lib64 -maxdepth 3 -name 'libnvidia-opencl.so.1' 2>/dev/null) | head -1)
        if [ -n "$ocl" ]; then
            mkdir -p "$HC_ROOT/icd"
            case $ocl in
            *.icd) cp "$ocl" "$HC_ROOT/icd/" ;;
            *) echo "$ocl" >"$HC_ROOT/icd/nvidia.icd" ;;
            esac
            HC_OCL_VENDORS=$HC_ROOT/icd
            echo "OpenCL ICD: $ocl (OCL_ICD_VENDORS=$HC_OCL_VENDORS)" | tee -a "$log"
        else
            echo "no OpenCL ICD found (no /etc/OpenCL/vendors, no libnvidia-opencl.so.1)" | tee -a "$log"
        fi
    fi
    echo "hashcat LD_LIBRARY_PATH extra: $HC_LD" | tee -a "$log"
    return 0
}

# hc LOG CAP ARGS...: runs hashcat from its data folder with its environment
hc() {
    local log=$1 cap=$2; shift 2
    local envs=("LD_LIBRARY_PATH=$HC_LD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
    [ -n "${HC_OCL_VENDORS:-}" ] && envs+=("OCL_ICD_VENDORS=$HC_OCL_VENDORS")
    (cd "$HC_ROOT/usr/share/hashcat" && run_to "$log" "$cap" env "${envs[@]}" "$HC" "$@")
}

# hc_bench TAG MODE CAP EXTRA...: machine-readable benchmark lines look like
# DEVICE:MODE:CORECLK:MEMCLK:EXEC_MS:HASHES_PER_SECOND; take the largest
# (CUDA and OpenCL aliases of one GPU are not both run).
hc_bench() {
    local tag=$1 mode=$2 cap=$3; shift 3
    local log=$OUT/hashcat.log tmp
    tmp=$(mktemp)
    say "hashcat -b -m $mode $*" | tee -a "$log"
    hc "$tmp" "$cap" -b -m "$mode" --machine-readable "$@"
    local rc=$?
    cat "$tmp" >>"$log"
    local v
    v=$(grep -aE "^[0-9]+:$mode:" "$tmp" | awk -F: '{print $NF}' | sort -g | tail -1)
    rm -f "$tmp"
    if [ -n "$v" ] && [ "$v" != 0 ]; then RES[$tag]=$v; return 0; fi
    NOTE[$tag]="no benchmark line (exit $rc)"
    return 1
}

step_hashcat() {
    local log=$OUT/hashcat.log
    : >"$log"
    say "hashcat" | tee -a "$log"
    hashcat_setup "$log" || { NOTE[hc21400]="hashcat setup failed (see hashcat.log)"; NOTE[hc1400]=${NOTE[hc21400]}; return; }
    hc "$log" 60 --version
    hc "$log" 90 -I
    local backend=default
    if ! hc_bench hc21400 21400 200; then
        say "m21400 gave no number with the default backends: retrying on OpenCL only" | tee -a "$log"
        if hc_bench hc21400 21400 150 --backend-ignore-cuda; then
            backend="opencl (--backend-ignore-cuda)"
        else
            NOTE[hc21400]+="; OpenCL retry failed too"
            backend="none gave a number"
        fi
    fi
    NOTE[hc_backend]=$backend
    local extra=()
    [ "$backend" = default ] || extra=(--backend-ignore-cuda)
    hc_bench hc1400 1400 150 "${extra[@]}"
    # -w 4 (nightmare workload): the most a GPU gives in hashcat; only with time left
    if [ -n "${RES[hc21400]:-}" ] && [ "$(remaining)" -gt 100 ]; then
        hc_bench hc21400w4 21400 60 -w 4 "${extra[@]}"
    fi
    grep -aE 'Backend Device ID|Name\.\.|Version\.|CUDA\.Version|skipped|ATTENTION|error|Error' "$log" | head -20 | sed 's/^/  /'
}

# ======================================================================= summary
fmt() { # fmt NUMBER -> "12.345 GH/s"
    [ -n "${1:-}" ] || { echo "n/a"; return; }
    awk -v v="$1" 'BEGIN { if (v >= 1e9) printf "%.3f GH/s", v/1e9; else if (v >= 1e6) printf "%.3f MH/s", v/1e6; else printf "%.0f H/s", v }'
}
ratio() {
    if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a/b; else print "n/a" }'
    else echo "n/a"; fi
}

summary() {
    local s=$OUT/summary.txt
    local best_hc=${RES[hc21400]:-}
    if [ -n "${RES[hc21400w4]:-}" ] && [ -n "$best_hc" ]; then
        best_hc=$(awk -v a="$best_hc" -v b="${RES[hc21400w4]}" 'BEGIN { print (a > b ? a : b) }')
    fi
    {
        echo
        echo "================ device-bench summary (${SECONDS}s) ================"
        echo "GPU: ${NOTE[gpu]:-?}"
        printf '%-34s %16s  %s\n' "measurement" "rate" "notes"
        printf '%-34s %16s  %s\n' "wgminer (GPU)" "$(fmt "${RES[wgminer]:-}")" "${NOTE[wgminer]:-}"
        [ -n "${RES[wgminer2]:-}${NOTE[wgminer2]:-}" ] &&
            printf '%-34s %16s  %s\n' "wgminer, second reading" "$(fmt "${RES[wgminer2]:-}")" "${NOTE[wgminer2]:-}"
        printf '%-34s %16s  %s\n' "hashcat -m 21400 (sha256d)" "$(fmt "${RES[hc21400]:-}")" "backend: ${NOTE[hc_backend]:-?}; nvrtc: ${NOTE[nvrtc]:-?} ${NOTE[hc21400]:-}"
        [ -n "${RES[hc21400w4]:-}" ] &&
            printf '%-34s %16s  %s\n' "hashcat -m 21400 -w 4" "$(fmt "${RES[hc21400w4]:-}")" ""
        printf '%-34s %16s  %s\n' "hashcat -m 1400 (sha256, 1 block)" "$(fmt "${RES[hc1400]:-}")" "${NOTE[hc1400]:-}"
        printf '%-34s %16s  %s\n' "cuda-ref (plain CUDA sha256d)" "$(fmt "${RES[cudaref]:-}")" "${NOTE[cudaref]:-}"
        echo "ratio wgminer / hashcat m21400:  $(ratio "${RES[wgminer]:-}" "${RES[hc21400]:-}")$([ -n "${RES[hc21400w4]:-}" ] && echo "   (vs the better of default and -w 4: $(ratio "${RES[wgminer]:-}" "$best_hc"))")"
        echo "ratio wgminer / cuda-ref:        $(ratio "${RES[wgminer]:-}" "${RES[cudaref]:-}")"
        echo "logs: $OUT/{env,wgminer,cudaref,hashcat}.log gpu_monitor.csv summary.json"
    } | tee "$s"
    {
        printf '{"gpu": "%s"' "$(echo "${NOTE[gpu]:-}" | tr -d '"\\')"
        for k in wgminer wgminer2 hc21400 hc21400w4 hc1400 cudaref; do
            printf ', "%s": %s' "$k" "${RES[$k]:-null}"
        done
        printf ', "ratio_wgminer_hc21400": %s' "$(ratio "${RES[wgminer]:-}" "${RES[hc21400]:-}" | sed 's/n\/a/null/')"
        printf ', "ratio_wgminer_cudaref": %s' "$(ratio "${RES[wgminer]:-}" "${RES[cudaref]:-}" | sed 's/n\/a/null/')"
        printf ', "seconds": %d}\n' "$SECONDS"
    } >"$OUT/summary.json"
}

# ========================================================================== main
MON_PID=""
say "OUT=$OUT budget=${BUDGET_S}s wgminer bench: $WGMINER_BENCH"
step_env
step_wgminer
step_cudaref
step_hashcat
if [ "$(remaining)" -gt 60 ] && [ -n "${RES[wgminer]:-}" ]; then
    wgminer_bench wgminer2
fi
[ -n "$MON_PID" ] && kill "$MON_PID" 2>/dev/null
summary
exit 0
