"""``hpbandster.core.result``: ``Result``, ``Run``, the JSON logger and reading logs back.

These are ultrarun's own (:mod:`ultrarun.results`), which keep HpBandSter's names, formats and
meanings. ``Result`` here also unpickles a Result that HpBandSter itself pickled.
"""
from __future__ import annotations

from typing import Any

from ultrarun import results as _results
from ultrarun.results import (Run, extract_HB_learning_curves, extract_HBS_learning_curves,
                              logged_results_to_HBS_result)
from ultrarun.results import _analysis as _native


class json_result_logger(_results.json_result_logger):  # noqa: N801 (HpBandSter's name)
    """HpBandSter's logger: existing files are refused (or, ``overwrite=True``, emptied) when it
    is made, as in HpBandSter, whatever the master says later."""

    def __init__(self, directory: Any, overwrite: bool = False) -> None:
        super().__init__(directory, overwrite=overwrite)
        self.open()


class Result(_native.Result):
    """ultrarun's Result; a pickle written by HpBandSter loads into it."""

    def __setstate__(self, state: dict) -> None:
        data = state.get("data", {})
        if all(isinstance(d, _native.ConfigRecord) for d in data.values()):  # pickled by ultrarun
            self.__dict__.update(state)
            return
        # HpBandSter's: data holds its Datum objects, time stamps already relative
        self.data = {k: _native.copy_record(d) for k, d in data.items()}
        self.HB_config = _native.complete_HB_config(state.get("HB_config") or {}, self.data)


__all__ = ["Result", "Run", "json_result_logger", "logged_results_to_HBS_result",
           "extract_HBS_learning_curves", "extract_HB_learning_curves"]
