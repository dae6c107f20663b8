#!/usr/bin/env bash
# A real, single-node SLURM cluster on this machine, from Debian's packages.
#
#   scripts/slurm_single_node.sh [start]   install if needed, configure, start, wait until idle
#   scripts/slurm_single_node.sh stop      shut slurmctld, slurmd and munged down
#   scripts/slurm_single_node.sh status    print what runs and what sinfo says
#
# It is the proof that the `slurm` workflow profile works against a real slurmctld/slurmd
# (scripts/run_smoke_on_slurm.sh, tests/test_slurm.py); it is not a way to run a production
# cluster. Needs root (it installs packages, writes /etc/slurm/slurm.conf and starts daemons).
# Running `start` twice is fine: what already runs is left running.
#
# Environment:
#   W2D_SLURM_PARTITION   name of the one (default) partition          [main]
#   W2D_SLURM_WAIT_S      seconds to wait for the node to become idle   [90]
#   W2D_SLURM_FORCE_CONF  1: overwrite a slurm.conf this script did not write  [0]
set -euo pipefail

PARTITION="${W2D_SLURM_PARTITION:-main}"
WAIT_S="${W2D_SLURM_WAIT_S:-90}"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
MARKER="# written by weights2data scripts/slurm_single_node.sh"
LOG_DIR=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
PACKAGES=(munge slurmctld slurmd slurm-client)

say() { echo "[slurm_single_node] $*"; }
die() {
    echo "[slurm_single_node] ERROR: $*" >&2
    exit 1
}

# pid from a pid file, printed only if that process is alive
live_pid() {
    local file="$1" pid
    [[ -r "$file" ]] || return 1
    pid="$(tr -dc '0-9' <"$file")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

short_host() { hostname -s 2>/dev/null || hostname; }

require_root() {
    [[ "$(id -u)" -eq 0 ]] || die "must run as root (installs packages, starts daemons)"
}

install_packages() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sinfo >/dev/null || missing+=(slurm-client)
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null ||
        die "missing ${missing[*]} and no apt-get to install them (Debian/Ubuntu only)"
    say "installing ${PACKAGES[*]} (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    # The package lists may be stale or absent on a fresh machine: update once on failure.
    if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >/tmp/slurm_apt.log 2>&1; then
        say "apt-get install failed; running apt-get update once and retrying"
        apt-get update -q >>/tmp/slurm_apt.log 2>&1 || {
            tail -20 /tmp/slurm_apt.log >&2
            die "apt-get update failed (see /tmp/slurm_apt.log)"
        }
        apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>/tmp/slurm_apt.log 2>&1 || {
            tail -20 /tmp/slurm_apt.log >&2
            die "apt-get install ${PACKAGES[*]} failed (see /tmp/slurm_apt.log)"
        }
    fi
    for bin in munged slurmctld slurmd sinfo sbatch squeue scontrol; do
        command -v "$bin" >/dev/null || die "$bin still missing after installing ${PACKAGES[*]}"
    done
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        say "munged already running"
        return 0
    fi
    id munge >/dev/null 2>&1 || die "user munge does not exist (the munge package creates it)"
    if [[ ! -s /etc/munge/munge.key ]]; then
        say "creating /etc/munge/munge.key"
        install -d -o munge -g munge -m 0700 /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    # A stale socket or pid file from a killed munged makes the new one refuse to start.
    if ! live_pid "$MUNGE_PID" >/dev/null; then
        rm -f "$MUNGE_PID" /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    fi
    say "starting munged as user munge"
    runuser -u munge -- /usr/sbin/munged </dev/null >>/var/log/munge/start.log 2>&1 ||
        die "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 1 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    die "munged started but munge -n | unmunge fails (see /var/log/munge/munged.log)"
}

write_conf() {
    local host cpus avail_mb real_mb tmp
    host="$(short_host)"
    cpus="$(nproc)"
    avail_mb=$(($(awk '/^MemAvailable:/ {print $2}' /proc/meminfo) / 1024))
    # a bit under what is free now, so slurmd never finds less than slurm.conf promises
    real_mb=$((avail_mb * 85 / 100))
    ((real_mb >= 1000)) || die "only ${avail_mb} MB of memory available; need at least ~1.2 GB"
    if [[ -e "$CONF" ]] && ! grep -qF "$MARKER" "$CONF" && [[ "${W2D_SLURM_FORCE_CONF:-0}" != 1 ]]; then
        die "$CONF exists and was not written by this script; refusing to overwrite it" \
            "(set W2D_SLURM_FORCE_CONF=1 to replace it)"
    fi
    install -d -m 0755 "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
    tmp="$(mktemp)"
    cat >"$tmp" <<EOF
$MARKER
# One node (this host), one default partition, no accounting database, no cgroups.
ClusterName=w2d
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# keep finished jobs visible to squeue for 5 minutes (the executor polls squeue, not sacct)
MinJobAge=300
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${real_mb} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
    if [[ -e "$CONF" ]] && diff -q <(grep -v '^NodeName=' "$CONF") <(grep -v '^NodeName=' "$tmp") >/dev/null; then
        # Same cluster; only the free-memory estimate may differ. Keep the running config.
        rm -f "$tmp"
        say "$CONF up to date"
        CONF_CHANGED=0
        return 0
    fi
    install -m 0644 "$tmp" "$CONF"
    rm -f "$tmp"
    say "wrote $CONF (node ${host}: CPUs=${cpus} RealMemory=${real_mb} MB, partition ${PARTITION})"
    CONF_CHANGED=1
}

node_state() {
    sinfo -h -N -n "$(short_host)" -o '%T' 2>/dev/null | head -1
}

start_daemons() {
    local changed="$1"
    if [[ "$changed" == 1 ]] && { live_pid "$CTLD_PID" >/dev/null || live_pid "$SLURMD_PID" >/dev/null; }; then
        say "slurm.conf changed: restarting the daemons"
        stop_slurm
    fi
    if live_pid "$CTLD_PID" >/dev/null; then
        say "slurmctld already running"
    else
        # -c: a throwaway cluster starts empty; jobs saved by an earlier run (whose
        # snakemake is gone) would otherwise be recovered and hold the node
        say "starting slurmctld (clearing saved job state)"
        slurmctld -c </dev/null >>"$LOG_DIR/slurmctld.start.log" 2>&1 || {
            tail -20 "$LOG_DIR/slurmctld.log" >&2 || true
            die "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
        }
    fi
    if live_pid "$SLURMD_PID" >/dev/null; then
        say "slurmd already running"
    else
        say "starting slurmd"
        slurmd </dev/null >>"$LOG_DIR/slurmd.start.log" 2>&1 || {
            tail -20 "$LOG_DIR/slurmd.log" >&2 || true
            die "slurmd did not start (see $LOG_DIR/slurmd.log)"
        }
    fi
}

wait_idle() {
    local state="" deadline=$((SECONDS + WAIT_S)) resumed=0
    while ((SECONDS < deadline)); do
        state="$(node_state || true)"
        case "$state" in
        idle | mixed | allocated | completing)
            say "node $(short_host) is $state"
            sinfo
            return 0
            ;;
        down* | drain*)
            # left down by an earlier stop; slurmd is back, so bring the node back
            if ((resumed == 0)); then
                scontrol update nodename="$(short_host)" state=resume >/dev/null 2>&1 || true
                resumed=1
            fi
            ;;
        esac
        sleep 1
    done
    sinfo -N -l >&2 || true
    echo "--- slurmctld.log" >&2
    tail -15 "$LOG_DIR/slurmctld.log" >&2 || true
    echo "--- slurmd.log" >&2
    tail -15 "$LOG_DIR/slurmd.log" >&2 || true
    die "node $(short_host) not idle after ${WAIT_S}s (state: '${state:-unknown}')"
}

wait_gone() {
    local pid="$1"
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# Jobs outlive slurmd (slurmstepd runs them), so cancel them while slurmctld still answers.
cancel_jobs() {
    local ids
    ids="$(squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING -o '%i' 2>/dev/null | tr '\n' ' ')"
    [[ -n "${ids// /}" ]] || return 0
    say "cancelling jobs: $ids"
    # shellcheck disable=SC2086
    scancel $ids 2>/dev/null || true
    for _ in $(seq 1 30); do
        [[ -z "$(squeue -h -t RUNNING,COMPLETING -o '%i' 2>/dev/null)" ]] && return 0
        sleep 1
    done
    say "some jobs still running after 30 s; stopping anyway"
}

stop_slurm() {
    local pid
    if live_pid "$CTLD_PID" >/dev/null; then
        cancel_jobs
    fi
    for file in "$SLURMD_PID" "$CTLD_PID"; do
        if pid="$(live_pid "$file")"; then
            say "stopping $(basename "$file" .pid) (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            wait_gone "$pid"
        fi
    done
}

stop_all() {
    local pid
    stop_slurm
    if pid="$(live_pid "$MUNGE_PID")"; then
        say "stopping munged (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid"
    fi
    say "stopped"
}

status() {
    local name pid
    for name in munged:"$MUNGE_PID" slurmctld:"$CTLD_PID" slurmd:"$SLURMD_PID"; do
        if pid="$(live_pid "${name#*:}")"; then
            echo "${name%%:*}: running (pid $pid)"
        else
            echo "${name%%:*}: not running"
        fi
    done
    command -v sinfo >/dev/null && { sinfo 2>&1 || true; }
}

case "${1:-start}" in
start)
    require_root
    install_packages
    start_munge
    CONF_CHANGED=0
    write_conf
    start_daemons "$CONF_CHANGED"
    wait_idle
    ;;
stop)
    require_root
    stop_all
    ;;
status)
    status
    ;;
*)
    die "usage: $0 [start|stop|status]"
    ;;
esac
