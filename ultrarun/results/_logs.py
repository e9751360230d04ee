"""The live result logger and the log reader, in HpBandSter's file format (docs/results.md)."""
from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from .._files import JsonLines, jsonable, read_json_lines
from ..job import TIMESTAMP_KEYS, ConfigId, Job, JobStatus
from ._analysis import ConfigRecord, Result, final_status

logger = logging.getLogger(__name__)

CONFIGS_FILE = "configs.json"
RESULTS_FILE = "results.json"
STATUSES_FILE = "statuses.json"
CONFIGSPACE_FILE = "configspace.json"  # ConfigSpace's JSON: which parameters are log-scaled


class json_result_logger:
    """Writes results as they arrive into ``configs.json`` and ``results.json`` (HpBandSter's
    format) and the runs' statuses into ``statuses.json``. Every line is fsync'ed before the call
    returns, there is nothing to close, and it is thread-safe. Log files already there follow
    the master's rule (``open``); a resumed master fills what a crash kept from them
    (``complete``). The lines and the rules: docs/results.md.

    Args:
        directory (str | PathLike): Where to write the logs (created if needed).
        overwrite (bool): Replace the logs of an earlier run there, whatever the master says.
        fsync (bool): fsync every line (False: flush only, faster, not crash-proof).
    """

    def __init__(self, directory: str | os.PathLike[str], overwrite: bool = False,
                 fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.config_fn = self.directory / CONFIGS_FILE
        self.results_fn = self.directory / RESULTS_FILE
        self.statuses_fn = self.directory / STATUSES_FILE
        self.overwrite = overwrite
        self.fsync = fsync
        self._files = {path: JsonLines(path, hold_open=False)
                       for path in (self.config_fn, self.results_fn, self.statuses_fn)}
        self.config_ids: set[ConfigId] = set()
        #: (config_id, budget) of every line in results.json and in statuses.json
        self._logged: dict[Path, set[tuple]] = {self.results_fn: set(), self.statuses_fn: set()}
        self._lock = threading.Lock()
        self._opened = False

    def open(self, existing: str = "refuse") -> None:
        """Start logging. ``overwrite=True`` given to the logger overwrites in any case.

        Args:
            existing (str): What to do with log files already there: ``"refuse"``,
                ``"resume"`` (append; configurations logged before are not logged again) or
                ``"overwrite"``.

        Raises:
            FileExistsError: Logs are there and ``existing`` is ``"refuse"``.
        """
        with self._lock:
            if self._opened:
                return
            found = [str(p) for p in self._files if p.exists()]
            if found and existing == "refuse" and not self.overwrite:
                raise FileExistsError(
                    f"result logs of an earlier run exist: {', '.join(found)}; continue that run "
                    "with resume=True, start over with overwrite=True (on the master), or log "
                    "into another directory")
            append = existing == "resume" and not self.overwrite
            if append:
                self.config_ids = _keys(self.config_fn, lambda line: _config_id(line[0]))
                for path, keys in self._logged.items():
                    keys.update(_keys(path, lambda line: _key(line[0], line[1])))
            for log in self._files.values():
                log.open(append=append)
            self._opened = True

    def log_configspace(self, configspace: Any) -> None:
        """Write the run's configuration space into ``configspace.json`` (ConfigSpace's JSON).

        The report draws a log-scaled parameter on a log axis from it. The master calls this when
        the run starts; a space ConfigSpace cannot write is skipped with a warning.

        Args:
            configspace (ConfigurationSpace | None): The space (None: nothing is written).
        """
        if configspace is None or not hasattr(configspace, "to_json"):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".configspace.", dir=self.directory)  # O_EXCL
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                configspace.to_json(fh)
            os.replace(tmp, self.directory / CONFIGSPACE_FILE)
        except (TypeError, ValueError, OSError) as exc:
            os.unlink(tmp)
            logger.warning("configuration space not written to %s: %s",
                           self.directory / CONFIGSPACE_FILE, exc)

    def new_config(self, config_id: ConfigId, config: Mapping[str, Any], config_info: Any = None) -> None:
        """Log a configuration once (later calls with the same id are ignored).

        Args:
            config_id (ConfigId): Its id.
            config (Mapping[str, Any]): The configuration.
            config_info (Any): What the optimizer says about it (``model_based_pick``, ...).
        """
        self.open()
        with self._lock:
            if config_id in self.config_ids:
                return
            self.config_ids.add(config_id)
            self._append(self.config_fn, [config_id, config, {} if config_info is None else config_info])

    def __call__(self, job: Job) -> None:
        """Log a finished job: its results line first, then its status line."""
        self._log(job, only_missing=False)

    def complete(self, job: Job) -> None:
        """Log a finished job unless the logs hold it: its results line and its status line
        each once, by (config_id, budget). A resumed master hands every journaled result here,
        so a crash between the journal and the logs costs the logs nothing."""
        self._log(job, only_missing=True)

    def _log(self, job: Job, only_missing: bool) -> None:
        self.open()
        if job.id not in self.config_ids:
            if not only_missing:
                logger.warning("job %r finished before its configuration was logged; logging "
                               "it now without config_info", job.id)
            self.new_config(job.id, job.kwargs["config"], job.kwargs.get("config_info") or {})
        status = final_status(job)
        result = job.result if status is JobStatus.SUCCESS else None
        budget, key = job.kwargs["budget"], _key(job.id, job.kwargs["budget"])
        lines = {self.results_fn: [job.id, budget, _complete_timestamps(job.timestamps), result,
                                   job.exception],
                 self.statuses_fn: [job.id, budget, {"status": status.name,
                                                     "attempt": job.attempt,
                                                     "worker": job.worker_name}]}
        with self._lock:
            for path, line in lines.items():
                if not (only_missing and key in self._logged[path]):
                    self._append(path, line)
                    self._logged[path].add(key)

    def _append(self, path: Path, record: list[Any]) -> None:
        self._files[path].write(jsonable(record), sync=self.fsync)


def logged_results_to_HBS_result(directory: str | os.PathLike[str]) -> Result:
    """Load the logs of a run (live or finished, ultrarun's or HpBandSter's).

    An unreadable line is skipped with a warning, ``HB_config`` inferred (docs/results.md).

    Args:
        directory (str | PathLike): The directory the result logger wrote into.

    Returns:
        Result: The run's [Result][ultrarun.results.Result].

    Raises:
        FileNotFoundError: The directory holds no ``configs.json``.
    """
    directory = Path(directory)
    config_fn = directory / CONFIGS_FILE
    if not config_fn.exists():
        raise FileNotFoundError(f"{config_fn} not found: {directory} holds no ultrarun/HpBandSter "
                                "result logs (configs.json, results.json)")
    # Read in the order opposite to the logger's writes (a configuration, later its result, then
    # its status): a result logged while a live run is read then always finds its configuration.
    results = list(read_json_lines(directory / RESULTS_FILE))
    statuses: dict[tuple[ConfigId, float], JobStatus] = {}
    for line_no, line in read_json_lines(directory / STATUSES_FILE):
        try:
            statuses[(_config_id(line[0]), line[1])] = JobStatus(line[2]["status"])
        except (IndexError, KeyError, TypeError, ValueError):
            logger.warning("%s:%d: not a status line, skipped", directory / STATUSES_FILE, line_no)
    data: dict[ConfigId, ConfigRecord] = {}
    for line_no, line in read_json_lines(config_fn):
        if not isinstance(line, list) or len(line) not in (2, 3):
            logger.warning("%s:%d: expected [config_id, config, config_info], skipped", config_fn, line_no)
            continue
        data[_config_id(line[0])] = ConfigRecord(line[1], line[2] if len(line) == 3 else "N/A")

    for line_no, line in results:
        if not isinstance(line, list) or len(line) < 5:
            logger.warning("%s:%d: expected 5 elements, skipped", directory / RESULTS_FILE, line_no)
            continue
        config_id, budget, time_stamps, result, exception = line[:5]
        config_id = _config_id(config_id)
        if config_id not in data:
            logger.warning("%s:%d: config %r is not in %s", directory / RESULTS_FILE, line_no,
                           config_id, CONFIGS_FILE)
            data[config_id] = ConfigRecord(config={})
        data[config_id].add(budget, time_stamps, result, exception, statuses.get((config_id, budget)))
    return Result([data])


def read_configspace(directory: str | os.PathLike[str]) -> Any:
    """The run's configuration space from ``configspace.json``, or None where there is none
    (HpBandSter's logs) or it cannot be read (with a warning)."""
    path = Path(directory) / CONFIGSPACE_FILE
    if not path.is_file():
        return None
    from ConfigSpace import ConfigurationSpace

    try:
        return ConfigurationSpace.from_json(path)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        logger.warning("%s: not a configuration space (%s); parameters drawn on linear axes",
                       path, exc)
        return None


def _complete_timestamps(stamps: Mapping[str, float]) -> dict[str, float]:
    """All three time stamps, since HpBandSter's reader needs them: a missing one takes its neighbour's."""
    out = {k: stamps[k] for k in TIMESTAMP_KEYS if stamps.get(k) is not None}
    out.setdefault("finished", time.time())
    out.setdefault("started", out.get("submitted", out["finished"]))
    out.setdefault("submitted", out["started"])
    return {k: float(out[k]) for k in TIMESTAMP_KEYS}


def _keys(path: Path, key: Any) -> set:
    """``key(line)`` of every line of a log that has one (lines that are not lists of such
    keys, written by hand or torn, are skipped)."""
    keys = set()
    for _, line in read_json_lines(path):
        try:
            keys.add(key(line))
        except (IndexError, KeyError, TypeError):
            continue
    return keys


def _key(config_id: Any, budget: Any) -> tuple:
    """What identifies a results or status line: (config_id, budget), as the logs hold them."""
    return _config_id(config_id), float(budget) if type(budget) in (int, float) else budget


def _config_id(raw: Any) -> ConfigId:
    """Config ids are lists in JSON and tuples in memory."""
    return tuple(raw) if isinstance(raw, list) else raw
