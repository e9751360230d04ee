"""Runners: submit trials, collect results, on the backend of your choice.

Runners have the shape of SMAC3's, evaluators the shape of DeepHyper's, and every backend the
job semantics of the Pyro dispatcher. See docs/runners.md.
"""
from __future__ import annotations

from ._base import (AbstractParallelRunner, AbstractRunner, AbstractSerialRunner, TrialInfo,
                    TrialValue, WorkerLost)
from ._dask import DaskParallelRunner
from ._evaluator import (Callback, CSVLoggerCallback, Evaluator, TqdmCallback, evaluator_names,
                         register_evaluator)
from ._executor import RunnerExecutor
from ._mpi import MPICommEvaluator, MPICommRunner
from ._process import ProcessRunner
from ._pyro import PyroRunner, RunnerWorker
from ._registry import make_runner, register_runner, runner_names
from ._script import ScriptRunner, TargetFunctionScriptRunner
from ._serial import SerialRunner
from ._target_function import TargetFunctionRunner
from ._thread import FuturesRunner, ThreadRunner

__all__ = [
    "AbstractRunner", "AbstractSerialRunner", "AbstractParallelRunner", "FuturesRunner",
    "TrialInfo", "TrialValue", "WorkerLost",
    "TargetFunctionRunner", "ScriptRunner", "TargetFunctionScriptRunner",
    "SerialRunner", "ThreadRunner", "ProcessRunner", "DaskParallelRunner", "MPICommRunner",
    "PyroRunner", "RunnerWorker", "RunnerExecutor",
    "make_runner", "register_runner", "runner_names",
    "Evaluator", "MPICommEvaluator", "Callback", "TqdmCallback", "CSVLoggerCallback",
    "register_evaluator", "evaluator_names",
]
