"""Errors raised by the numerics: one-line messages that name the problem."""
from __future__ import annotations


class NumericsError(ValueError):
    """A request the numerics cannot carry out (bad device, teacher, option); the message says why."""


class TrainingDiverged(NumericsError):
    """The loss became non-finite or grew past `DIVERGENCE_FACTOR` times its initial value.

    Carries the trainer's name, the step and the loss where it happened, and the curves recorded
    up to that step, so a caller can still report the partial run.
    """

    def __init__(self, trainer: str, step: int, loss: float, curves: dict):
        super().__init__(f"{trainer} training diverged at step {step} (loss {loss:.3g}); try a smaller learning rate")
        self.trainer, self.step, self.loss, self.curves = trainer, step, loss, curves
