"""ultrarun: hyperparameter optimisation on many machines (Pyro4 workers, multi-fidelity masters).

The public API is what ``__all__`` lists; everything else may change.
"""
from __future__ import annotations

__version__ = "0.1.0"

import importlib
from typing import Any

from .dispatcher import Dispatcher, dispatcher_for
from .errors import (AuthenticationError, CommunicationError, CommunicationTimeout,
                     ConfigurationError, FirstRunCrashedException, JobError, NameServerError,
                     RecordingError, ResultError, TargetAlgorithmAbortException, UltrarunError,
                     UnsafeFileError)
from .job import Job, JobStatus, StatusType
from .nameserver import NameServer, nic_name_to_host
from .worker import Worker

# The optimisation side imports ConfigSpace (over a second): loaded on first use, so worker
# processes, which need only the runtime above, start fast.
_LAZY = {
    "Master": "master", "BOHB": "frontends", "TPE": "frontends", "DEHB": "frontends",
    "HyperBand": "frontends",
    "RandomSearch": "frontends", "minimize": "frontends", "LocalCluster": "local",
    "BaseIteration": "iterations", "BaseIterGenerator": "iterations",
    "SuccessiveHalving": "iterations", "SuccessiveHalvingIterGenerator": "iterations",
    "HyperBandIterGenerator": "iterations", "CustomIterGenerator": "iterations",
    "ASHA": "iterations", "ASHAIterGenerator": "iterations",
    "Result": "results", "Run": "results", "json_result_logger": "results",
    "logged_results_to_HBS_result": "results", "extract_HBS_learning_curves": "results",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ultrarun' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    # runtime
    "NameServer", "nic_name_to_host", "Worker", "Dispatcher", "dispatcher_for",
    "Job", "JobStatus", "StatusType",
    "LocalCluster",
    # optimisation
    "Master", "BOHB", "TPE", "DEHB", "HyperBand", "RandomSearch", "minimize",
    "BaseIteration", "BaseIterGenerator", "SuccessiveHalving", "SuccessiveHalvingIterGenerator",
    "HyperBandIterGenerator", "CustomIterGenerator", "ASHA", "ASHAIterGenerator",
    # results
    "Result", "Run", "json_result_logger", "logged_results_to_HBS_result",
    "extract_HBS_learning_curves",
    # errors
    "UltrarunError", "ConfigurationError", "UnsafeFileError", "CommunicationError",
    "CommunicationTimeout", "AuthenticationError", "NameServerError", "RecordingError",
    "JobError", "ResultError",
    "FirstRunCrashedException", "TargetAlgorithmAbortException",
]
