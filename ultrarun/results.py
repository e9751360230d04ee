"""Results of a run: the ``Result`` object, the JSON-lines logger, and loading logs back.

Everything here keeps HpBandSter's names and meanings, so analysis notebooks written for
``hpbandster.core.result`` keep working: ``Result.get_incumbent_id()`` is the best run on the
*largest* budget, trajectories are measured from the first submission, and the logger writes
``configs.json`` / ``results.json`` line by line in HpBandSter's format.

What ultrarun adds: every run keeps its :class:`~ultrarun.job.JobStatus` (SUCCESS, CRASHED,
TIMEOUT, MEMOUT, LOST, CANCELLED) and the traceback of a failed run; the status goes into a third
file, ``statuses.json``, because HpBandSter's reader unpacks exactly five elements per results
line. Logs written by HpBandSter itself (no ``statuses.json``) load too; their statuses are
inferred (a result -> SUCCESS, no result -> CRASHED).

JSON choice: files are strict JSON (``allow_nan=False``). NaN and +/-infinity anywhere in a
config, config_info or result become ``null``, and values that cannot be made plain data are
written as their ``repr`` (with a warning), so one odd value never costs a result.
"""
from __future__ import annotations

import copy
import csv
import json
import logging
import math
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .errors import ResultError
from .job import Job, JobStatus, to_plain

logger = logging.getLogger(__name__)

CONFIGS_FILE = "configs.json"
RESULTS_FILE = "results.json"
STATUSES_FILE = "statuses.json"

ConfigId = Any  # a tuple (iteration, bracket, index) for the masters; anything hashable otherwise
TIMESTAMP_KEYS = ("submitted", "started", "finished")


def infer_status(result: Mapping[str, Any] | None) -> JobStatus:
    """Status of a run whose log has none (HpBandSter's format): a loss means it succeeded."""
    return JobStatus.SUCCESS if result is not None and result.get("loss") is not None else JobStatus.CRASHED


@dataclass
class Run:
    """One evaluation of a configuration on a budget (HpBandSter's ``Run``, plus its status).

    The first six fields are HpBandSter's, in its order; ``loss`` and ``info`` are None for a run
    that failed, ``error_logs`` holds the exception text (traceback) of a failed run.
    """

    config_id: ConfigId
    budget: float
    loss: float | None
    info: Any
    time_stamps: dict[str, float]
    error_logs: str | None = None
    status: JobStatus | None = None

    def __post_init__(self) -> None:
        if self.status is None:
            self.status = JobStatus.SUCCESS if self.loss is not None else JobStatus.CRASHED
        elif not isinstance(self.status, JobStatus):
            self.status = JobStatus(self.status)

    def __getitem__(self, key: str) -> Any:
        """HpBandSter lets runs be read like dicts (``run['loss']``)."""
        return getattr(self, key)

    @classmethod
    def from_job(cls, job: Job) -> "Run":
        """The run a finished job stands for (absolute time stamps, as the job has them)."""
        status = _final_status(job)
        result = job.result if status is JobStatus.SUCCESS else None
        return cls(config_id=job.id, budget=job.kwargs["budget"],
                   loss=None if result is None else result.get("loss"),
                   info=None if result is None else result.get("info"),
                   time_stamps=dict(job.timestamps), error_logs=job.exception, status=status)


@dataclass
class Datum:
    """Everything known about one configuration, keyed by budget (HpBandSter's ``Datum``)."""

    config: dict[str, Any]
    config_info: Any = field(default_factory=dict)
    results: dict[float, dict[str, Any] | None] = field(default_factory=dict)
    time_stamps: dict[float, dict[str, float]] = field(default_factory=dict)
    exceptions: dict[float, str | None] = field(default_factory=dict)
    statuses: dict[float, JobStatus] = field(default_factory=dict)

    def add(self, budget: float, time_stamps: Mapping[str, float], result: Mapping[str, Any] | None,
            exception: str | None, status: JobStatus | None = None) -> None:
        """Record the run on ``budget``; a later run on the same budget replaces it (as HpBandSter)."""
        self.time_stamps[budget] = dict(time_stamps)
        self.results[budget] = None if result is None else dict(result)
        self.exceptions[budget] = exception
        self.statuses[budget] = status if status is not None else infer_status(result)


def extract_HBS_learning_curves(runs: Sequence[Run]) -> list[list[tuple[float, float]]]:
    """HpBandSter's default learning-curve extractor: one curve of (budget, loss), failures left out."""
    ordered = sorted(runs, key=lambda r: r.budget)
    return [[(r.budget, r.loss) for r in ordered if r.loss is not None]]


#: HpBandSter's older name for the same function.
extract_HB_learning_curves = extract_HBS_learning_curves


class Result:
    """The outcome of a run, with HpBandSter's analysis API.

    ``Result(HB_iteration_data, HB_config)`` is HpBandSter's constructor: ``HB_iteration_data`` is
    a list of ``{config_id: datum}`` dicts (one per iteration; a single dict is accepted too), where
    a datum has ``config``, ``config_info``, and per-budget ``results``, ``time_stamps``,
    ``exceptions`` and optionally ``statuses`` (missing statuses are inferred). The data are
    copied, so the caller's objects are not changed. ``HB_config`` may give ``budgets``,
    ``min_budget``, ``max_budget``, ``eta``, ``max_SH_iter`` and ``time_ref`` (absolute time that
    becomes 0); whatever is missing is inferred from the data, ``time_ref`` being the first
    submission. Time stamps in the result are relative to ``time_ref``.

    Simpler ways in: :meth:`from_runs` (runs and configs), :func:`logged_results_to_HBS_result`.
    """

    def __init__(self, HB_iteration_data: Iterable[Mapping[ConfigId, Any]] | Mapping[ConfigId, Any],
                 HB_config: Mapping[str, Any] | None = None) -> None:
        iterations = [HB_iteration_data] if isinstance(HB_iteration_data, Mapping) else HB_iteration_data
        self.data: dict[ConfigId, Datum] = {}
        for iteration in iterations:
            for config_id, datum in iteration.items():
                self.data[config_id] = _copy_datum(datum)
        self.HB_config: dict[str, Any] = _complete_HB_config(HB_config or {}, self.data)
        time_ref = self.HB_config["time_ref"]
        for datum in self.data.values():
            for stamps in datum.time_stamps.values():
                for key, value in stamps.items():
                    if value is not None:
                        stamps[key] = value - time_ref

    @classmethod
    def from_runs(cls, runs: Iterable[Run | Job], configs: Mapping[ConfigId, Any] | None = None,
                  HB_config: Mapping[str, Any] | None = None) -> "Result":
        """Build a result from runs, or finished jobs, with absolute time stamps.

        ``configs`` maps a config id to its config dict, to ``(config, config_info)``, or to any
        object with ``config`` and ``config_info`` attributes (an iteration's datum); ids that
        only appear in ``runs`` get an empty config.
        """
        data: dict[ConfigId, Datum] = {}
        for config_id, entry in (configs or {}).items():
            if isinstance(entry, tuple):
                config, info = entry
            elif hasattr(entry, "config"):
                config, info = entry.config, getattr(entry, "config_info", {})
            else:
                config, info = entry, {}
            data[config_id] = Datum(config=dict(config), config_info=copy.deepcopy(info))
        for run in runs:
            if isinstance(run, Job):
                run = Run.from_job(run)
            datum = data.setdefault(run.config_id, Datum(config={}))
            result = None if run.loss is None else {"loss": run.loss, "info": run.info}
            datum.add(run.budget, run.time_stamps, result, run.error_logs, run.status)
        return cls([data], HB_config)

    def __getitem__(self, config_id: ConfigId) -> Datum:
        return self.data[config_id]

    def __len__(self) -> int:
        """Number of configurations."""
        return len(self.data)

    # --- incumbents -----------------------------------------------------------------------------
    def get_incumbent_id(self) -> ConfigId | None:
        """Config id with the smallest loss among the runs on the maximum budget, else None.

        HpBandSter's meaning: a good loss on a small budget does not make an incumbent; see
        :meth:`get_incumbents_per_budget` for the best of every budget.
        """
        max_budget = self.HB_config["max_budget"]
        candidates = [(datum.results[max_budget]["loss"], config_id)
                      for config_id, datum in self.data.items()
                      if _has_loss(datum.results.get(max_budget))]
        return _argmin(candidates)

    def get_incumbents_per_budget(self) -> dict[float, tuple[ConfigId, float]]:
        """``{budget: (config_id, loss)}``: the best successful run of every budget, budgets ascending."""
        best: dict[float, list[tuple[float, ConfigId]]] = {}
        for config_id, datum in self.data.items():
            for budget, result in datum.results.items():
                if _has_loss(result):
                    best.setdefault(budget, []).append((result["loss"], config_id))
        out = {}
        for budget in sorted(best):
            config_id = _argmin(best[budget])
            out[budget] = (config_id, self.data[config_id].results[budget]["loss"])
        return out

    def get_incumbent_trajectory(self, all_budgets: bool = True, bigger_is_better: bool = True,
                                 non_decreasing_budget: bool = True) -> dict[str, list[Any]]:
        """The incumbent over time, exactly as HpBandSter computes it.

        Runs are taken in order of finishing (times relative to the first submission). A run
        becomes the incumbent if its loss is lower, or (``bigger_is_better``) if its budget is
        larger than the incumbent's; with ``non_decreasing_budget`` a run on a smaller budget never
        does. ``all_budgets=False`` considers only runs on the maximum budget. If the last finished
        run is not the incumbent, the last entry is repeated at its finishing time so plots reach
        the end of the run. Returns ``{'config_ids', 'times_finished', 'budgets', 'losses'}``.
        """
        all_runs = self.get_all_runs(only_largest_budget=not all_budgets)
        if not all_budgets:
            all_runs = [r for r in all_runs if r.budget == self.HB_config["max_budget"]]
        all_runs.sort(key=lambda r: r.time_stamps["finished"])
        trajectory: dict[str, list[Any]] = {"config_ids": [], "times_finished": [], "budgets": [], "losses": []}

        def append(config_id: ConfigId, finished: float, budget: float, loss: float) -> None:
            for key, value in zip(trajectory, (config_id, finished, budget, loss)):
                trajectory[key].append(value)

        current_loss = math.inf
        incumbent_budget = self.HB_config["min_budget"]
        for run in all_runs:
            if run.loss is None:
                continue
            new_incumbent = (bigger_is_better and run.budget > incumbent_budget) or run.loss < current_loss
            if non_decreasing_budget and run.budget < incumbent_budget:
                new_incumbent = False
            if new_incumbent:
                current_loss, incumbent_budget = run.loss, run.budget
                append(run.config_id, run.time_stamps["finished"], run.budget, run.loss)
        if trajectory["config_ids"] and all_runs[-1].loss != current_loss:
            append(trajectory["config_ids"][-1], all_runs[-1].time_stamps["finished"],
                   trajectory["budgets"][-1], trajectory["losses"][-1])
        return trajectory

    # --- runs and configs -----------------------------------------------------------------------
    def get_runs_by_id(self, config_id: ConfigId) -> list[Run]:
        """The runs of one configuration, by ascending budget (so ``[-1]`` is the longest)."""
        datum = self.data[config_id]
        runs = []
        for budget, result in datum.results.items():
            ok = result is not None
            runs.append(Run(config_id, budget,
                            result.get("loss") if ok else None, result.get("info") if ok else None,
                            datum.time_stamps.get(budget, {}), datum.exceptions.get(budget),
                            datum.statuses.get(budget) or infer_status(result)))
        runs.sort(key=lambda r: r.budget)
        return runs

    def get_all_runs(self, only_largest_budget: bool = False) -> list[Run]:
        """All runs; with ``only_largest_budget`` only the longest run of each configuration."""
        all_runs: list[Run] = []
        for config_id in self.data:
            runs = self.get_runs_by_id(config_id)
            if runs:
                all_runs.extend(runs[-1:] if only_largest_budget else runs)
        return all_runs

    def get_id2config_mapping(self) -> dict[ConfigId, dict[str, Any]]:
        """``{config_id: {'config': ..., 'config_info': ...}}`` (deep copies)."""
        return {config_id: {"config": copy.deepcopy(datum.config),
                            "config_info": copy.deepcopy(datum.config_info)}
                for config_id, datum in self.data.items()}

    def get_learning_curves(self, lc_extractor: Callable[[list[Run]], Any] = extract_HBS_learning_curves,
                            config_ids: Iterable[ConfigId] | None = None) -> dict[ConfigId, Any]:
        """``{config_id: lc_extractor(runs)}`` for all (or the given) configurations."""
        ids = self.data.keys() if config_ids is None else config_ids
        return {config_id: lc_extractor(self.get_runs_by_id(config_id)) for config_id in ids}

    def num_iterations(self) -> int:
        """Number of iterations, from the first element of the (tuple) config ids; 0 when empty."""
        firsts = [k[0] for k in self.data if isinstance(k, tuple) and k]
        return max(firsts) + 1 if firsts else 0

    def _runs_on(self, budgets: Iterable[float] | None) -> tuple[list[float], list[Run]]:
        budgets = list(self.HB_config["budgets"] if budgets is None else budgets)
        return budgets, [r for r in self.get_all_runs() if r.budget in budgets]

    # --- exports --------------------------------------------------------------------------------
    def get_fANOVA_data(self, config_space: Any, budgets: Iterable[float] | None = None,
                        loss_fn: Callable[[Run], float] = lambda r: r.loss,
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
                             loss_fn: Callable[[Run], float] = lambda r: r.loss) -> tuple[Any, Any]:
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
        path = Path(path)
        id2conf = self.get_id2config_mapping()
        flat = {config_id: _flatten(entry["config"]) for config_id, entry in id2conf.items()}
        names = sorted({name for config in flat.values() for name in config})
        header = ["config_id", "budget", "loss", "status", *TIMESTAMP_KEYS, "info"]
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header + [f"config.{name}" for name in names])
            for run in self.get_all_runs():
                config = flat[run.config_id]
                writer.writerow([_dumps(run.config_id), run.budget, _blank(run.loss), run.status.name,
                                 *(_blank(run.time_stamps.get(k)) for k in TIMESTAMP_KEYS),
                                 _dumps(run.info)] + [_csv_cell(config.get(name)) for name in names])
        return path


# --- logging to files ---------------------------------------------------------------------------
class json_result_logger:
    """Writes results as they arrive into ``configs.json`` and ``results.json`` (HpBandSter's format).

    Every line is written with one call, flushed and fsync'ed before the call returns, so a crash
    of the master loses nothing that was logged. Files are reopened for every line (as in
    HpBandSter), so there is nothing to close. Thread-safe.

    - ``configs.json``: ``[config_id, config, config_info]`` per configuration.
    - ``results.json``: ``[config_id, budget, {"submitted", "started", "finished"}, result or null,
      exception text or null]`` per finished job; ``result`` is ``{"loss", "info"}`` of a
      successful job and null otherwise.
    - ``statuses.json``: ``[config_id, budget, {"status": ..., "attempt": ..., "worker": ...}]`` per
      finished job (ultrarun's addition; HpBandSter's reader ignores the file).

    ``overwrite=False`` refuses to touch existing log files (``FileExistsError``).
    """

    def __init__(self, directory: str | os.PathLike[str], overwrite: bool = False,
                 fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_fn = self.directory / CONFIGS_FILE
        self.results_fn = self.directory / RESULTS_FILE
        self.statuses_fn = self.directory / STATUSES_FILE
        self.fsync = fsync
        files = (self.config_fn, self.results_fn, self.statuses_fn)
        existing = [str(p) for p in files if p.exists()]
        if existing and not overwrite:
            raise FileExistsError(f"result logs already exist: {', '.join(existing)}; pass "
                                  "overwrite=True to replace them, or log into another directory")
        for path in files:
            path.write_text("", encoding="utf-8")
        self.config_ids: set[ConfigId] = set()
        self._lock = threading.Lock()

    def new_config(self, config_id: ConfigId, config: Mapping[str, Any], config_info: Any = None) -> None:
        """Log a configuration once (later calls with the same id are ignored)."""
        with self._lock:
            if config_id in self.config_ids:
                return
            self.config_ids.add(config_id)
            info = {} if config_info is None else config_info
            self._append(self.config_fn, [config_id, config, info])

    def __call__(self, job: Job) -> None:
        """Log a finished job: its results line first, then its status line."""
        if job.id not in self.config_ids:
            logger.warning("job %r finished before its configuration was logged; logging it now "
                           "without config_info", job.id)
            self.new_config(job.id, job.kwargs["config"], {})
        status = _final_status(job)
        result = job.result if status is JobStatus.SUCCESS else None
        line = [job.id, job.kwargs["budget"], _complete_timestamps(job.timestamps), result, job.exception]
        extra = {"status": status.name, "attempt": job.attempt, "worker": job.worker_name}
        with self._lock:
            self._append(self.results_fn, line)
            self._append(self.statuses_fn, [job.id, job.kwargs["budget"], extra])

    def _append(self, path: Path, record: list[Any]) -> None:
        text = json.dumps(_jsonable(record), allow_nan=False) + "\n"
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())


def logged_results_to_HBS_result(directory: str | os.PathLike[str]) -> Result:
    """Load the logs of a run (live or finished, ultrarun's or HpBandSter's) into a :class:`Result`.

    Lines that are not valid JSON (a line being written right now, or cut by a crash) are skipped
    with a warning. ``HB_config`` is inferred from the data: the budgets seen, their smallest and
    largest, ``eta`` from the two smallest, and ``time_ref`` = the first submission.
    """
    directory = Path(directory)
    config_fn = directory / CONFIGS_FILE
    if not config_fn.exists():
        raise FileNotFoundError(f"{config_fn} not found: {directory} holds no ultrarun/HpBandSter "
                                "result logs (configs.json, results.json)")
    data: dict[ConfigId, Datum] = {}
    for line_no, line in _read_json_lines(config_fn):
        if not isinstance(line, list) or len(line) not in (2, 3):
            logger.warning("%s:%d: expected [config_id, config, config_info], skipped", config_fn, line_no)
            continue
        config_info = line[2] if len(line) == 3 else "N/A"
        data[_config_id(line[0])] = Datum(config=line[1], config_info=config_info)

    statuses: dict[tuple[ConfigId, float], JobStatus] = {}
    for line_no, line in _read_json_lines(directory / STATUSES_FILE):
        try:
            statuses[(_config_id(line[0]), line[1])] = JobStatus(line[2]["status"])
        except (IndexError, KeyError, TypeError, ValueError):
            logger.warning("%s:%d: not a status line, skipped", directory / STATUSES_FILE, line_no)

    for line_no, line in _read_json_lines(directory / RESULTS_FILE):
        if not isinstance(line, list) or len(line) < 5:
            logger.warning("%s:%d: expected 5 elements, skipped", directory / RESULTS_FILE, line_no)
            continue
        config_id, budget, time_stamps, result, exception = line[:5]
        config_id = _config_id(config_id)
        if config_id not in data:
            logger.warning("%s:%d: config %r is not in %s", directory / RESULTS_FILE, line_no,
                           config_id, CONFIGS_FILE)
            data[config_id] = Datum(config={})
        data[config_id].add(budget, time_stamps, result, exception, statuses.get((config_id, budget)))
    return Result([data])


# --- helpers ------------------------------------------------------------------------------------
def _final_status(job: Job) -> JobStatus:
    """The job's status, inferred if it never got a final one; a 'success' without loss crashed."""
    status = job.status if job.status.is_final else infer_status(job.result)
    if status is JobStatus.SUCCESS and infer_status(job.result) is not JobStatus.SUCCESS:
        logger.warning("job %r is marked SUCCESS but has no loss; recording it as CRASHED", job.id)
        return JobStatus.CRASHED
    return status


def _complete_timestamps(stamps: Mapping[str, float]) -> dict[str, float]:
    """All three time stamps, since HpBandSter's reader needs them: a missing one takes its neighbour's."""
    out = {k: stamps[k] for k in TIMESTAMP_KEYS if stamps.get(k) is not None}
    out.setdefault("finished", time.time())
    out.setdefault("started", out.get("submitted", out["finished"]))
    out.setdefault("submitted", out["started"])
    return {k: float(out[k]) for k in TIMESTAMP_KEYS}


def _copy_datum(datum: Any) -> Datum:
    """A private copy of any HpBandSter-like datum (ours, HpBandSter's, an iteration's)."""
    statuses = getattr(datum, "statuses", None) or {}
    results = copy.deepcopy(dict(datum.results))
    return Datum(config=copy.deepcopy(datum.config),
                 config_info=copy.deepcopy(getattr(datum, "config_info", {})),
                 results=results,
                 time_stamps={b: dict(ts) for b, ts in datum.time_stamps.items()},
                 exceptions=dict(getattr(datum, "exceptions", {}) or {}),
                 statuses={b: JobStatus(statuses[b]) if b in statuses else infer_status(r)
                           for b, r in results.items()})


def _complete_HB_config(given: Mapping[str, Any], data: Mapping[ConfigId, Datum]) -> dict[str, Any]:
    """HB_config with the keys HpBandSter's reader would infer filled in from the data."""
    seen = sorted({b for datum in data.values() for b in datum.results})
    given_budgets = given.get("budgets")  # may be a numpy array (HpBandSter's masters pass one)
    budgets = [float(b) for b in given_budgets] if given_budgets is not None else []
    budgets = budgets or seen
    submitted = [ts["submitted"] for datum in data.values() for ts in datum.time_stamps.values()
                 if ts.get("submitted") is not None]
    out = dict(given)
    out["budgets"] = budgets
    defaults = {
        "eta": None if len(budgets) < 2 else budgets[1] / budgets[0],
        "min_budget": min(budgets) if budgets else None,
        "max_budget": max(budgets) if budgets else None,
        "max_SH_iter": len(budgets),
        "time_ref": min(submitted) if submitted else 0.0,
    }
    for key, value in defaults.items():
        if out.get(key) is None:
            out[key] = value
    return out


def _has_loss(result: Mapping[str, Any] | None) -> bool:
    loss = None if result is None else result.get("loss")
    return loss is not None and not (isinstance(loss, float) and math.isnan(loss))


def _argmin(candidates: list[tuple[float, ConfigId]]) -> ConfigId | None:
    """Id of the smallest loss; ties go to the smaller id, as HpBandSter's ``min`` over tuples."""
    if not candidates:
        return None
    return min(candidates, key=lambda pair: (pair[0], _sort_key(pair[1])))[1]


def _sort_key(config_id: ConfigId) -> Any:
    return config_id if isinstance(config_id, tuple) else (str(config_id),)


def _config_id(raw: Any) -> ConfigId:
    """Config ids are lists in JSON and tuples in memory."""
    return tuple(raw) if isinstance(raw, list) else raw


def _read_json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line_number, value)`` for every valid JSON line; a missing file has no lines."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line_no, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                yield line_no, json.loads(text)
            except json.JSONDecodeError as exc:
                logger.warning("%s:%d: not valid JSON (%s), skipped; a crash or a line being "
                               "written leaves such a line", path, line_no, exc)


def _jsonable(obj: Any) -> Any:
    """Plain, strict-JSON data: via ``to_plain``, non-finite floats to None, unknowns to repr."""
    if isinstance(obj, Mapping):
        return {_json_key(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    try:
        plain = to_plain(obj)
    except ResultError as exc:
        logger.warning("%s; logging its repr instead", exc)
        return repr(obj)
    if isinstance(plain, (list, tuple, dict)):
        return _jsonable(plain)
    if isinstance(plain, float) and not math.isfinite(plain):
        return None
    return plain


def _json_key(key: Any) -> str | int | float | bool | None:
    plain = _jsonable(key)
    return plain if plain is None or isinstance(plain, (str, int, float, bool)) else str(plain)


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


def _dumps(value: Any) -> str:
    return json.dumps(_jsonable(value), allow_nan=False)


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _csv_cell(value: Any) -> Any:
    return _dumps(value) if isinstance(value, (list, tuple)) else _blank(value)


def status_counts(runs: Iterable[Run]) -> dict[str, int]:
    """``{status name: count}`` in the enum's order, only statuses that occur (for summaries)."""
    counts = Counter(run.status for run in runs)
    return {status.name: counts[status] for status in JobStatus if counts[status]}


__all__ = [
    "Run", "Datum", "Result", "json_result_logger", "logged_results_to_HBS_result",
    "extract_HBS_learning_curves", "extract_HB_learning_curves", "infer_status", "status_counts",
    "CONFIGS_FILE", "RESULTS_FILE", "STATUSES_FILE",
]
