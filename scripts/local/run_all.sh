#!/usr/bin/env bash
# Everything of a run on one node: a name server, K worker processes and your master script,
# stopped together when the master ends (or on Ctrl-C).
#
#   scripts/local/run_all.sh WORKER_CLASS MASTER_SCRIPT [K [MASTER ARGS...]]
#   scripts/local/run_all.sh ultrarun.benchmarks:BraninWorker workers/example_master.py 4 --min-workers 4
#
# MASTER_SCRIPT is called as `python MASTER_SCRIPT --run-id RUN_ID --shared-directory DIR
# [MASTER ARGS...]` (workers/example_master.py is one). Settings from the environment: RUN_ID
# (default local-DATE-PID), SHARED_DIR (default ./ultrarun-RUN_ID: credentials, logs, results),
# HOST (default 127.0.0.1: this node only), IDLE_TIMEOUT (600 s), PYTHON (python).
set -euo pipefail
usage="usage: run_all.sh WORKER_CLASS MASTER_SCRIPT [K [MASTER ARGS...]]"
worker_class=${1:?$usage}; master_script=${2:?$usage}; k=${3:-4}
shift $(( $# < 3 ? $# : 3 ))
run_id=${RUN_ID:-local-$(date +%Y%m%d-%H%M%S)-$$}
shared=${SHARED_DIR:-$PWD/ultrarun-$run_id}
mkdir -p "$shared"

ultrarun nameserver --run-id "$run_id" --working-dir "$shared" --host "${HOST:-127.0.0.1}" \
  > "$shared/nameserver.log" 2>&1 &
ns=$!
ultrarun worker "$worker_class" --run-id "$run_id" --working-dir "$shared" --n-workers "$k" \
  --timeout "${IDLE_TIMEOUT:-600}" > "$shared/workers.log" 2>&1 &
workers=$!
cleanup() { kill "$workers" "$ns" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "run $run_id: name server, $k workers; logs and results in $shared"
"${PYTHON:-python}" "$master_script" --run-id "$run_id" --shared-directory "$shared" "$@"
wait "$workers" || true  # the master shut them down
