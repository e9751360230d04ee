"""CSV files: the one writer behind ``Result.to_csv`` and the evaluators' CSV logs.

See docs/results.md and docs/runners.md for the columns each of them writes.
"""
from __future__ import annotations

import csv
import os
from typing import Any, Mapping, Sequence


def write_csv(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]],
              columns: Sequence[str] | None = None, append: bool = False) -> list[str]:
    """Write ``rows`` (dicts) to ``path`` and return the columns.

    The columns are ``columns``, or every key of ``rows`` in order of appearance; other keys are
    left out, missing ones and None are empty cells. The header is written unless appending. The
    file is closed (so flushed) before this returns.
    """
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "a" if append else "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns), extrasaction="ignore")
        if not append:
            writer.writeheader()
        writer.writerows(rows)
    return list(columns)
