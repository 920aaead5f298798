#!/usr/bin/env bash
# GPU check (issue 13): a mixture fleet with real CUDA on a lent machine with an NVIDIA GPU.
#
# Here, once, in the project root:  bash ../shared/tools/device-ray-bundle.sh   (packs Ray into .device-ray/)
# On the device (carry .device-ray): bash benchmarks/gpu_check.sh
# Here, without a GPU (CPU parts only, small; what the device run does, minus CUDA):
#                                   GPU_CHECK_DRY=1 bash benchmarks/gpu_check.sh
#
# Prints, and leaves under $OUT (default: a temp dir):
#   1. PatternExpert training / inference samples/s on CUDA against CPU (benchmarks/pattern_throughput.py);
#   2. a Ray mixture fleet (trend,pattern,stress,sde; synthetic market) with CNN steps asking for
#      --cnn-num-gpus of the GPU: its wall time and the task overlap from manifest.json["tasks"]
#      (benchmarks/task_overlap.py: CNN steps on GPU workers, seconds with CNN and tabular steps side by side);
#   3. peak GPU memory: nvidia-smi sampled every 200 ms during the fleet run (all processes), and each
#      throughput fit's torch.cuda.max_memory_allocated.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
DRY=${GPU_CHECK_DRY:-0}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
if [ -f .device-ray/install.sh ]; then
  source .device-ray/install.sh || exit 1
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}
echo "== gpu_check: out $OUT, dry run: $DRY"

# What the fleet imports: say which package is missing rather than fail half way.
$PY - <<'PY' || exit 1
import importlib.util, sys
missing = [m for m in ("numpy", "pandas", "sklearn", "scipy", "statsmodels", "pydantic", "click", "yaml", "pyarrow",
                       "torch", "ray") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: missing Python packages: {', '.join(missing)}")
import torch, ray
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), ray {ray.__version__}, "
      f"CUDA available: {torch.cuda.is_available()}")
PY
if [ "$DRY" != 1 ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || { echo "gpu_check: no nvidia-smi"; exit 1; }
  $PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu_check: torch sees no CUDA device")' || exit 1
fi

echo "== 1. PatternExpert throughput (samples/s), CPU and CUDA"
ROWS=$([ "$DRY" = 1 ] && echo 2048 || echo 65536)
THREADS=$([ "$DRY" = 1 ] && echo 1 || echo 1,4)
timeout 300 $PY benchmarks/pattern_throughput.py --rows "$ROWS" --threads "$THREADS" 2>&1 | tee "$OUT/throughput.txt"

echo "== 2. Ray mixture fleet, CNN steps on the GPU"
if [ "$DRY" = 1 ]; then
  ARGS=(--days 120 --folds 2 --cnn-num-gpus 0.5)
else
  ARGS=(--days 365 --folds 3 --cnn-num-gpus 0.25)
fi
SMI_PID=
if [ "$DRY" != 1 ]; then
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$OUT/gpu_memory_mib.txt" &
  SMI_PID=$!
fi
T0=$(date +%s.%N)
timeout 420 $PY -m fleet.cli train --backend ray --experts trend,pattern,stress,sde --strategy hierarchical \
  --num-cpus 1 "${ARGS[@]}" --out "$OUT/run" > "$OUT/train.log" 2>&1
RC=$?
T1=$(date +%s.%N)
[ -n "$SMI_PID" ] && kill "$SMI_PID" 2>/dev/null
tail -n 25 "$OUT/train.log"
echo "fleet exit code $RC, wall $($PY -c "print(f'{$T1 - $T0:.1f}')") s"
if [ -f "$OUT/run/manifest.json" ]; then
  $PY benchmarks/task_overlap.py "$OUT/run"
  $PY -c "import json; m = json.load(open('$OUT/run/manifest.json')); print('backend:', m['backend'])"
fi

echo "== 3. Peak GPU memory"
if [ -s "$OUT/gpu_memory_mib.txt" ]; then
  $PY -c "
v = [float(x) for x in open('$OUT/gpu_memory_mib.txt').read().split() if x.strip()]
print(f'nvidia-smi during the fleet run: peak {max(v):.0f} MiB used, baseline {v[0]:.0f} MiB, {len(v)} samples')"
else
  echo "no nvidia-smi samples (dry run or no GPU)"
fi
grep -i "peak\|max_memory" "$OUT/throughput.txt" || true
exit $RC
