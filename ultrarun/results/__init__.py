"""Results of a run, with HpBandSter's names, meanings and file formats (docs/results.md)."""
from __future__ import annotations

from ._analysis import (BestConfig, ConfigRecord, Result, Run, extract_HB_learning_curves,
                        extract_HBS_learning_curves, infer_status, status_counts)
from ._logs import (CONFIGS_FILE, CONFIGSPACE_FILE, RESULTS_FILE, STATUSES_FILE,
                    json_result_logger, logged_results_to_HBS_result, read_configspace)

#: ``ConfigRecord``'s name before results.py became this package: Results pickled then name it.
Datum = ConfigRecord

# A pickle names a class by its module: the public one, so that moving code does not break them.
for _cls in (Run, ConfigRecord, Result, BestConfig):
    _cls.__module__ = __name__

__all__ = [
    "Run", "ConfigRecord", "Result", "BestConfig", "json_result_logger", "logged_results_to_HBS_result",
    "extract_HBS_learning_curves", "extract_HB_learning_curves", "infer_status", "status_counts",
    "read_configspace", "CONFIGS_FILE", "CONFIGSPACE_FILE", "RESULTS_FILE", "STATUSES_FILE",
]
