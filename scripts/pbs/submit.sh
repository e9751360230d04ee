#!/usr/bin/env bash
# Submit a run to PBS Pro or Torque: one job for the name server and the master (master.pbs) and
# an array of N worker jobs (workers.pbs). They meet through the credentials file in SHARED_DIR.
#
#   scripts/pbs/submit.sh N WORKER_CLASS MASTER_SCRIPT [MASTER ARGS...]
#   scripts/pbs/submit.sh 32 ultrarun.benchmarks:BraninWorker workers/example_master.py --min-workers 8
#
# The run's settings go to SHARED_DIR/run.env, which the jobs read (PBS passes no arguments to a
# job script). Settings from the environment: RUN_ID (default exp-DATE), SHARED_DIR (default
# ./ultrarun-RUN_ID, on a file system every node sees), HOST (the master node's address the
# workers reach; default its first address), IDLE_TIMEOUT, WORKERS_PER_TASK, and ARRAY_FLAG:
# -J for PBS Pro (default), -t for Torque.
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

master=$(qsub -N "ultrarun-master" -j oe -o "$shared/master.log" -v "RUN_ENV=$shared/run.env" \
  "$here/master.pbs")
workers=$(qsub -N "ultrarun-workers" -j oe -o "$shared/" "${ARRAY_FLAG:--J}" "1-$n" \
  -v "RUN_ENV=$shared/run.env" "$here/workers.pbs")
echo "run $run_id: master job $master, worker array $workers ($n); logs and results in $shared"
