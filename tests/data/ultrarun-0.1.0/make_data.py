"""Writes ``result.pkl``: a Result pickled by ultrarun 0.1.0 before ``ultrarun/results.py`` was
split into a package (its per-configuration records were ``ultrarun.results.Datum`` then).
Kept so that pickles users wrote with that version keep loading; run it only with that version:

    git show 8823370:ultrarun/results.py  # the code that wrote it
    python tests/data/ultrarun-0.1.0/make_data.py
"""
import os
import pickle

from ultrarun.job import JobStatus
from ultrarun.results import Result, Run

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1000.0
runs = [Run((0, 0, 0), 1.0, 0.5, {"n": 0}, {"submitted": T0, "started": T0 + 1, "finished": T0 + 2}),
        Run((0, 0, 1), 1.0, None, None, {"submitted": T0, "started": T0 + 1, "finished": T0 + 3},
            "Traceback: boom", JobStatus.TIMEOUT),
        Run((0, 0, 0), 3.0, 0.25, {"n": 1}, {"submitted": T0 + 3, "started": T0 + 4, "finished": T0 + 6})]
result = Result.from_runs(runs, {(0, 0, 0): ({"x": 0.1}, {"model_based_pick": False}),
                                 (0, 0, 1): {"x": 0.9}})
with open(os.path.join(HERE, "result.pkl"), "wb") as fh:
    pickle.dump(result, fh, protocol=4)
