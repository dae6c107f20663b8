#!/usr/bin/env bash
# The smoke config, end to end, with every job submitted through SLURM (the `slurm` profile).
#
#   scripts/slurm_single_node.sh          # or any SLURM where this machine can sbatch
#   scripts/run_smoke_on_slurm.sh [TARGET...]
#
# Copies the project (tracked and untracked-not-ignored files, without data/, figures/,
# logs/) into a new temporary folder, makes config/smoke.yaml its config.yaml, runs
# `snakemake --workflow-profile workflow/profiles/slurm [TARGET...]` there and checks that
# figures/experts.md came out and that each job left a SLURM log (i.e. really ran as a
# SLURM job). Exit status 0 only if all of that holds.
# TARGETs default to the whole DAG; they must include figures/experts.md (the test runs
# just that target, which keeps it short: dataset, pretrain_base, finetune_expert, report).
#
# Environment:
#   VENV                  the project's venv                                   [.venv]
#   W2D_SLURM_SMOKE_DIR   run in this (new or empty) folder and keep it; default: a temp
#                         folder, removed after a successful run, kept after a failure
#   W2D_SLURM_GPUS        GPUs per GPU rule (see the profile); default here 0, since the
#                         single-node SLURM has no GPU
#   W2D_SLURM_STATUS_COMMAND  how the executor polls job states: squeue (works without
#                         accounting, the default here) or sacct
#   W2D_SLURM_PARTITION, W2D_SLURM_ACCOUNT  passed on to the profile
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
BIN="$VENV/bin"
STATUS_COMMAND="${W2D_SLURM_STATUS_COMMAND:-squeue}"
export W2D_SLURM_GPUS="${W2D_SLURM_GPUS:-0}"

say() { echo "[run_smoke_on_slurm] $*"; }
die() {
    echo "[run_smoke_on_slurm] ERROR: $*" >&2
    exit 1
}

# --- preconditions
[[ -x "$BIN/snakemake" ]] || die "no snakemake in $BIN (run \`make\` or set VENV)"
"$BIN/python" -c "import snakemake_executor_plugin_slurm" 2>/dev/null ||
    die "snakemake-executor-plugin-slurm is not installed in $VENV (pip install -r envs/requirements.txt)"
for tool in sbatch squeue sinfo; do
    command -v "$tool" >/dev/null || die "$tool not found: no SLURM client here (scripts/slurm_single_node.sh starts one)"
done
sinfo -h >/dev/null 2>&1 || die "sinfo cannot reach slurmctld (start it: scripts/slurm_single_node.sh)"
[[ -n "$(sinfo -h -t idle,mixed,allocated -o '%n' 2>/dev/null)" ]] ||
    die "no SLURM node is up:"$'\n'"$(sinfo -N -l 2>&1)"

# --- the copy
if [[ -n "${W2D_SLURM_SMOKE_DIR:-}" ]]; then
    WORK="$W2D_SLURM_SMOKE_DIR"
    mkdir -p "$WORK"
    [[ -z "$(ls -A "$WORK")" ]] || die "$WORK is not empty"
    KEEP=1
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/w2d-slurm-smoke.XXXXXX")"
    KEEP=0
fi
say "project copy in $WORK"
copied=0
while IFS= read -r -d '' rel; do
    case "$rel" in data/* | figures/* | logs/*) continue ;; esac
    [[ -f "$ROOT/$rel" ]] || continue # deleted but still tracked
    mkdir -p "$WORK/$(dirname "$rel")"
    cp -p "$ROOT/$rel" "$WORK/$rel"
    copied=$((copied + 1))
done < <(git -C "$ROOT" ls-files -z -co --exclude-standard)
((copied > 0)) || die "git ls-files listed no files in $ROOT"
cp -p "$ROOT/config/smoke.yaml" "$WORK/config.yaml"

# --- the run
export PATH="$BIN:$PATH" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
args=(
    --workflow-profile workflow/profiles/slurm
    --slurm-status-command "$STATUS_COMMAND"
    # a smoke job lasts seconds: look at the queue early (the plugin's default waits 40 s)
    --slurm-init-seconds-before-status-checks 5
    # keep every job's SLURM log: it is the evidence checked below
    --slurm-keep-successful-logs
    # the copy is on a local disk: no need to wait for a shared file system
    --latency-wait 5
)
say "snakemake ${args[*]} $*"
start=$SECONDS
cd "$WORK"
# no subshell: a signal to this script's process group reaches snakemake, which then
# scancels its jobs
if ! snakemake "${args[@]}" "$@" >"$WORK/snakemake-slurm.log" 2>&1; then
    tail -60 "$WORK/snakemake-slurm.log" >&2
    die "snakemake failed after $((SECONDS - start)) s (log: $WORK/snakemake-slurm.log; copy kept)"
fi
elapsed=$((SECONDS - start))

# --- the checks
fail() {
    tail -30 "$WORK/snakemake-slurm.log" >&2
    die "$* (copy kept in $WORK)"
}
[[ -s "$WORK/figures/experts.md" ]] || fail "figures/experts.md was not made"
# how many jobs the plugin submitted: one line per sbatch in the log
submitted="$(grep -c "Job .* has been submitted with SLURM jobid" "$WORK/snakemake-slurm.log" || true)"
((submitted > 0)) || fail "no job was submitted to SLURM"
logdir="$WORK/.snakemake/slurm_logs"
[[ -d "$logdir" ]] || fail "no SLURM log folder $logdir"
nlogs="$(find "$logdir" -type f -name '*.log' | wc -l)"
((nlogs == submitted)) || fail "$submitted jobs submitted but $nlogs SLURM logs in $logdir"
local_jobs="$(grep -c "^localrule " "$WORK/snakemake-slurm.log" || true)"
say "OK in ${elapsed} s: ${submitted} jobs submitted with sbatch, ${nlogs} SLURM logs" \
    "(${local_jobs} local rules); figures/experts.md:"
sed 's/^/    /' "$WORK/figures/experts.md"

if ((KEEP == 0)); then
    cd /
    rm -rf "$WORK"
fi
