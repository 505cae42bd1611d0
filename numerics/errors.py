"""Errors raised by the numerics, and the checks that raise them: one-line messages that name the problem."""
from __future__ import annotations

import math
import numbers


class NumericsError(ValueError):
    """A request the numerics cannot carry out (bad device, teacher, option); the message says why."""


class TrainingDiverged(NumericsError):
    """The loss became non-finite or grew past a trainer's divergence factor times its initial value.

    Carries the trainer's name, the step and the loss where it happened, and the curves recorded
    up to that step, so a caller can still report the partial run.
    """

    def __init__(self, trainer: str, step: int, loss: float, curves: dict):
        super().__init__(f"{trainer} training diverged at step {step} (loss {loss:.3g}); try a smaller learning rate")
        self.trainer, self.step, self.loss, self.curves = trainer, step, loss, curves


def check_int(value, what: str, low: int = 1) -> int:
    """An integer ≥ low (numpy integers too, never a bool or a float), or a one-line NumericsError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise NumericsError(f"{what} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def check_number(value, what: str, low: float = 0.0, high: float = math.inf, *, low_open: bool = False) -> float:
    """A finite real number in [low, high] (or (low, high] with low_open), or a one-line NumericsError naming it."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value) \
        and (value > low if low_open else value >= low) and value <= high
    if not ok:
        left = "(" if low_open else "["
        bounds = f"in {left}{low:g}, {high:g}]" if math.isfinite(high) else f"{'>' if low_open else '≥'} {low:g}"
        raise NumericsError(f"{what} must be a finite number {bounds}, got {value!r}")
    return float(value)


def check_choice(value, what: str, choices) -> str:
    """One of `choices`, or a one-line NumericsError listing them."""
    if value not in choices:
        raise NumericsError(f"unknown {what} {value!r} (choose {', '.join(map(str, choices))})")
    return value
