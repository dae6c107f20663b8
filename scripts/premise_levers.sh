#!/usr/bin/env bash
# cos(S_true, Δ) of existing experts under other gradient-store settings, without retraining:
# one `weights2data regime` call per (task, seed, setting). Run after the toy profile's run
# (`snakemake --configfile config/toy.yaml --directory build/toy --cores 2`; it reads that run's
# experts, whose every weight trained); writes build/levers/<task>/<setting>/<seed>.json and prints a
# summary table. Settings: C = 1 (the default), C = 4 and C = 8 interpolated checkpoints, and
# gradients under the final model.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
BASE=${BASE:-gpt2_small}
CONFIG=${CONFIG:-config/toy.yaml}
RUN=${RUN:-build/toy}
TASKS=${TASKS:-"bbc_news wiki_topics rotten_tomatoes"}
SEEDS=${SEEDS:-"0 1 2"}
SETTINGS=${SETTINGS:-"C1 C4 C8 final"}
OUT=build/levers
spec_of() {
    case $1 in
        C*) echo "{\"model\": \"base\", \"projection\": \"auto\", \"k\": 1024, \"checkpoints\": ${1#C}}" ;;
        final) echo '{"model": "final", "projection": "auto", "k": 1024, "checkpoints": 1}' ;;
    esac
}
for task in $TASKS; do
    slices=$("$BIN/python" - "$task" "$CONFIG" <<'PY'
import json, sys, yaml
config = yaml.safe_load(open(sys.argv[2]))
task = config["tasks"][sys.argv[1]]
finetune = dict(config["finetune"], **(task.get("finetune") or {}))
print(json.dumps(task["dataset"]))
print(json.dumps({k: v for k, v in task.items() if k != "finetune"}))
print(json.dumps(finetune))
PY
)
    dataset=$(sed -n 1p <<<"$slices" | tr -d '"')
    task_json=$(sed -n 2p <<<"$slices")
    finetune_json=$(sed -n 3p <<<"$slices")
    for setting in $SETTINGS; do
        for seed in $SEEDS; do
            out="$OUT/$task/$setting/$seed"
            [ -f "$out.json" ] && continue
            mkdir -p "$(dirname "$out")"
            "$BIN/weights2data" regime --base "$RUN/data/models/base/$BASE" \
                --final "$RUN/data/models/expert/$BASE/$task/$seed" \
                --dataset "$RUN/data/datasets/$dataset.parquet" --task "$task_json" \
                --finetune "$finetune_json" --spec "$(spec_of "$setting")" --seed "$seed" \
                --keys "{\"task\": \"$task\", \"setting\": \"$setting\"}" \
                --out "$out.json" --sum-out "$out.npy" 2>/dev/null
        done
    done
done
"$BIN/python" - "$OUT" <<'PY'
import json, pathlib, sys
from weights2data.stats import confidence_interval
root = pathlib.Path(sys.argv[1])
print("| task | setting | cos(S_true, Δ) per seed | mean ± 95% CI |")
print("|---|---|---|---|")
for task in sorted(p.name for p in root.iterdir()):
    for setting in sorted(p.name for p in (root / task).iterdir()):
        values = [json.loads(f.read_text())["cos_truth_delta"]
                  for f in sorted((root / task / setting).glob("*.json"))]
        ci = confidence_interval(values)
        cells = ", ".join(f"{v:.3f}" for v in values)
        print(f"| {task} | {setting} | {cells} | {ci['mean']:.3f} ± {ci['ci']:.3f} |")
PY
