#!/usr/bin/env bash
# Submit a run to IBM Spectrum LSF: one job for the name server and the master (master.lsf) and an
# array of N worker jobs (workers.lsf). They meet through the credentials file in SHARED_DIR.
#
#   scripts/lsf/submit.sh N WORKER_CLASS MASTER_SCRIPT [MASTER ARGS...]
#   scripts/lsf/submit.sh 32 ultrarun.benchmarks:BraninWorker workers/example_master.py --min-workers 8
#
# The run's settings go to SHARED_DIR/run.env, which the jobs read. Settings from the environment:
# RUN_ID (default exp-DATE), SHARED_DIR (default ./ultrarun-RUN_ID, on a file system every node
# sees), HOST (the master node's address the workers reach; default its first address),
# IDLE_TIMEOUT, WORKERS_PER_TASK.
set -euo pipefail
usage="usage: submit.sh N WORKER_CLASS MASTER_SCRIPT [MASTER ARGS...]"
n=${1:?$usage}; worker_class=${2:?$usage}; master_script=${3:?$usage}; shift 3
here=$(cd "$(dirname "$0")" && pwd)
run_id=${RUN_ID:-exp-$(date +%Y%m%d-%H%M%S)}
shared=$(mkdir -p "${SHARED_DIR:-$PWD/ultrarun-$run_id}" && cd "${SHARED_DIR:-$PWD/ultrarun-$run_id}" && pwd)
master_script=$(cd "$(dirname "$master_script")" && pwd)/$(basename "$master_script")

{
  printf 'RUN_ID=%q\nSHARED_DIR=%q\nWORKER_CLASS=%q\nMASTER_SCRIPT=%q\n' \
    "$run_id" "$shared" "$worker_class" "$master_script"
  printf 'HOST=%q\nIDLE_TIMEOUT=%q\nWORKERS_PER_TASK=%q\n' \
    "${HOST:-}" "${IDLE_TIMEOUT:-600}" "${WORKERS_PER_TASK:-1}"
  printf 'MASTER_ARGS=('; printf '%q ' "$@"; printf ')\n'
} > "$shared/run.env"
export RUN_ENV=$shared/run.env  # bsub hands the submitting environment to the jobs

master=$(bsub -J "ultrarun-master-$run_id" -o "$shared/master-%J.log" < "$here/master.lsf")
workers=$(bsub -J "ultrarun-workers-$run_id[1-$n]" -o "$shared/worker-%J_%I.log" < "$here/workers.lsf")
echo "run $run_id: $master / $workers ($n workers); logs and results in $shared"
