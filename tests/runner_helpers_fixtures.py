"""Fixtures shared by the runner and evaluator tests (imported by them; not a conftest).

``dask_client`` is one real local cluster of worker processes per test module: starting one
takes about a second, so the tests of a module share it.
"""
from __future__ import annotations

from typing import Any, Iterator

import pytest


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    # Give up on a task after its worker died twice, so the LOST tests are quick.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
    try:
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
