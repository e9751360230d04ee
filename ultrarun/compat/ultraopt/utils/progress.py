"""``ultraopt.utils.progress``: progress context managers ``callback(initial, total)``.

The object a context yields has ``update(n)`` and a settable ``postfix``; the master sets the
best loss there after every job.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator


class _Silent:
    postfix: Any = None

    def update(self, n: int = 1) -> None:
        pass


@contextlib.contextmanager
def no_progress_callback(initial: int, total: int) -> Iterator[_Silent]:
    yield _Silent()


@contextlib.contextmanager
def tqdm_progress_callback(initial: int, total: int) -> Iterator[Any]:
    from tqdm import tqdm

    with tqdm(total=total, initial=initial, unit="trial", dynamic_ncols=True,
              postfix={"best loss": "?"}) as bar:
        yield bar


default_callback = tqdm_progress_callback

__all__ = ["no_progress_callback", "tqdm_progress_callback", "default_callback"]
