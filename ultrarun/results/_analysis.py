"""The analysis API: ``Result``, ``Run``, ``ConfigRecord`` (docs/results.md)."""
from __future__ import annotations

import copy
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import NoSuccessfulRunError
from ..job import Incumbents, ConfigId, Job, JobStatus
from ._exports import ResultExports

logger = logging.getLogger(__name__)


class _ConfigMapping(dict):
    """``get_id2config_mapping()``'s dict: ``[None]`` says why there is no incumbent."""

    def __init__(self, result: "Result", items: Iterable[tuple]):
        super().__init__(items)
        self._result = result

    def __missing__(self, key: Any) -> Any:
        if key is None:
            raise self._result.no_incumbent_error()
        raise KeyError(key)


def infer_status(result: Mapping[str, Any] | None) -> JobStatus:
    """Status of a run whose log has none (HpBandSter's format): a loss means it succeeded."""
    return JobStatus.SUCCESS if result is not None and result.get("loss") is not None else JobStatus.CRASHED


@dataclass
class Run:
    """One evaluation of a configuration on a budget (HpBandSter's ``Run``, plus its status).

    The first six fields are HpBandSter's, in its order. ``run["loss"]`` works too.

    Args:
        config_id (ConfigId): The configuration's id, e.g. ``(0, 0, 3)``.
        budget (float): The budget it ran on.
        loss (float | None): Its loss; None for a run that failed.
        info (Any): What the compute returned besides the loss; None for a failed run.
        time_stamps (dict[str, float]): ``submitted``, ``started`` and ``finished``.
        error_logs (str | None): The exception text (traceback) of a failed run.
        status (JobStatus | None): ``SUCCESS``, ``CRASHED``, ``TIMEOUT``, ``MEMOUT``, ``LOST``
            or ``CANCELLED`` (None: inferred from the loss).
    """

    config_id: ConfigId
    budget: float
    loss: float | None
    info: Any
    time_stamps: dict[str, float]
    error_logs: str | None = None
    status: JobStatus | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.status, JobStatus):  # a member is kept as is (a Result has 100,000s)
            self.status = infer_status({"loss": self.loss}) if self.status is None else \
                JobStatus(self.status)

    def __getitem__(self, key: str) -> Any:
        """HpBandSter lets runs be read like dicts (``run['loss']``)."""
        return getattr(self, key)

    @classmethod
    def from_job(cls, job: Job) -> "Run":
        """The run a finished job stands for (absolute time stamps, as the job has them).

        Args:
            job (Job): A finished job.

        Returns:
            Run: The run.
        """
        config_id, budget, loss, info, time_stamps, error_logs, status = _job_fields(job)
        return cls(config_id, budget, loss, info, dict(time_stamps), error_logs, status)


@dataclass
class ConfigRecord:
    """Everything known about one configuration, keyed by budget (HpBandSter's ``Datum``).

    Args:
        config (dict[str, Any]): The configuration.
        config_info (Any): What the optimizer said about it (``model_based_pick``, ...).
        results (dict[float, dict[str, Any] | None]): ``{budget: {"loss", "info"} or None}``.
        time_stamps (dict[float, dict[str, float]]): ``{budget: {"submitted", "started",
            "finished"}}``.
        exceptions (dict[float, str | None]): ``{budget: error text or None}``.
        statuses (dict[float, JobStatus]): ``{budget: JobStatus}``.
    """

    config: dict[str, Any]
    config_info: Any = field(default_factory=dict)
    results: dict[float, dict[str, Any] | None] = field(default_factory=dict)
    time_stamps: dict[float, dict[str, float]] = field(default_factory=dict)
    exceptions: dict[float, str | None] = field(default_factory=dict)
    statuses: dict[float, JobStatus] = field(default_factory=dict)

    def add(self, budget: float, time_stamps: Mapping[str, float], result: Mapping[str, Any] | None,
            exception: str | None, status: JobStatus | None = None) -> None:
        """Record the run on ``budget``; a later run on the same budget replaces it (as HpBandSter).

        Args:
            budget (float): The run's budget.
            time_stamps (Mapping[str, float]): ``submitted``, ``started``, ``finished``.
            result (Mapping[str, Any] | None): ``{"loss": ..., "info": ...}``, None if it failed.
            exception (str | None): Why it failed.
            status (JobStatus | None): Its status (None: inferred from the result).
        """
        self.time_stamps[budget] = dict(time_stamps)
        self.results[budget] = None if result is None else dict(result)
        self.exceptions[budget] = exception
        self.statuses[budget] = status if status is not None else infer_status(result)


@dataclass(frozen=True)
class BestConfig:
    """The best configuration of a run, what ``Result.best_config`` returns.

    Args:
        config (dict[str, Any]): The configuration (a copy), e.g. ``{"x": 0.31}``.
        loss (float): Its loss on ``budget``.
        budget (float): The largest budget any configuration finished with a loss.
        config_id (ConfigId): Its id in the run, e.g. ``(2, 0, 5)``.
        info (Any): The ``info`` its compute returned with that loss.
    """

    config: dict[str, Any]
    loss: float
    budget: float
    config_id: ConfigId
    info: Any = None


def extract_HBS_learning_curves(runs: Sequence[Run]) -> list[list[tuple[float, float]]]:
    """HpBandSter's default learning-curve extractor: one curve of (budget, loss), failures left out.

    Args:
        runs (Sequence[Run]): The runs of one configuration.

    Returns:
        list[list[tuple[float, float]]]: One curve, by ascending budget.
    """
    ordered = sorted(runs, key=lambda r: r.budget)
    return [[(r.budget, r.loss) for r in ordered if r.loss is not None]]


#: HpBandSter's older name for the same function.
extract_HB_learning_curves = extract_HBS_learning_curves


class Result(ResultExports):
    """The outcome of a run, with HpBandSter's analysis API and constructor.

    ``Result(HB_iteration_data, HB_config)`` copies the data, infers what ``HB_config`` lacks
    and makes time stamps relative to ``time_ref`` (by default the first submission). Simpler
    ways in: ``Result.from_runs`` and
    [logged_results_to_HBS_result][ultrarun.results.logged_results_to_HBS_result]. For the best
    configuration: ``best_config()``. Details: docs/results.md.

    Args:
        HB_iteration_data (Iterable[Mapping] | Mapping): ``{config_id: datum}`` per iteration
            (HpBandSter's), or one such mapping.
        HB_config (Mapping[str, Any] | None): HpBandSter's run settings (``budgets``,
            ``min_budget``, ``max_budget``, ``eta``, ``time_ref``); what it lacks is inferred.
    """

    def __init__(self, HB_iteration_data: Iterable[Mapping[ConfigId, Any]] | Mapping[ConfigId, Any],
                 HB_config: Mapping[str, Any] | None = None) -> None:
        iterations = [HB_iteration_data] if isinstance(HB_iteration_data, Mapping) else HB_iteration_data
        self._take({config_id: copy_record(datum) for iteration in iterations
                    for config_id, datum in iteration.items()}, HB_config)

    def _take(self, data: dict[ConfigId, ConfigRecord], HB_config: Mapping[str, Any] | None
              ) -> None:
        """Own ``data`` (records nobody else holds) and make its times relative."""
        self.data = data
        self.HB_config: dict[str, Any] = complete_HB_config(HB_config or {}, self.data)
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

        Args:
            runs (Iterable[Run | Job]): The runs, or finished jobs.
            configs (Mapping[ConfigId, Any] | None): A config id to its config dict, to
                ``(config, config_info)``, or to any object with ``config`` and
                ``config_info`` attributes (an iteration's datum); ids that only appear in
                ``runs`` get an empty config.
            HB_config (Mapping[str, Any] | None): As for the constructor.

        Returns:
            Result: The result.
        """
        data: dict[ConfigId, ConfigRecord] = {}
        for config_id, entry in (configs or {}).items():
            if isinstance(entry, tuple):
                config, info = entry
            elif hasattr(entry, "config"):
                config, info = entry.config, getattr(entry, "config_info", {})
            else:
                config, info = entry, {}
            data[config_id] = ConfigRecord(config=dict(config), config_info=_copy(info))
        for run in runs:
            config_id, budget, loss, info, stamps, error_logs, status = (
                _job_fields(run) if isinstance(run, Job) else  # no Run built: 100,000s of them
                (run.config_id, run.budget, run.loss, run.info, run.time_stamps, run.error_logs,
                 run.status))
            datum = data.get(config_id) or data.setdefault(config_id, ConfigRecord({}))
            datum.add(budget, stamps, None if loss is None else {"loss": loss, "info": info},
                      error_logs, status)
        result = cls.__new__(cls)  # the records are new: no second copy (a resumed run has
        result._take(data, HB_config)  # 100,000 of them)
        return result

    def __getitem__(self, config_id: ConfigId) -> ConfigRecord:
        return self.data[config_id]

    def __len__(self) -> int:
        """Number of configurations."""
        return len(self.data)

    # --- incumbents -----------------------------------------------------------------------------
    def get_incumbent_id(self) -> ConfigId | None:
        """Config id with the smallest loss among the runs on the maximum budget, else None.

        HpBandSter's meaning: a good loss on a small budget does not make an incumbent; see
        ``get_incumbents_per_budget`` for the best of every budget and ``best_config`` for the
        best on the largest budget reached.
        """
        return self.get_incumbents_per_budget().get(self.HB_config["max_budget"], (None,))[0]

    def best_config(self) -> BestConfig:
        """The best configuration, its loss and its budget in one call.

        The best is the configuration with the smallest loss on the largest budget that any
        configuration finished with a loss; losses on smaller budgets are not compared with it,
        since they measure something else (a run stopped earlier). Where a run reached
        ``max_budget`` this is HpBandSter's incumbent, ``get_incumbent_id``.

        Returns:
            BestConfig: ``config``, ``loss``, ``budget``, ``config_id`` and ``info``.

        Raises:
            NoSuccessfulRunError: No run finished with a loss; the message counts the failed
                runs by status and quotes their first errors.
        """
        per_budget = self.get_incumbents_per_budget()
        if not per_budget:
            raise NoSuccessfulRunError(_nothing_finished(self.get_all_runs()))
        budget = max(per_budget)
        config_id, loss = per_budget[budget]
        datum = self.data[config_id]
        return BestConfig(config=_copy(datum.config), loss=loss, budget=budget,
                          config_id=config_id, info=_copy(datum.results[budget].get("info")))

    def get_incumbents_per_budget(self) -> dict[float, tuple[ConfigId, float]]:
        """``{budget: (config_id, loss)}``: the best successful run of every budget, budgets ascending."""
        best = Incumbents()  # the one tracker; offered in id order, a tie goes to the smaller
        for config_id in sorted(self.data, key=_sort_key):  # id, as HpBandSter's min does
            for budget, result in self.data[config_id].results.items():
                if _has_loss(result):
                    best.offer(budget, result["loss"], config_id)
        return {b: (best.ids[b], best.losses[b]) for b in sorted(best.losses)}

    def get_incumbent_trajectory(self, all_budgets: bool = True, bigger_is_better: bool = True,
                                 non_decreasing_budget: bool = True) -> dict[str, list[Any]]:
        """The incumbent over time, exactly as HpBandSter computes it (the rules: docs/results.md).

        Args:
            all_budgets (bool): Use the runs of every budget (False: only ``max_budget``'s).
            bigger_is_better (bool): A run on a larger budget replaces the incumbent whatever its
                loss.
            non_decreasing_budget (bool): A run on a smaller budget than the incumbent's never
                replaces it.

        Returns:
            dict[str, list]: ``{"config_ids", "times_finished", "budgets", "losses"}``.
        """
        all_runs = self.get_all_runs(only_largest_budget=not all_budgets)
        if not all_budgets:
            all_runs = [r for r in all_runs if r.budget == self.HB_config["max_budget"]]
        all_runs.sort(key=lambda r: r.time_stamps["finished"])
        entries: list[tuple[ConfigId, float, float, float]] = []  # (id, finished, budget, loss)
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
                entries.append((run.config_id, run.time_stamps["finished"], run.budget, run.loss))
        if entries and all_runs[-1].loss != current_loss:
            config_id, _, budget, loss = entries[-1]
            entries.append((config_id, all_runs[-1].time_stamps["finished"], budget, loss))
        keys = ("config_ids", "times_finished", "budgets", "losses")
        return {key: [entry[i] for entry in entries] for i, key in enumerate(keys)}

    # --- runs and configs -----------------------------------------------------------------------
    def get_runs_by_id(self, config_id: ConfigId) -> list[Run]:
        """The runs of one configuration, by ascending budget (so ``[-1]`` is the longest).

        Args:
            config_id (ConfigId): The configuration's id. ``None`` (``get_incumbent_id()`` of a
                run without one) raises ``NoSuccessfulRunError``, which says why.

        Returns:
            list[Run]: Its runs.
        """
        if config_id is None:
            raise self.no_incumbent_error()
        datum = self.data[config_id]
        return sorted((Run(config_id, budget, (result or {}).get("loss"), (result or {}).get("info"),
                           datum.time_stamps.get(budget, {}), datum.exceptions.get(budget),
                           datum.statuses.get(budget) or infer_status(result))
                       for budget, result in datum.results.items()), key=lambda r: r.budget)

    def get_all_runs(self, only_largest_budget: bool = False) -> list[Run]:
        """All runs.

        Args:
            only_largest_budget (bool): Only the longest run of each configuration.

        Returns:
            list[Run]: The runs.
        """
        per_config = (self.get_runs_by_id(config_id) for config_id in self.data)
        return [run for runs in per_config for run in (runs[-1:] if only_largest_budget else runs)]

    def get_id2config_mapping(self) -> dict[ConfigId, dict[str, Any]]:
        """``{config_id: {'config': ..., 'config_info': ...}}`` (deep copies). Looking up
        ``None`` (``get_incumbent_id()`` of a run without one) raises
        :class:`~ultrarun.errors.NoSuccessfulRunError`, which says why (a ``KeyError``)."""
        return _ConfigMapping(self, ((config_id, {"config": _copy(datum.config),
                                                  "config_info": _copy(datum.config_info)})
                                     for config_id, datum in self.data.items()))

    def no_incumbent_error(self) -> NoSuccessfulRunError:
        """Why there is no incumbent: no run, no success at all (the failures counted by
        status, their errors, and the first one's traceback), or none on the largest budget."""
        runs = self.get_all_runs()
        if not self.get_incumbents_per_budget():
            return NoSuccessfulRunError(_nothing_finished(runs))
        return NoSuccessfulRunError(
            f"no run on the largest budget ({self.HB_config['max_budget']}) succeeded, so "
            f"there is no incumbent; get_incumbents_per_budget() has the best of each budget")

    def get_learning_curves(self, lc_extractor: Callable[[list[Run]], Any] = extract_HBS_learning_curves,
                            config_ids: Iterable[ConfigId] | None = None) -> dict[ConfigId, Any]:
        """The learning curve of every configuration.

        Args:
            lc_extractor (Callable[[list[Run]], Any]): Makes the curves from a configuration's runs.
            config_ids (Iterable[ConfigId] | None): Only these configurations (None: all).

        Returns:
            dict[ConfigId, Any]: ``{config_id: lc_extractor(runs)}``.
        """
        ids = self.data.keys() if config_ids is None else config_ids
        return {config_id: lc_extractor(self.get_runs_by_id(config_id)) for config_id in ids}

    def num_iterations(self) -> int:
        """Number of iterations, from the first element of the (tuple) config ids; 0 when empty."""
        firsts = [k[0] for k in self.data if isinstance(k, tuple) and k]
        return max(firsts) + 1 if firsts else 0


# --- helpers (the logger and the compat layer use the first three) ------------------------------
def _job_fields(job: Job) -> tuple:
    """The fields of the ``Run`` a finished job stands for, in order (its time stamps are
    the job's own dict)."""
    status = final_status(job)
    result = job.result if status is JobStatus.SUCCESS else {}
    return (job.id, job.kwargs["budget"], result.get("loss"), result.get("info"), job.timestamps,
            job.exception, status)


def _nothing_finished(runs: list[Run], quoted: int = 3) -> str:
    """Why there is no best configuration and no incumbent: the failures by status, their
    first errors, and the first failure's whole traceback."""
    if not runs:
        return "no run finished yet: the result holds no runs"
    counts = ", ".join(f"{name}: {n}" for name, n in status_counts(runs).items())
    errors = [f"{r.config_id} on budget {r.budget:g}: {_last_line(r.error_logs)}"
              for r in runs if r.error_logs][:quoted]
    text = (f"no run finished with a loss, so there is no incumbent: {len(runs)} of "
            f"{len(runs)} runs failed ({counts})")
    text += "; first errors: " + "; ".join(errors) if errors else ""
    first = min(runs, key=lambda r: (r.time_stamps.get("finished") or 0.0))
    return (f"{text}. The first, {first.config_id} on budget {first.budget:g}, ended "
            f"{first.status.name}:\n{(first.error_logs or '(no error text)').rstrip()}")


def _last_line(text: str) -> str:
    """The last non-empty line of an error text: a traceback's exception line."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def final_status(job: Job) -> JobStatus:
    """The job's status, inferred if it never got a final one; a 'success' without loss crashed."""
    status = job.status if job.status.is_final else infer_status(job.result)
    if status is JobStatus.SUCCESS and infer_status(job.result) is not JobStatus.SUCCESS:
        logger.warning("job %r is marked SUCCESS but has no loss; recording it as CRASHED", job.id)
        return JobStatus.CRASHED
    return status


def _copy(value: Any) -> Any:
    """A deep copy. JSON-like values (what configurations and results hold) are copied without
    ``copy.deepcopy``'s memo, which took a quarter of the time to build a Result."""
    kind = type(value)
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    if kind is list:
        return [_copy(item) for item in value]
    return value if kind in (str, float, int, bool, type(None)) else copy.deepcopy(value)


def copy_record(datum: Any) -> ConfigRecord:
    """A private copy of any HpBandSter-like datum (ours, HpBandSter's, an iteration's)."""
    statuses = getattr(datum, "statuses", None) or {}
    results = _copy(dict(datum.results))
    return ConfigRecord(config=_copy(datum.config),
                        config_info=_copy(getattr(datum, "config_info", {})), results=results,
                        time_stamps={b: dict(ts) for b, ts in datum.time_stamps.items()},
                        exceptions=dict(getattr(datum, "exceptions", {}) or {}),
                        statuses={b: JobStatus(statuses[b]) if b in statuses else infer_status(r)
                                  for b, r in results.items()})


def complete_HB_config(given: Mapping[str, Any], data: Mapping[ConfigId, ConfigRecord]) -> dict[str, Any]:
    """HB_config with the keys HpBandSter's reader would infer filled in from the data."""
    given_budgets = given.get("budgets")  # may be a numpy array (HpBandSter's masters pass one)
    budgets = ([float(b) for b in given_budgets] if given_budgets is not None and len(given_budgets)
               else sorted({b for datum in data.values() for b in datum.results}))
    out = dict(given)
    out["budgets"] = budgets
    defaults = {
        "eta": None if len(budgets) < 2 else budgets[1] / budgets[0],
        "min_budget": min(budgets) if budgets else None,
        "max_budget": max(budgets) if budgets else None,
        "max_SH_iter": len(budgets),
    }
    if out.get("time_ref") is None:
        out["time_ref"] = min((ts["submitted"] for datum in data.values()
                               for ts in datum.time_stamps.values()
                               if ts.get("submitted") is not None), default=0.0)
    for key, value in defaults.items():
        if out.get(key) is None:
            out[key] = value
    return out


def _has_loss(result: Mapping[str, Any] | None) -> bool:
    loss = None if result is None else result.get("loss")
    return loss is not None and not (isinstance(loss, float) and math.isnan(loss))


def _sort_key(config_id: ConfigId) -> Any:
    return config_id if isinstance(config_id, tuple) else (str(config_id),)


def status_counts(runs: Iterable[Run]) -> dict[str, int]:
    """``{status name: count}`` in the enum's order, only statuses that occur (for summaries)."""
    counts = Counter(run.status for run in runs)
    return {status.name: counts[status] for status in JobStatus if counts[status]}

