"""Small helpers shared by the repositories: error wrapping and JSON cleaning."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from raksha.store.engine import describe
from raksha.store.errors import StoreError


@contextmanager
def db_errors(what: str) -> Iterator[None]:
    """Turn a database failure into a one-line StoreError naming what was being done."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"{what}: {describe(exc)}") from None


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def clean_json(value: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A JSON-safe copy of `value` (numpy scalars become Python numbers)."""
    try:
        text = json.dumps(dict(value), default=_plain, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from None
    result: dict[str, Any] = json.loads(text)
    return result


def clean_distribution(dist: Mapping[str, Any], what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in dist.items():
        number = float(value)
        if not math.isfinite(number):
            raise StoreError(f"{what}[{key!r}] is not a finite number")
        out[str(key)] = number
    return out
