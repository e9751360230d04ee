#!/usr/bin/env bash
# Submit a run to SLURM: one job for the name server and the master (master.sbatch) and an array
# of N worker jobs (workers.sbatch). They meet through the credentials file in SHARED_DIR, so they
# may start in any order; the workers leave when the master shuts them down.
#
#   scripts/slurm/submit.sh N WORKER_CLASS MASTER_SCRIPT [MASTER ARGS...]
#   scripts/slurm/submit.sh 32 ultrarun.benchmarks:BraninWorker workers/example_master.py --min-workers 8
#
# MASTER_SCRIPT is called as `python MASTER_SCRIPT --run-id RUN_ID --shared-directory DIR
# [MASTER ARGS...]`. Settings from the environment: RUN_ID (default exp-DATE), SHARED_DIR (default
# ./ultrarun-RUN_ID, on a file system every node sees), HOST (the master node's address the
# workers reach; default its first address, `hostname -I`), IDLE_TIMEOUT, WORKERS_PER_TASK.
set -euo pipefail
usage="usage: submit.sh N WORKER_CLASS MASTER_SCRIPT [MASTER ARGS...]"
n=${1:?$usage}; worker_class=${2:?$usage}; master_script=${3:?$usage}; shift 3
here=$(cd "$(dirname "$0")" && pwd)
export RUN_ID=${RUN_ID:-exp-$(date +%Y%m%d-%H%M%S)}
export SHARED_DIR=${SHARED_DIR:-$PWD/ultrarun-$RUN_ID}
mkdir -p "$SHARED_DIR"

master=$(sbatch --parsable --export=ALL --job-name="ultrarun-$RUN_ID" \
  --output="$SHARED_DIR/master-%j.log" "$here/master.sbatch" "$master_script" "$@")
workers=$(sbatch --parsable --export=ALL --job-name="ultrarun-$RUN_ID-workers" --array="1-$n" \
  --output="$SHARED_DIR/worker-%A_%a.log" "$here/workers.sbatch" "$worker_class" "$RUN_ID" "$SHARED_DIR")
echo "run $RUN_ID: master job $master, worker array $workers ($n); logs and results in $SHARED_DIR"
