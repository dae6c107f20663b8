#!/usr/bin/env bash
# GPU check (not part of CI): paper-scale SELECT on one GPU, prints store throughput and
# selection time. Needs torch (CUDA build), transformers, tokenizers, pandas, tqdm in
# $PYTHON; the project itself is used from this checkout. Stops itself after 8 minutes.
#   bash benchmarks/gpu_check.sh            # 10K texts, K = 1000, k = 4096
#   bash benchmarks/gpu_check.sh --n 2000   # any flag of benchmarks/gpu_check.py
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
export PYTHONPATH="workflow${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
exec timeout 480 "$PYTHON" benchmarks/gpu_check.py "$@"
