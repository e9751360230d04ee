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

    def _runs_on(self, budgets: Iterable[float] | None) -> tuple[list[float], list[Any]]:
        budgets = list(self.HB_config["budgets"] if budgets is None else budgets)
        return budgets, [r for r in self.get_all_runs() if r.budget in budgets]

    def get_fANOVA_data(self, config_space: Any, budgets: Iterable[float] | None = None,
                        loss_fn: Callable[[Any], float] = lambda r: r.loss,
                        failed_loss: float | None = None) -> tuple[np.ndarray, np.ndarray, Any]:
        """``(X, y, config_space)`` for fANOVA, as HpBandSter builds them.

        With several budgets a log-scaled ``budget`` hyperparameter is added; unlike HpBandSter this
        happens on a copy, so the caller's space is left alone. Categorical and ordinal values are
        encoded by their index, inactive hyperparameters are NaN. Failed runs are left out unless
        ``failed_loss`` is given.
        """
        import ConfigSpace as CS

        budgets, runs = self._runs_on(budgets)
        space = copy.deepcopy(config_space)
        several = len(set(budgets)) > 1
        if several:
            low, high = float(min(budgets)), float(max(budgets))
            space.add(CS.UniformFloatHyperparameter("budget", low, high, log=low > 0))
        hps = list(space.values())
        id2conf = self.get_id2config_mapping()
        X, y = [], []
        for run in runs:
            if run.loss is None:
                if failed_loss is None:
                    continue
                y.append(failed_loss)
            else:
                y.append(loss_fn(run))
            values = dict(id2conf[run.config_id]["config"])
            if several:
                values["budget"] = float(run.budget)
            config = CS.Configuration(space, values)
            X.append([_fanova_value(hp, config.get(hp.name)) for hp in hps])
        return np.array(X, dtype=float).reshape(len(X), len(hps)), np.array(y, dtype=float), space

    def get_pandas_dataframe(self, budgets: Iterable[float] | None = None,
                             loss_fn: Callable[[Any], float] = lambda r: r.loss) -> tuple[Any, Any]:
        """``(df_X, df_y)``: one row per successful run, configs (plus ``budget`` if several) and loss.

        pandas is imported here, so it is needed only by those who call this.
        """
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("Result.get_pandas_dataframe needs pandas: pip install pandas") from exc
        budgets, runs = self._runs_on(budgets)
        id2conf = self.get_id2config_mapping()
        configs, losses = [], []
        for run in runs:
            if run.loss is None:
                continue
            config = dict(id2conf[run.config_id]["config"])  # HpBandSter shared one dict per config
            if len(budgets) > 1:
                config["budget"] = run.budget
            configs.append(config)
            losses.append({"loss": loss_fn(run)})
        return pd.DataFrame(configs), pd.DataFrame(losses)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write one row per run and return the path.

        Columns: ``config_id`` (JSON list), ``budget``, ``loss`` (empty if failed), ``status``,
        ``submitted``/``started``/``finished`` (seconds after the first submission), ``info``
        (JSON), then one ``config.<name>`` column per hyperparameter (nested dicts flattened with
        dots, absent values empty).
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
