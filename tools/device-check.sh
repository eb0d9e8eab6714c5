#!/usr/bin/env bash
# tools/device-check.sh - everything of the CUDA backend that needs an NVIDIA GPU, in ONE run
# on a machine with nvcc, CMake, a C++ compiler and Python but no npm and no network
# (budget: 8 minutes on an H100). From the repository root:
#
#   tools/device-check.sh            on the GPU machine: results under $OUT (default ./device-check-out)
#   tools/device-check.sh --dry-run  anywhere: the same steps without a GPU (CPU timings, a
#                                    tiny model, test_cuda skipping), to check the script itself
#   --with-llama                     with --dry-run: also build llama.cpp (CPU) and time it
#
# Steps, each under its own time limit so that a slow one cannot eat the others:
#   1. in the background: llama.cpp from the source node-llama-cpp bundles
#      (node_modules/node-llama-cpp/llama/gitRelease.bundle, a git bundle: the device machine
#      has no npm, so CARRY THAT PATH with the working tree), built with CUDA for this GPU's
#      architecture only, target llama-bench, then mtmd (its CLIP code, tools/mtmd/clip.cpp:
#      second, so that a budget cut leaves llama-bench whole).
#      Flash attention kernels are left out (GGML_CUDA_FA=OFF) to fit the budget, so its CLIP
#      runs attention without them; LLAMA_CUDA_FA=ON puts them back.
#   2. the engine with CUDA for this GPU's architecture only, the native tests and tools
#      (build under /tmp, the tree stays clean);
#   3. test_cuda (every CUDA op against the CPU op, the golden models' logits and greedy
#      tokens CUDA vs CPU), then test_phi3 and test_phi3_hlora (the CPU engine on this machine);
#   4. make_phi3_gguf: Phi-3-mini-shaped files with random weights (seconds each): Q4_0
#      (2.2 GB), Q4_K_M (llama.cpp's K-quant mix: q4_K, q5_K, q6_K) and the two H-LoRA
#      plugins of that shape (comprehension r=64, generation r=256 with its image-token rows);
#   5. bench_phi3 --gpu cuda: prefill 512 and decode 128 tokens, as llama-bench measures them,
#      on Q4_0 (then again with each plugin: the adapters' decode overhead) and on Q4_K_M;
#   5b. the vision paths: test_cuda_vision (every CLIP / VQGAN CUDA op against the CPU, the
#      golden tiny CLIP files and VQGAN decodes on the device), test_pipeline (the golden tiny
#      HealthGPT end to end: an image question's logits and answer, a reconstruct request's
#      1024 image tokens and image, GPU against the reference and the CPU), then bench_vision --gpu cuda
#      (ViT-L/14-336 f16 encode + projector, VQGAN 256 x 256 f16 decode), which also writes
#      both files (random weights) for 5c and 6, under a limit of their own;
#   5c. one whole ct2mri-shaped generation on the GPU (native/tools/bench_generate, the C API
#      as lib/session generateImage uses it): CLIP at the generation tap, the prompt's prefill
#      with the image rows under the generation plugin, 1024 image tokens decoded greedily over
#      the <idx_k> range, the VQGAN decode; on the Q4_0 file and the generation plugin of 4;
#   6. llama-bench -ngl 99 on both files, same GPU; llama.cpp's CLIP (tools/llama-clip-bench.cpp
#      against its mtmd library) on 5b's vision file;
#   6b. the same whole generation on the CPU alone, only when the budget still has room for it
#      (on an H100 machine it usually has not: about 1-2 minutes on 16 cores; the summary says
#      so);
#   7. $OUT/summary.txt: the GPU, the test verdicts, both engines' figures and their ratios,
#      each plugin's decode speed against the base (goals: within 10% / 25%), and the vision
#      goals, each with its measured value: CLIP >= 1.0x llama.cpp CUDA's speed, VQGAN
#      256 x 256 decode < 50 ms, the whole generation < 10 s.
#
# Sizing (8 minutes on an H100, 16 cores; nothing here has run on one yet, so these are
# estimates and every step is capped): build 2-3 min with llama.cpp's in parallel, tests
# < 1 min, files and prefill/decode timings ~2 min, vision 150 s at most (its build, tests,
# timings), the generation 60 s at most (a 2.2 GB load from the page cache, CLIP's 600 MB, and
# 1024 tokens, a few seconds if the goal holds), llama.cpp's CLIP 60 s at most (compile and
# run). The CPU generation needs 150 s left (DEVICE_CHECK_CPU_GEN_NEED) or is skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)
BUDGET=${DEVICE_CHECK_BUDGET:-470}
DRY=0
WITH_LLAMA=1
for a in "$@"; do
  case "$a" in
    --dry-run) DRY=1; WITH_LLAMA=0 ;;
    --with-llama) WITH_LLAMA=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "device-check: unknown argument $a" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$ROOT/device-check-out}
mkdir -p "$OUT"
WORK=${DEVICE_CHECK_WORK:-/tmp/hg-device-check}
mkdir -p "$WORK"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(( $(date +%s) - START )); }
left() { local l=$(( BUDGET - $(elapsed) )); (( l < 5 )) && l=5; echo $l; }
JOBS=$(nproc 2>/dev/null || echo 4)

# ---- the toolchain and the GPU ----
NVCC=${CUDACXX:-$(command -v nvcc || true)}
[[ -z "$NVCC" && -x /usr/local/cuda/bin/nvcc ]] && NVCC=/usr/local/cuda/bin/nvcc
ARCH=""
GPU="none"
if [[ $DRY == 0 ]]; then
  command -v nvidia-smi >/dev/null && GPU=$(nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader | head -1)
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  ARCH=${cc:-native}
  [[ -z "$NVCC" ]] && { say "device-check: no nvcc found (PATH, CUDACXX, /usr/local/cuda/bin)"; exit 1; }
fi
say "device-check: $(date -u +%FT%TZ), GPU: $GPU, arch: ${ARCH:-none}, nvcc: ${NVCC:-none}, $JOBS cores, dry run: $DRY"
[[ -n "$NVCC" ]] && say "  $("$NVCC" --version | tail -2 | head -1)"

# ---- 1. llama.cpp in the background ----
BUNDLE=node_modules/node-llama-cpp/llama/gitRelease.bundle
LLAMA_SRC=$WORK/llama.cpp
LLAMA_BUILD=$WORK/llama-build
LLAMA_BENCH=""
mtmd=""
llama_pid=""
if [[ $WITH_LLAMA == 1 ]]; then
  if [[ ! -f $BUNDLE ]]; then
    say "llama.cpp: skipped - $BUNDLE is missing (carry it with the working tree)"
    WITH_LLAMA=0
  elif ! command -v git >/dev/null; then
    say "llama.cpp: skipped - no git to unpack $BUNDLE"
    WITH_LLAMA=0
  else
    cuda_flags="-DGGML_CUDA=OFF"
    if [[ $DRY == 0 ]]; then
      cuda_flags="-DGGML_CUDA=ON -DCMAKE_CUDA_COMPILER=$NVCC -DCMAKE_CUDA_ARCHITECTURES=$ARCH"
      cuda_flags+=" -DGGML_CUDA_FA=${LLAMA_CUDA_FA:-OFF} -DGGML_CUDA_NCCL=OFF"
    fi
    export BUNDLE LLAMA_SRC LLAMA_BUILD JOBS cuda_flags
    # timeout runs the build in a process group of its own and ends all of it (compilers
    # included) at the deadline, which leaves a minute for llama-bench
    timeout --kill-after=10 "$(( BUDGET - 60 ))" bash -c '
      set -e
      [[ -d $LLAMA_SRC/.git ]] || git clone -q "$BUNDLE" "$LLAMA_SRC"
      cmake -S "$LLAMA_SRC" -B "$LLAMA_BUILD" -DCMAKE_BUILD_TYPE=Release $cuda_flags \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF
      cmake --build "$LLAMA_BUILD" -j "$JOBS" --target llama-bench
      # its CLIP library after llama-bench, so that a budget cut leaves llama-bench whole
      cmake --build "$LLAMA_BUILD" -j "$JOBS" --target mtmd
    ' > "$WORK/llama-build.log" 2>&1 &
    llama_pid=$!
  fi
fi

# ---- 2. this engine ----
BUILD=$WORK/build
cuda_opts=(-DHEALTHGPT_CUDA=OFF)
targets=(test_phi3 test_phi3_hlora make_phi3_gguf bench_phi3)
if [[ -n "$NVCC" ]]; then
  targets+=(test_cuda)
  cuda_opts=(-DHEALTHGPT_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES="${ARCH:-75}")
  home=$(dirname "$(dirname "$NVCC")")
  [[ -d $home/lib || -d $home/lib64 ]] && cuda_opts+=(-DCUDAToolkit_ROOT="$home")
fi
t0=$(elapsed)
if timeout "$(left)" cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DHEALTHGPT_BUILD_TESTS=ON \
     -DHEALTHGPT_BUILD_TOOLS=ON "${cuda_opts[@]}" > "$WORK/build.log" 2>&1 &&
   timeout "$(left)" cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}" \
     >> "$WORK/build.log" 2>&1; then
  say "build: ok in $(( $(elapsed) - t0 )) s ($(grep -o 'CUDA backend [A-Z]*' "$WORK/build.log" | head -1))"
else
  say "build: FAILED (log: build.log)"
  tail -c 60000 "$WORK/build.log" > "$OUT/build.log"
  [[ -n $llama_pid ]] && kill "$llama_pid" 2>/dev/null
  exit 1
fi

# ---- 3. tests ----
run_test() { # name, seconds
  local name=$1 limit=$2 rc
  [[ -x $BUILD/$name ]] || { say "$name: not built"; return; }
  timeout "$limit" "$BUILD/$name" > "$WORK/$name.log" 2>&1
  rc=$?
  local verdict
  verdict=$(grep -E '^[0-9]+ passed, ([0-9]+ skipped, )?[0-9]+ failed' "$WORK/$name.log" | tail -1)
  say "$name: rc $rc, ${verdict:-no verdict (crashed or timed out)}"
  grep -E '^ *FAIL|^skip|skipped' "$WORK/$name.log" | head -20 | sed 's/^/    /' | tee -a "$SUMMARY"
}
run_test test_cuda 150
grep -E '^    .*(prefill|embedding rows)|device 0|bf16 on tensor cores' "$WORK/test_cuda.log" | sed 's/^/  /' | tee -a "$SUMMARY"
cp "$WORK/test_cuda.log" "$OUT/test_cuda.log" 2>/dev/null
run_test test_phi3 60
run_test test_phi3_hlora 60

# ---- 4. the timing models ----
name=phi3-mini-random
shape=()
[[ $DRY == 1 ]] && name=phi3-tiny-random && shape=(--layers 2 --hidden 256 --ffn 512 --heads 4 --kv-heads 4 --vocab 1024 --context 1024)
MODEL=$WORK/$name-q4_0.gguf
MODEL_K=$WORK/$name-q4_k_m.gguf
PLUGINS=("$WORK/$name-comprehension.gguf" "$WORK/$name-generation.gguf")
make_file() { # out, make_phi3_gguf options
  local out=$1
  shift
  [[ -f $out ]] || timeout 120 "$BUILD/make_phi3_gguf" "$out" "$@" "${shape[@]}" | tee -a "$SUMMARY"
}
make_file "$MODEL"
make_file "$MODEL_K" --type q4_k_m
make_file "${PLUGINS[0]}" --plugin comprehension
make_file "${PLUGINS[1]}" --plugin generation

# ---- 5. this engine's prefill and decode ----
P=512 N=128 R=3
gpu_flag=cuda
[[ $DRY == 1 ]] && gpu_flag=auto
bench() { # log name, limit, model, bench_phi3 options
  local log=$1 limit=$2 model=$3
  shift 3
  timeout "$limit" "$BUILD/bench_phi3" "$model" --gpu $gpu_flag -p $P -n $N -r $R "$@" > "$WORK/$log" 2>&1
  say "healthgpt ($gpu_flag) $(basename "$model"): rc $?"
  sed 's/^/  /' "$WORK/$log" | tee -a "$SUMMARY"
  cp "$WORK/$log" "$OUT/$log" 2>/dev/null
}
bench bench.log 150 "$MODEL" --plugin "${PLUGINS[0]}" --plugin "${PLUGINS[1]}"
ours=$(grep '^{' "$WORK/bench.log" | tail -1)
bench bench-q4_k_m.log 90 "$MODEL_K"
ours_k=$(grep '^{' "$WORK/bench-q4_k_m.log" | tail -1)

# ---- 5b. the vision paths: CLIP and the VQGAN decoder ----
VISION_LIMIT=${DEVICE_CHECK_VISION_LIMIT:-150}
vision_started=$(elapsed)
vision_left() { local l=$(( VISION_LIMIT - $(elapsed) + vision_started )); (( l > $(left) )) && l=$(left); (( l < 5 )) && l=5; echo $l; }
vision_targets=(bench_vision bench_generate test_pipeline)
[[ -n "$NVCC" ]] && vision_targets+=(test_cuda_vision)
VISION_REPS=5
[[ $DRY == 1 ]] && VISION_REPS=1
CLIP_FILE=$WORK/vitl336-random-f16.gguf
VQGAN_FILE=$WORK/vqgan-random-f16.gguf
rm -f "$CLIP_FILE" "$VQGAN_FILE"
if timeout "$(vision_left)" cmake --build "$BUILD" -j "$JOBS" --target "${vision_targets[@]}" > "$WORK/vision-build.log" 2>&1; then
  [[ -n "$NVCC" ]] && run_test test_cuda_vision "$(vision_left)"
  grep -E '^  (clip|vqgan) ' "$WORK/test_cuda_vision.log" 2>/dev/null | sed 's/^/  /' | tee -a "$SUMMARY"
  cp "$WORK/test_cuda_vision.log" "$OUT/test_cuda_vision.log" 2>/dev/null
  # the golden tiny HealthGPT end to end: the CPU and (with a device) the GPU against the
  # reference, and GPU against CPU: the same answer and image tokens
  run_test test_pipeline "$(vision_left)"
  grep -E '^    (cpu|cuda|model)[: ]' "$WORK/test_pipeline.log" 2>/dev/null | sed 's/^/  /' | tee -a "$SUMMARY"
  cp "$WORK/test_pipeline.log" "$OUT/test_pipeline.log" 2>/dev/null
  vision_args=(--gpu cuda -r $VISION_REPS)
  # the tiny model of the dry run is 256 wide: the projectors must give rows of that
  [[ $DRY == 1 ]] && vision_args=(--gpu auto -r $VISION_REPS --clip-layers 2 --vqgan tiny --proj-dim 256)
  timeout "$(vision_left)" "$BUILD/bench_vision" "${vision_args[@]}" --save-clip "$CLIP_FILE" \
    --save-vqgan "$VQGAN_FILE" > "$WORK/bench-vision.log" 2>&1
  say "bench_vision (${vision_args[*]}): rc $? (goals on a GPU: VQGAN 256x256 decode < 50 ms; CLIP >= 1.0x llama.cpp CUDA's)"
  grep -E '^(clip|vqgan):' "$WORK/bench-vision.log" | sed 's/^/  /' | tee -a "$SUMMARY"
  cp "$WORK/bench-vision.log" "$OUT/bench-vision.log"
else
  say "vision: build FAILED or timed out (log: vision-build.log)"
  tail -c 30000 "$WORK/vision-build.log" > "$OUT/vision-build.log"
fi
say "vision: $(( $(elapsed) - vision_started )) s of its ${VISION_LIMIT} s"
ours_vision=$(grep '^{' "$WORK/bench-vision.log" 2>/dev/null | tail -1)

# ---- 5c. one whole generation on the GPU ----
generate() { # log, limit, --gpu value
  local log=$1 limit=$2 g=$3
  if [[ ! -x $BUILD/bench_generate || ! -f $CLIP_FILE || ! -f $VQGAN_FILE ]]; then
    say "generation (--gpu $g): skipped - bench_generate or 5b's files missing"
    return
  fi
  timeout "$limit" "$BUILD/bench_generate" "$MODEL" --plugin "${PLUGINS[1]}" --clip "$CLIP_FILE" \
    --vqgan "$VQGAN_FILE" --gpu "$g" > "$WORK/$log" 2>&1
  say "generation (bench_generate --gpu $g, $(basename "$MODEL") + generation plugin): rc $?"
  sed 's/^/  /' "$WORK/$log" | tee -a "$SUMMARY"
  cp "$WORK/$log" "$OUT/$log" 2>/dev/null
}
GEN_LIMIT=${DEVICE_CHECK_GEN_LIMIT:-60}
generate bench-generate.log "$(( GEN_LIMIT < $(left) ? GEN_LIMIT : $(left) ))" $gpu_flag
ours_gen=$(grep '^{' "$WORK/bench-generate.log" 2>/dev/null | tail -1)

# ---- 6. llama.cpp on the same file ----
theirs=""
if [[ -n $llama_pid ]]; then
  wait "$llama_pid" # ends by its timeout at the latest
  rc=$?
  if [[ -x $LLAMA_BUILD/bin/llama-bench ]]; then
    LLAMA_BENCH=$LLAMA_BUILD/bin/llama-bench
    mtmd="with its CLIP library (mtmd)"
    (( rc != 0 )) && mtmd="WITHOUT its CLIP library: rc $rc (124: the budget cut it)"
    say "llama.cpp: llama-bench built ($(cd "$LLAMA_SRC" && git log -1 --format=%h 2>/dev/null), GGML_CUDA_FA=${LLAMA_CUDA_FA:-OFF}), $mtmd"
  elif (( rc == 124 || rc == 137 )); then
    say "llama.cpp: build did not finish within the budget (log: llama-build.log)"
  else
    say "llama.cpp: build FAILED (log: llama-build.log)"
  fi
  tail -c 30000 "$WORK/llama-build.log" > "$OUT/llama-build.log"
fi
if [[ -n $LLAMA_BENCH && -x $LLAMA_BENCH ]]; then
  ngl=99
  [[ $DRY == 1 ]] && ngl=0
  timeout "$(left)" "$LLAMA_BENCH" -m "$MODEL" -m "$MODEL_K" -p $P -n $N -r $R -ngl $ngl -o json > "$OUT/llama-bench.json" 2> "$WORK/llama-bench.err"
  say "llama-bench: rc $?"
  theirs=$(python3 - "$OUT/llama-bench.json" <<'PY'
import json, sys
try:
    rows = json.load(open(sys.argv[1]))
except Exception as e:
    print("unreadable:", e); sys.exit(0)
for r in rows:
    kind = "pp" if r.get("n_prompt", 0) > 0 else "tg"
    file = r.get("model_filename", "").rsplit("/", 1)[-1]
    print(f'{kind} {r.get("avg_ts", 0):.3f} {file} {r.get("n_prompt", 0) or r.get("n_gen", 0)} {r.get("gpu_info", "") or r.get("cpu_info", "")}')
PY
)
  echo "$theirs" | sed 's/^/  llama.cpp /' | tee -a "$SUMMARY"
fi
# llama.cpp's CLIP on 5b's file: a small timer against its mtmd library (clip.cpp)
theirs_clip=""
if [[ -n $LLAMA_BENCH && -f $CLIP_FILE && $mtmd == with* ]]; then
  clip_limit=$(( $(left) < 60 ? $(left) : 60 ))
  cpu_arg=()
  [[ $DRY == 1 ]] && cpu_arg=(--cpu)
  if timeout "$clip_limit" c++ -O2 -std=c++17 -I"$LLAMA_SRC/tools/mtmd" -I"$LLAMA_SRC/include" \
       -I"$LLAMA_SRC/ggml/include" tools/llama-clip-bench.cpp -L"$LLAMA_BUILD/bin" -lmtmd -lllama -lggml \
       -lggml-base -Wl,-rpath,"$LLAMA_BUILD/bin" -o "$WORK/llama-clip-bench" > "$WORK/llama-clip.log" 2>&1; then
    timeout "$clip_limit" "$WORK/llama-clip-bench" "$CLIP_FILE" -r "$VISION_REPS" "${cpu_arg[@]}" \
      >> "$WORK/llama-clip.log" 2>&1
    say "llama.cpp clip (tools/llama-clip-bench.cpp): rc $?"
    grep -E '^llama.cpp clip:|flash attention' "$WORK/llama-clip.log" | sed 's/^/  /' | tee -a "$SUMMARY"
    theirs_clip=$(grep '^{' "$WORK/llama-clip.log" | tail -1)
  else
    say "llama.cpp clip: tools/llama-clip-bench.cpp did not build (log: llama-clip.log)"
  fi
  tail -c 20000 "$WORK/llama-clip.log" > "$OUT/llama-clip.log"
elif [[ -n $LLAMA_BENCH ]]; then
  say "llama.cpp clip: skipped - no libmtmd in the llama.cpp build or no vision file from 5b"
fi

# ---- 6b. the whole generation on the CPU, if the budget has room ----
CPU_GEN_NEED=${DEVICE_CHECK_CPU_GEN_NEED:-150}
ours_gen_cpu=""
if (( $(left) >= CPU_GEN_NEED )); then
  generate bench-generate-cpu.log "$(left)" off
  ours_gen_cpu=$(grep '^{' "$WORK/bench-generate-cpu.log" 2>/dev/null | tail -1)
else
  say "generation on the CPU: skipped - $(left) s of the budget left, it needs ${CPU_GEN_NEED} s (DEVICE_CHECK_CPU_GEN_NEED)"
fi

# ---- 7. ratios ----
# against llama.cpp per file; each plugin's decode against the base's (H-LoRA overhead)
python3 - "$ours" "$ours_k" "$theirs" "$(basename "$MODEL")" "$(basename "$MODEL_K")" <<'PY' | tee -a "$SUMMARY"
import json, sys
ours, ours_k, theirs, f_q4, f_k = sys.argv[1:6]
def load(s):
    try:
        return json.loads(s)
    except Exception:
        return None
t = {}
for l in theirs.splitlines():
    p = l.split()
    if len(p) >= 3 and p[0] in ("pp", "tg"):
        t[(p[0], p[2])] = float(p[1])
for o, f in ((load(ours), f_q4), (load(ours_k), f_k)):
    if not o:
        print(f"ratio {f}: no healthgpt figures")
        continue
    for kind, key, goal in (("pp", "pp_tok_s", "prefill >= 0.8x"), ("tg", "tg_tok_s", "decode >= 1.0x (goal 1.2x)")):
        if t.get((kind, f)):
            print(f"ratio {kind} {f}: healthgpt {o[key]:.1f} / llama.cpp {t[(kind, f)]:.1f} tok/s = {o[key] / t[(kind, f)]:.2f}x ({goal})")
o = load(ours)
for p in (o or {}).get("plugins", []):
    goal = 0.90 if "comprehension" in p["plugin"] else 0.75
    r = p["tg_tok_s"] / o["tg_tok_s"] if o["tg_tok_s"] else 0
    verdict = "within" if r >= goal else "OUTSIDE"
    print(f"H-LoRA {p['plugin']}: decode {p['tg_tok_s']:.1f} / base {o['tg_tok_s']:.1f} tok/s = {r:.3f}x, "
          f"overhead {100 * (1 - r):.1f}% ({verdict} the goal of {100 * (1 - goal):.0f}%)")
PY
# the vision goals, each with its measured value
python3 - "$ours_vision" "$theirs_clip" "$ours_gen" "$ours_gen_cpu" "$GPU" "$DRY" <<'PY' | tee -a "$SUMMARY"
import json, sys
def load(s):
    try:
        return json.loads(s)
    except Exception:
        return None
vis, clip_l, gen, gen_cpu = (load(a) for a in sys.argv[1:5])
gpu, dry = sys.argv[5], sys.argv[6] == "1"
def verdict(ok):
    return "MET" if ok else "NOT MET"
print(f"vision goals (GPU: {gpu}{'; dry run: tiny shapes on the CPU, goals not judged' if dry else ''}):")
if vis and clip_l and clip_l.get("clip_ms") and vis.get("clip_ms"):
    r = clip_l["clip_ms"] / vis["clip_ms"]
    print(f"  CLIP encode + projector: healthgpt {vis['clip_ms']:.2f} ms ({vis['clip_backend']}), llama.cpp "
          f"{clip_l['clip_ms']:.2f} ms: ours / llama.cpp speed {r:.2f}x (goal >= 1.0x: {'n/a' if dry else verdict(r >= 1.0)})")
elif vis:
    print(f"  CLIP encode + projector: healthgpt {vis['clip_ms']:.2f} ms; no llama.cpp figure (goal >= 1.0x: not measured)")
else:
    print("  CLIP and VQGAN: no figures from bench_vision")
if vis:
    print(f"  VQGAN decode: {vis['vqgan_ms']:.2f} ms on {vis['vqgan_backend']} (goal at 256x256 < 50 ms: "
          f"{'n/a' if dry else verdict(vis['vqgan_ms'] < 50)})")
for name, g in (("GPU", gen), ("CPU", gen_cpu)):
    if not g:
        print(f"  whole generation on the {name}: no figures")
        continue
    s = g["total_ms"] / 1e3
    goal = f" (goal < 10 s: {'n/a' if dry else verdict(s < 10)})" if name == "GPU" else ""
    print(f"  whole generation on the {name} ({g['model_backend']}): {s:.2f} s{goal} = CLIP {g['clip_ms']:.1f} ms + "
          f"prefill {g['prefill_ms']:.1f} ms ({g['n_prompt']} positions) + decode {g['decode_ms']:.1f} ms "
          f"({g['n_image_tokens']} image tokens, {g['decode_tok_s']:.1f} tok/s) + VQGAN {g['vqgan_ms']:.1f} ms")
if gen and gen_cpu:
    same = gen["indices_fnv"] == gen_cpu["indices_fnv"]
    print(f"  image tokens GPU vs CPU (random weights, greedy; near-ties may differ): {'the same' if same else 'DIFFERENT'} "
          f"(fnv {gen['indices_fnv']} / {gen_cpu['indices_fnv']})")
PY
# the golden models' pipelines, GPU against CPU (test_pipeline's verdict line)
pipeline=$(grep -E '^    cuda vs cpu' "$WORK/test_pipeline.log" 2>/dev/null | sed 's/^ *//')
if [[ -n $pipeline ]]; then
  say "  golden tiny HealthGPT, GPU vs CPU pipelines (goal: the same answer and image tokens): $pipeline"
else
  say "  golden tiny HealthGPT, GPU vs CPU pipelines: not run on a GPU ($(grep -E '^skip golden_pipeline_on_cuda' "$WORK/test_pipeline.log" 2>/dev/null | sed 's/^skip [a-z_]*: //' || true))"
fi
# a decode step's CUDA graph the driver refused: the engine fell back to plain launches (slower)
fallback=$(grep -h 'CUDA graph capture failed' "$WORK"/*.log 2>/dev/null | sort | uniq -c | head -3 || true)
if [[ -n $fallback ]]; then say "  CUDA graphs fell back to plain launches:"; echo "$fallback" | sed 's/^/    /' | tee -a "$SUMMARY"; fi
say "device-check: done in $(elapsed) s; results in $OUT"
