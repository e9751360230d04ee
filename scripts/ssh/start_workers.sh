#!/usr/bin/env bash
# Start ultrarun workers on a list of hosts over plain ssh (hosts share the working directory,
# e.g. over NFS, and have the same Python environment).
#
#   scripts/ssh/start_workers.sh hosts.txt mymodule:MyWorker RUN_ID /shared/dir [K per host]
#
# Each host runs `ultrarun worker ... --n-workers K` in the background with its log in the shared
# directory; the workers leave when the master shuts them down or after 10 idle minutes.
set -euo pipefail
hosts_file=${1:?hosts file}; worker_class=${2:?worker class}; run_id=${3:?run id}
shared=${4:?shared dir}; per_host=${5:-1}
while read -r host; do
  [ -z "$host" ] && continue
  case "$host" in \#*) continue;; esac
  ssh -n -o BatchMode=yes "$host" \
    "cd '$PWD' && nohup ultrarun worker '$worker_class' --run-id '$run_id' --working-dir '$shared' \
      --n-workers $per_host --timeout ${IDLE_TIMEOUT:-600} > '$shared/worker-$host.log' 2>&1 &" &
done < "$hosts_file"
wait
echo "started workers on $(grep -cv '^\s*\(#\|$\)' "$hosts_file") host(s); see $shared/worker-*.log"
