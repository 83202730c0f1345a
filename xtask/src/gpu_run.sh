#!/usr/bin/env bash
# CUDA checks for mm, built by `cargo xtask gpu-bundle`. Needs PyTorch 2.11 (CUDA build) in
# $TORCH_VENV (default /opt/torch/.venv); no Rust toolchain. Exits non-zero if any check fails.
#
#   bash run.sh              every check, most wanted first
#   bash run.sh NAME...      only these checks (and what they need), e.g. to rerun failures
#   bash run.sh --list       the check names, in order
#
# Environment:
#   OUT                  results folder (default: a new temporary one), three files that fit
#                        the device tool's return limits: run.log (everything printed, as it
#                        is printed), results.tsv (name, ok|FAILED|timeout|skipped, seconds)
#                        and details.tar.gz (each run's summary.json, metrics.jsonl, config and
#                        PNG curves; info.json)
#   MM_BUNDLE_WORK       where data, vectors and training runs go (default: a temporary folder)
#   MM_BUNDLE_DEADLINE   seconds after which no check starts and a running one is stopped
#                        (default 540: the device tool allows 600 s per command)
#   MM_CHECK_TIMEOUT     most seconds for one check (default 240)
#   MM_BUNDLE_DEVICE     cuda (default), or cpu to rehearse every command line on a machine
#                        without a GPU (the CUDA-only checks are then skipped)
#   MM_BUNDLE_QUICK      1: a few steps and epochs per check (with cpu, a rehearsal in minutes)
# numpy, h5py and torchaudio come from the bundle's wheels/ when the venv cannot import them.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
checks=(info gpu-info info-json-cuda test-cuda resnet-gpu-vs-torch resnet-train-gpu-vs-torch
  w2-gpu-vs-torch synthav retrieval-gpu-vs-torch vqa-gpu-vs-torch captioning-gpu-vs-torch
  train-cuda retrieval-cuda retrieval-cuda-autocast captioning-cuda captioning-scst-cuda vqa-cuda
  word2vec-cpu word2vec-gpu word2vec-gpu-65k test-tensor_sweep test-libtorch_link test-pipeline
  test-synthav_learnable)
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${checks[@]}"; exit 0; fi
for name in "$@"; do
  case " ${checks[*]} " in *" $name "*) ;; *) echo "unknown check: $name (see --list)"; exit 2 ;; esac
done
selected=("$@")

venv=${TORCH_VENV:-/opt/torch/.venv}
lib=$(ls -d "$venv"/lib/python3*/site-packages/torch/lib 2>/dev/null | head -n 1)
if [ -z "$lib" ]; then echo "no torch/lib under $venv (set TORCH_VENV)"; exit 2; fi
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
py="$venv/bin/python"
out=${OUT:-$(mktemp -d)}
work=${MM_BUNDLE_WORK:-$(mktemp -d)}
mkdir -p "$out" "$work/runs"
exec > >(tee -a "$out/run.log") 2>&1
export PYTHONUNBUFFERED=1
deadline=${MM_BUNDLE_DEADLINE:-540}
per_check=${MM_CHECK_TIMEOUT:-240}
device=${MM_BUNDLE_DEVICE:-cuda}
quick=${MM_BUNDLE_QUICK:-0}
if [ "$quick" = 1 ]; then
  epochs=1; steps=20; repeat=1; resnet=(--batch 4 --repeat 2); w2v_iter=1
else
  epochs=10; steps=400; repeat=2; resnet=(--batch 64 --repeat 20); w2v_iter=3
fi
threads=$(nproc)
echo "# mm GPU bundle: device $device, quick $quick, deadline ${deadline}s, out $out, work $work, $(date -u)"
# the Python packages the comparisons import beyond torch, for a venv that lacks them (the
# machine has no network): the bundle's wheels, unpacked into $work/pylib, numpy first
pylib="$work/pylib"
export PYTHONPATH="$pylib${PYTHONPATH:+:$PYTHONPATH}"
for pkg in numpy h5py torchaudio; do
  "$py" -c "import $pkg" 2>/dev/null && continue
  whl=$(ls "$here"/wheels/"$pkg"-*.whl 2>/dev/null | head -n 1)
  if [ -z "$whl" ]; then echo "# python: no $pkg in $venv or the bundle"; continue; fi
  if "$py" -m zipfile -e "$whl" "$pylib" && "$py" -c "import $pkg" 2>/dev/null; then
    echo "# python: $pkg from the bundle's $(basename "$whl")"
  else
    echo "# python: $pkg from the bundle's $(basename "$whl") does not import with $py"
  fi
done
failed=()
declare -A done_checks=()

wanted() {
  [ ${#selected[@]} -eq 0 ] && return 0
  local s; for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$out/results.tsv"; }
# check NAME CMD...: runs CMD under the time limits and records the outcome
run_check() {
  local name=$1; shift
  done_checks[$name]=1
  local left=$((deadline - SECONDS))
  if [ "$left" -le 5 ]; then
    echo "== $name: skipped (deadline)"; record "$name" skipped 0; failed+=("$name"); return 1
  fi
  local limit=$((left < per_check ? left : per_check))
  echo "== $name: $*"
  local t0=$SECONDS rc
  # through bash, so that CMD may be one of the exported functions below
  timeout -k 5 "$limit" bash -c '"$@"' bash "$@"; rc=$?
  local dt=$((SECONDS - t0))
  if [ "$rc" -eq 0 ]; then
    echo "-- ok: $name (${dt}s)"; record "$name" ok "$dt"; return 0
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "-- TIMEOUT: $name after ${dt}s"; record "$name" timeout "$dt"
  else
    echo "-- FAILED: $name (exit $rc, ${dt}s)"; record "$name" FAILED "$dt"
  fi
  failed+=("$name"); return 1
}
check() { wanted "$1" || return 0; run_check "$@"; }
# needs NAME: makes sure a check another one depends on has run (selected or not)
needs() { [ -n "${done_checks[$1]:-}" ] || run_check "$1" "${@:2}"; }
cuda_only() { if [ "$device" != cuda ] && wanted "$1"; then echo "== $1: skipped (device $device)"; record "$1" skipped 0; done_checks[$1]=1; return 1; fi; }
train() { "$here/mm" train "$@" --device "$device" --quiet; }
export here device work epochs w2v_iter
export -f train
synthav() { needs synthav "$here/mm" data synthav --out "$work/synthav.h5" --scenes 1000; }

check info "$here/mm" info
# the card, driver and PyTorch build that every number below comes from
cuda_only gpu-info && check gpu-info bash -c "{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true; } && '$py' -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))'"
cuda_only info-json-cuda && check info-json-cuda bash -c "'$here/mm' info --json | tee '$work/info.json' | grep -q '\"cuda_available\": true'"
cuda_only test-cuda && check test-cuda "$here/tests/cuda" --test-threads=1
# measurement: ResNet-50 forward (eval), and forward+backward in bf16 autocast, vs PyTorch
check resnet-gpu-vs-torch env MM_VISION_BENCH="$here/vision-workloads" "$py" "$here/bench_vision.py" --device "$device" --archs resnet50 "${resnet[@]}"
check resnet-train-gpu-vs-torch env MM_VISION_BENCH="$here/vision-workloads" "$py" "$here/bench_vision.py" --device "$device" --archs resnet50 "${resnet[@]}" --train --autocast bf16
# measurement: mm's tensor path vs PyTorch on this card (W2)
check w2-gpu-vs-torch "$py" "$here/gpu_w2_torch.py" --mm "$here/signal-workloads" --device "$device" --repeat "$((quick == 1 ? 2 : 10))"
# measurement: training samples/s (and GPU busy %) vs an equivalent PyTorch script (needs h5py)
for task in retrieval vqa captioning; do
  name=$task-gpu-vs-torch
  wanted "$name" || continue
  if ! "$py" -c "import h5py" 2>/dev/null; then echo "== $name: skipped (no h5py in $venv)"; record "$name" skipped 0; continue; fi
  synthav || continue
  # mm's allocator settings (mm_train::malloc), given to PyTorch too, as `cargo xtask bench` does
  check "$name" env MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 bash -c "'$py' '$here/bench_$task.py' --data '$work/synthav.h5' --mm '$here/mm' --device $device --threads $threads --steps $steps --repeat $repeat"
done
# the training engine on this device: SynthAV tasks, fp32 and with autocast
cuda_only train-cuda && check train-cuda "$here/mm" train sound-tagging --quick --device cuda --out "$work/runs/sound-tagging-cuda"
for name in retrieval-cuda retrieval-cuda-autocast captioning-cuda captioning-scst-cuda vqa-cuda; do wanted $name && synthav; done
check retrieval-cuda train retrieval --data "$work/synthav.h5" --out "$work/runs/retrieval-cuda" --set train.epochs=$epochs
check retrieval-cuda-autocast train retrieval --data "$work/synthav.h5" --out "$work/runs/retrieval-autocast" --set train.epochs=$epochs --set train.autocast=bf16
caption() { train captioning --data "$work/synthav.h5" --out "$work/runs/captioning-cuda" --set train.epochs=$((epochs / 2 > 0 ? epochs / 2 : 1)); }
export -f caption
check captioning-cuda caption
if wanted captioning-scst-cuda; then
  needs captioning-cuda caption
  check captioning-scst-cuda train captioning --data "$work/synthav.h5" --out "$work/runs/captioning-scst-cuda" --set train.epochs=$((epochs / 5 > 0 ? epochs / 5 : 1)) --set task.objective=scst --set "task.init_weights=$work/runs/captioning-cuda" --set train.optimizer.lr=2e-4 --set train.schedule.kind=constant
fi
check vqa-cuda train vqa --data "$work/synthav.h5" --out "$work/runs/vqa-cuda" --set train.epochs=$epochs --set train.autocast=bf16
# measurement: skip-gram words/s, the lock-free CPU trainer on every core vs the tensor
# trainer on the GPU, same corpus prefix and settings, with the vectors' quality
if [ -f "$here/w2v/corpus.txt.gz" ]; then
  if wanted word2vec-cpu || wanted word2vec-gpu || wanted word2vec-gpu-65k; then gzip -dc "$here/w2v/corpus.txt.gz" > "$work/w2v-corpus.txt"; fi
  w2v() { # NAME FLAGS...
    local name=$1; shift
    "$here/mm" text word2vec train --train "$work/w2v-corpus.txt" --output "$work/$name.txt" --iter "$w2v_iter" --sample 1e-4 "$@" \
      && "$here/mm" text word2vec eval --vectors "$work/$name.txt" --analogies "$here/w2v/questions-words.txt" --similarity "$here/w2v/wordsim353.tsv"
  }
  export -f w2v
  check word2vec-cpu w2v word2vec-cpu --threads "$threads"
  cuda_only word2vec-gpu && check word2vec-gpu w2v word2vec-gpu --device cuda
  cuda_only word2vec-gpu-65k && check word2vec-gpu-65k w2v word2vec-gpu-65k --device cuda --batch 65536
else
  for name in word2vec-cpu word2vec-gpu word2vec-gpu-65k; do wanted $name && { echo "== $name: skipped (no corpus in the bundle)"; record $name skipped 0; }; done
fi
# mm-signal's tensor path on the card against its CPU path, 300 seeded settings (cf. issue 22)
[ -x "$here/tests/tensor_sweep" ] && check test-tensor_sweep env MM_TENSOR_SWEEP="$((quick == 1 ? 40 : 300))" "$here/tests/tensor_sweep" --nocapture
# the end-to-end tests, on this machine's libtorch (CUDA build)
for t in libtorch_link pipeline synthav_learnable; do
  [ -x "$here/tests/$t" ] && check "test-$t" "$here/tests/$t" --test-threads=1
done

# the small files worth keeping, in one archive (the device tool returns at most 8 files)
(cd "$work" && find . \( -name summary.json -o -name metrics.jsonl -o -name config.toml -o -name '*.png' -o -name info.json \) -size -2M -print0 \
  | tar -czf "$out/details.tar.gz" --null -T -) || echo "(no details.tar.gz)"
echo
echo "# results ($out/results.tsv), ${SECONDS}s in all"
column -t -s $'\t' "$out/results.tsv" 2>/dev/null || cat "$out/results.tsv"
skipped=$(grep -c $'\tskipped\t' "$out/results.tsv")
if [ ${#failed[@]} -eq 0 ]; then echo "all checks passed ($skipped skipped)"; else echo "failed or not run: ${failed[*]}"; exit 1; fi
