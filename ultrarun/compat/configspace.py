"""Search spaces written for ConfigSpace 0.4 (HpBandSter's and ultraopt's era) under ConfigSpace 1.x.

:func:`accept_legacy_spaces` makes ConfigSpace's hyperparameter constructors take what that
code writes, converted, with one :class:`LegacySpaceWarning` per hyperparameter saying what was
converted:

- a number given as a string (``default_value='1e-2'``) becomes the number;
- ``q=`` (quantization, gone from ConfigSpace 1.x) is dropped: values are no longer rounded to
  multiples of ``q``;
- a normal hyperparameter without ``lower``/``upper`` is bounded to ``mu`` +- 4 ``sigma``
  (where 0.4 put 99.99 % of its samples; with ``log=True`` on the log scale, as 0.4 did).

Constructor calls ConfigSpace 1.x accepts are passed through unchanged. The compat packages call
it when they are imported; it is idempotent. Configurations reach ``compute`` as plain Python
values in any case (ultrarun's optimizers and workers convert numpy scalars, and a categorical's
value is the object its choices list). See docs/migrating.md.
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Callable

from ConfigSpace import hyperparameters as _hp

#: how many sigmas either side of mu bound a normal hyperparameter given without bounds
NORMAL_SIGMAS = 4

_NUMERIC = ("lower", "upper", "default_value", "mu", "sigma", "alpha", "beta")
_PATCHED = "_ultrarun_accepts_legacy"


class LegacySpaceWarning(UserWarning):
    """A hyperparameter written for ConfigSpace 0.4 was converted for ConfigSpace 1.x."""


def _number(value: str, integer: bool) -> Any:
    number = float(value)
    return int(number) if integer and number.is_integer() else number


def _convert(cls: type, args: tuple, kwargs: dict) -> tuple[dict, list[str]]:
    """Keyword arguments ConfigSpace 1.x takes, and what was changed to get them."""
    # ConfigSpace 0.4's positional orders (a call 1.x took never gets here)
    if "Normal" in cls.__name__:
        names = ["name", "mu", "sigma", "default_value", "q", "log", "lower", "upper"]
    elif "Beta" in cls.__name__:
        names = ["name", "alpha", "beta", "lower", "upper", "default_value", "q", "log"]
    else:
        names = ["name", "lower", "upper", "default_value", "q", "log"]
    bound = dict(zip(names, args))
    for key in bound.keys() & kwargs.keys():
        raise TypeError(f"{cls.__name__}() got multiple values for argument {key!r}")
    kwargs = {**bound, **kwargs}
    integer = issubclass(cls, _hp.IntegerHyperparameter)
    changed = []
    for key in _NUMERIC:
        value = kwargs.get(key)
        if isinstance(value, str):
            try:
                kwargs[key] = _number(value, integer and key != "sigma")
            except ValueError:
                raise ValueError(f"{cls.__name__} {kwargs.get('name')!r}: {key}={value!r} is "
                                 "not a number") from None
            changed.append(f"{key}={value!r} (a string) read as {kwargs[key]!r}")
    if "q" in kwargs:
        q = kwargs.pop("q")
        if q is not None:
            changed.append(f"q={q!r} dropped (ConfigSpace 1.x has no quantization; values are "
                           "not rounded to multiples of q)")
    if "Normal" in cls.__name__ and ("lower" not in kwargs or "upper" not in kwargs):
        mu, sigma = float(kwargs["mu"]), float(kwargs["sigma"])
        low, high = mu - NORMAL_SIGMAS * sigma, mu + NORMAL_SIGMAS * sigma
        if kwargs.get("log"):  # 0.4's mu and sigma were on the log scale, 1.x's are not
            low, high = math.exp(low), math.exp(high)
            kwargs["mu"], kwargs["sigma"] = math.exp(mu), math.exp(mu) * sigma
            changed.append(f"log-scale mu={mu:g}, sigma={sigma:g} read as mu={kwargs['mu']:g}, "
                           f"sigma={kwargs['sigma']:g} on the value scale")
        if integer:
            low, high = math.floor(low), math.ceil(high)
        kwargs.setdefault("lower", low)
        kwargs.setdefault("upper", high)
        changed.append(f"no bounds: bounded to [{kwargs['lower']:g}, {kwargs['upper']:g}] "
                       f"(mu +- {NORMAL_SIGMAS} sigma)")
    return kwargs, changed


def _lenient(cls: type) -> None:
    original: Callable[..., None] = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            original(self, *args, **kwargs)
            return
        except (TypeError, ValueError) as exc:
            error = exc
        try:
            converted, changed = _convert(cls, args, kwargs)
        except KeyError:  # a required argument is missing: ConfigSpace's message says which
            raise error from None
        if not changed:
            raise error
        original(self, **converted)
        warnings.warn(f"{cls.__name__} {converted.get('name')!r} was written for ConfigSpace "
                      f"0.4 and converted: {'; '.join(changed)}", LegacySpaceWarning,
                      stacklevel=2)

    __init__.__dict__[_PATCHED] = True
    cls.__init__ = __init__


def accept_legacy_spaces() -> None:
    """Let ConfigSpace's numeric hyperparameters take ConfigSpace 0.4's arguments (see the
    module docstring). Idempotent."""
    for name in ("UniformFloatHyperparameter", "UniformIntegerHyperparameter",
                 "NormalFloatHyperparameter", "NormalIntegerHyperparameter",
                 "BetaFloatHyperparameter", "BetaIntegerHyperparameter"):
        cls = getattr(_hp, name, None)
        if cls is not None and not getattr(cls.__init__, _PATCHED, False):
            _lenient(cls)


__all__ = ["accept_legacy_spaces", "LegacySpaceWarning", "NORMAL_SIGMAS"]
