"""How a run is optimized, the same for every model: steps, rate, optimizer, schedule, gradient-norm
clip, tracked steps. Torch-free (torch loads when an optimizer is made), so experiments and the
command line can check and list them without it."""
from __future__ import annotations

import dataclasses

from ..errors import check_choice, check_int, check_number

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")  # cosine: lr·(1 + cos(π step/steps))/2, annealed to 0 at the last step


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Steps, Adam's (or SGD's) rate, its schedule, the gradient-norm clip (None: none) and the
    tracked steps (every `track_every` steps and the last; None: none). Checked when made."""

    steps: int
    lr: float
    optimizer: str = "adam"
    schedule: str = "constant"
    clip: float | None = None
    track_every: int | None = None

    def __post_init__(self):
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_choice(self.schedule, "learning-rate schedule", SCHEDULES)
        checked = {"steps": check_int(self.steps, "steps", 0), "lr": check_number(self.lr, "lr", 0.0, low_open=True),
                   "clip": None if self.clip is None else check_number(self.clip, "clip", 0.0, low_open=True),
                   "track_every": None if self.track_every is None else check_int(self.track_every, "track_every")}
        for name, value in checked.items():  # plain ints and floats, as a config records them
            object.__setattr__(self, name, value)

    def tracks(self, step: int) -> bool:
        return self.track_every is not None and (step % self.track_every == 0 or step == self.steps)

    def make_optimizer(self, params):
        import torch

        return (torch.optim.Adam if self.optimizer == "adam" else torch.optim.SGD)(params, lr=self.lr)

    def make_schedule(self, optimizer):
        """The learning-rate schedule's stepper, or None for a constant rate."""
        import torch

        if self.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(self.steps, 1))
        return None
