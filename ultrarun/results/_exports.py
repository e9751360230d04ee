"""The exports of a ``Result``: fANOVA data, pandas dataframes, CSV. See docs/results.md."""
from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from .._files import dumps, write_csv
from ..job import TIMESTAMP_KEYS


class ResultExports:
    """The exports ``Result`` inherits, made from ``get_all_runs`` and ``get_id2config_mapping``."""

    def _rows(self, budgets: Iterable[float] | None, loss_fn: Callable[[Any], float],
              failed_loss: float | None = None) -> tuple[list[float], list[tuple]]:
        """The budgets (default: all) and ``(config, budget, loss)`` of each run on them that has
        a loss, or ``failed_loss``; each config is a dict of its own."""
        budgets = list(self.HB_config["budgets"] if budgets is None else budgets)
        id2conf = self.get_id2config_mapping()
        rows = []
        for run in self.get_all_runs():
            if run.budget in budgets and (run.loss is not None or failed_loss is not None):
                loss = failed_loss if run.loss is None else loss_fn(run)
                rows.append((dict(id2conf[run.config_id]["config"]), run.budget, loss))
        return budgets, rows

    def get_fANOVA_data(self, config_space: Any, budgets: Iterable[float] | None = None,
                        loss_fn: Callable[[Any], float] = lambda r: r.loss,
                        failed_loss: float | None = None) -> tuple[np.ndarray, np.ndarray, Any]:
        """``(X, y, config_space)`` for fANOVA, as HpBandSter builds them.

        With several budgets a log-scaled ``budget`` hyperparameter is added; unlike HpBandSter this
        happens on a copy, so the caller's space is left alone. Categorical and ordinal values are
        encoded by their index, inactive hyperparameters are NaN.

        Args:
            config_space (ConfigurationSpace): The run's configuration space.
            budgets (Iterable[float] | None): The budgets whose runs to use (None: all).
            loss_fn (Callable[[Run], float]): The value to explain, from a run.
            failed_loss (float | None): The value of a failed run (None: failed runs are left out).

        Returns:
            tuple: ``(X, y, config_space)``: numpy arrays and the space with ``budget`` if added.
        """
        import ConfigSpace as CS

        budgets, rows = self._rows(budgets, loss_fn, failed_loss)
        space = copy.deepcopy(config_space)
        several = len(set(budgets)) > 1
        if several:
            low, high = float(min(budgets)), float(max(budgets))
            space.add(CS.UniformFloatHyperparameter("budget", low, high, log=low > 0))
        hps = list(space.values())
        X = []
        for values, budget, _ in rows:
            if several:
                values["budget"] = float(budget)
            config = CS.Configuration(space, values)
            X.append([_fanova_value(hp, config.get(hp.name)) for hp in hps])
        y = np.array([loss for _, _, loss in rows], dtype=float)
        return np.array(X, dtype=float).reshape(len(X), len(hps)), y, space

    def get_pandas_dataframe(self, budgets: Iterable[float] | None = None,
                             loss_fn: Callable[[Any], float] = lambda r: r.loss) -> tuple[Any, Any]:
        """One row per successful run: configs (plus ``budget`` if several) and loss.

        pandas is imported here, so it is needed only by those who call this.

        Args:
            budgets (Iterable[float] | None): The budgets whose runs to use (None: all).
            loss_fn (Callable[[Run], float]): The loss of a run.

        Returns:
            tuple: ``(df_X, df_y)``, two pandas DataFrames.
        """
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("Result.get_pandas_dataframe needs pandas: pip install pandas") from exc
        budgets, rows = self._rows(budgets, loss_fn)
        if len(budgets) > 1:  # each row has its own dict: HpBandSter shared one per config
            for config, budget, _ in rows:
                config["budget"] = budget
        return (pd.DataFrame([config for config, _, _ in rows]),
                pd.DataFrame([{"loss": loss} for _, _, loss in rows]))

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write one row per run.

        Columns: ``config_id`` (JSON list), ``budget``, ``loss`` (empty if failed), ``status``,
        ``submitted``/``started``/``finished`` (seconds after the first submission), ``info``
        (JSON), then one ``config.<name>`` column per hyperparameter (nested dicts flattened with
        dots, absent values empty).

        Args:
            path (str | PathLike): The CSV file to write.

        Returns:
            Path: The path written.
        """
        flat = {cid: _flatten(entry["config"]) for cid, entry in self.get_id2config_mapping().items()}
        names = sorted({name for config in flat.values() for name in config})
        rows = [{"config_id": dumps(run.config_id), "budget": run.budget, "loss": run.loss,
                 "status": run.status.name, **{k: run.time_stamps.get(k) for k in TIMESTAMP_KEYS},
                 "info": dumps(run.info),
                 **{f"config.{name}": dumps(value) if isinstance(value, (list, tuple)) else value
                    for name, value in flat[run.config_id].items()}}
                for run in self.get_all_runs()]
        columns = ["config_id", "budget", "loss", "status", *TIMESTAMP_KEYS, "info"]
        write_csv(path, rows, columns + [f"config.{name}" for name in names])
        return Path(path)


def _fanova_value(hp: Any, value: Any) -> float:
    if value is None:
        return math.nan
    if hasattr(hp, "choices") or hasattr(hp, "sequence"):
        return float(hp.to_vector(value))
    return float(value)


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out
