"""A dispatcher in a process of its own, so a test can stop it (SIGSTOP) like a stalled node.

    python dispatcher_process.py RUN_ID WORKING_DIR OUT N_JOBS SLEEP N_WORKERS

It reads the run's credentials file, waits for N_WORKERS workers, prints "ready", submits
N_JOBS jobs that sleep SLEEP seconds, writes every result as a JSON line to OUT and exits when
all are in (or after 120 s).
"""
import json
import sys
import threading
import time

from ultrarun.dispatcher import Dispatcher
from ultrarun.security import Credentials

run_id, directory, out, n_jobs, sleep, n_workers = sys.argv[1:7]
n_jobs, sleep, n_workers = int(n_jobs), float(sleep), int(n_workers)
creds = Credentials.read(directory, run_id)
done = threading.Event()
count = [0]
lock = threading.Lock()
fh = open(out, "a")


def on_result(job):
    info = (job.result or {}).get("info", {})
    with lock:
        fh.write(json.dumps({"id": job.id, "status": job.status.value, "attempt": job.attempt,
                             "pid": info.get("pid")}) + "\n")
        fh.flush()
        count[0] += 1
        if count[0] >= n_jobs:
            done.set()


d = Dispatcher(on_result, run_id=run_id, nameserver=creds.host, nameserver_port=creds.port,
               secret=creds.secret, ping_interval=0.5, timeout=2.0)
d.start()
deadline = time.monotonic() + 60
while d.number_of_workers() < n_workers and time.monotonic() < deadline:
    threading.Event().wait(0.05)
print("ready", flush=True)
for i in range(n_jobs):
    d.submit_job(i, config={"x": i, "sleep": sleep}, budget=1.0)
done.wait(120)
d.shutdown()
