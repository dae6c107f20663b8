#!/usr/bin/env bash
# Remove a Snakemake lock that a killed run left behind (SIGKILL, OOM, lost node), so that the
# next `make pipeline` resumes instead of stopping with "Directory cannot be locked". A lock
# is stale when no snakemake process is running in this folder. Usage:
#   scripts/unlock_if_stale.sh [FOLDER]   (default: the project this script belongs to)
set -euo pipefail
folder=$(cd "${1:-$(dirname "$0")/..}" && pwd)
[ -n "$(ls -A "$folder/.snakemake/locks" 2> /dev/null)" ] || exit 0
for pid in $(pgrep -f snakemake || true); do
    if [ "$pid" != "$$" ] && [ "$(readlink "/proc/$pid/cwd" 2> /dev/null)" = "$folder" ]; then
        exit 0 # a live run holds the lock
    fi
done
echo "unlock_if_stale: removing the lock a killed Snakemake run left in $folder"
cd "$folder" && snakemake --unlock > /dev/null
