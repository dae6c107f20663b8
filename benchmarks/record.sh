#!/usr/bin/env bash
# Run the benchmarks of `make bench` one after another and keep each printout, headed by the
# commit and the CPU, in benchmarks/results/<cpu>/<benchmark>.txt: the committed figures that
# docs/speed.md quotes; each also prints as it runs. Run alone on an idle machine; a benchmark
# that fails stops the script and leaves no file.
#   benchmarks/record.sh [benchmark.py[:args] ...]   (default: every benchmark of `make bench`)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
family=$(lscpu | awk -F: '/^CPU family/ {gsub(/ /, "", $2); print $2}')
model=$(lscpu | awk -F: '/^Model:/ {gsub(/ /, "", $2); print $2}')
vendor=$(lscpu | awk -F: '/^Vendor ID/ {gsub(/ /, "", $2); print $2}')
cpu="${vendor,,}-family${family}-model${model}"
out="benchmarks/results/$cpu"
mkdir -p "$out"
default=(bench_select.py bench_sketch.py bench_metric_startup.py bench_gradients.py
  bench_base_step.py bench_job_overhead.py bench_allocator.py "bench_trunk.py:--trunk-only"
  bench_precondition.py)
for spec in "${@:-${default[@]}}"; do
  script=${spec%%:*}
  args=${spec#"$script"}; args=${args#:}
  name=${script%.py}${args:+_${args//[^a-z0-9]/}}
  tmp="$out/.$name.txt.tmp"
  {
    echo "# benchmarks/$script $args"
    echo "# commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d)"
    echo "# CPU: $(lscpu | awk -F: '/^Model name/ {sub(/^ +/, "", $2); print $2}'), family $family model $model, $(nproc) cores"
    start=$SECONDS
    # shellcheck disable=SC2086
    TQDM_DISABLE=1 PYTHONPATH=workflow "$PY" "benchmarks/$script" $args 2>&1 | sed $'/\r/d'
    echo "# wall $((SECONDS - start)) s"
  } 2>&1 | tee "$tmp"
  mv "$tmp" "$out/$name.txt" && echo "kept in $out/$name.txt"
done
