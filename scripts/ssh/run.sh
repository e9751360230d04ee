#!/usr/bin/env bash
# A whole run over plain ssh: the name server and your master script on this machine, K workers
# on every host of HOSTS_FILE (started by start_workers.sh beside this script). The hosts share
# SHARED_DIR with this machine (NFS, a shared home) and have the same Python environment.
#
#   scripts/ssh/run.sh HOSTS_FILE WORKER_CLASS MASTER_SCRIPT [K [MASTER ARGS...]]
#   scripts/ssh/run.sh hosts.txt ultrarun.benchmarks:BraninWorker workers/example_master.py 4
#
# MASTER_SCRIPT is called as `python MASTER_SCRIPT --run-id RUN_ID --shared-directory DIR
# [MASTER ARGS...]`. Settings from the environment: RUN_ID (default ssh-DATE), SHARED_DIR
# (default ./ultrarun-RUN_ID), HOST (this machine's address the hosts reach; default its first
# address, `hostname -I`).
set -euo pipefail
usage="usage: run.sh HOSTS_FILE WORKER_CLASS MASTER_SCRIPT [K [MASTER ARGS...]]"
hosts=${1:?$usage}; worker_class=${2:?$usage}; master_script=${3:?$usage}; k=${4:-1}
shift $(( $# < 4 ? $# : 4 ))
here=$(cd "$(dirname "$0")" && pwd)
run_id=${RUN_ID:-ssh-$(date +%Y%m%d-%H%M%S)}
shared=${SHARED_DIR:-$PWD/ultrarun-$run_id}
mkdir -p "$shared"

ultrarun nameserver --run-id "$run_id" --working-dir "$shared" \
  --host "${HOST:-$(hostname -I | cut -d' ' -f1)}" > "$shared/nameserver.log" 2>&1 &
ns=$!
trap 'kill "$ns" 2>/dev/null || true; wait "$ns" 2>/dev/null || true' EXIT
"$here/start_workers.sh" "$hosts" "$worker_class" "$run_id" "$shared" "$k"
"${PYTHON:-python}" "$master_script" --run-id "$run_id" --shared-directory "$shared" "$@"
