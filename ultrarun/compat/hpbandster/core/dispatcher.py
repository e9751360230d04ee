"""``hpbandster.core.dispatcher``: ``Dispatcher`` with HpBandSter's arguments, and ``Job``.

``run()`` blocks until ``shutdown()``, as HpBandSter's (start it in a thread); ``start()``
returns at once.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from ultrarun import dispatcher as _native
from ultrarun import job as _job
from ultrarun.compat import pyro_port


class Job(_job.Job):
    """HpBandSter's ``Job(id, **kwargs)``: ``id``, ``kwargs``, ``timestamps``, ``result``,
    ``exception``, ``worker_name``, plus ultrarun's ``status`` and ``attempt``."""

    def __init__(self, id: Any, **kwargs: Any):
        super().__init__(id=id, kwargs=kwargs)

    def __setstate__(self, state: dict) -> None:  # a Job pickled by HpBandSter
        fresh = _job.Job(id=state.get("id"), kwargs=state.get("kwargs", {}))
        self.__dict__.update({**fresh.__dict__, **state})
        if "status" not in state:
            self.status = _job.JobStatus.SUCCESS if self.result else _job.JobStatus.CRASHED


class Dispatcher(_native.Dispatcher):
    """An ultrarun dispatcher constructed with HpBandSter's arguments."""

    def __init__(self, new_result_callback: Callable[[Any], Any], run_id: Any = "0",
                 ping_interval: float = 10, nameserver: str = "localhost",
                 nameserver_port: int | None = None, host: str | None = None,
                 logger: logging.Logger | None = None,
                 queue_callback: Callable[[int], Any] | None = None, **kwargs: Any):
        super().__init__(new_result_callback, run_id, ping_interval, nameserver,
                         pyro_port(nameserver_port), host, queue_callback, logger=logger,
                         **kwargs)


__all__ = ["Dispatcher", "Job"]
