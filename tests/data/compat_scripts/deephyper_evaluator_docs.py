"""DeepHyper's evaluator documentation, written as a script without a ``__main__`` guard:
a profiled run function and an ``async def`` one, ``Evaluator.create`` with a method from the
command line, ``submit`` / ``gather``, a CSVLoggerCallback writing DeepHyper's columns, and
``close()`` with jobs still running, which it returns as CANCELLED."""
import asyncio
import csv
import json
import sys
import time

from deephyper.evaluator import Evaluator, RunningJob, profile
from deephyper.evaluator.callback import CSVLoggerCallback


@profile
def run(job: RunningJob) -> float:
    if job.parameters.get("slow"):
        time.sleep(job.parameters["slow"])
    return -(job.parameters["x"] - 2.0) ** 2


async def run_async(job: RunningJob) -> float:
    await asyncio.sleep(0.01)
    return job["x"] * 2


method = sys.argv[1] if len(sys.argv) > 1 else "thread"
evaluator = Evaluator.create(run, method=method, method_kwargs={
    "num_workers": 2, "callbacks": [CSVLoggerCallback("./results.csv")]})
evaluator.submit([{"x": float(x)} for x in range(4)])
done = evaluator.gather("ALL")
evaluator.submit([{"x": 9.0, "slow": 30}])
cancelled = evaluator.close()

asynchronous = Evaluator.create(run_async, method="thread", method_kwargs={"num_workers": 2})
asynchronous.submit([{"x": 1.0}, {"x": 2.5}])
doubled = sorted(job.output for job in asynchronous.gather("ALL"))
asynchronous.close()

with open("results.csv") as fh:
    rows = list(csv.DictReader(fh))
print(json.dumps({"outputs": sorted(job.output for job in done),
                  "profiled": all("timestamp_end" in job.metadata for job in done),
                  "cancelled": [str(job.status).split(".")[-1] for job in cancelled],
                  "doubled": doubled, "csv_columns": list(rows[0]) if rows else [],
                  "csv_rows": len(rows)}))
