"""The parameterization of a linear RNN, shared by the derivation and the torch model.

One `Spec` says how the network is written and trained; `derivations` turns it into a
closed-form lag weighting, `numerics` turns the same object into a network, so the two cannot
disagree about what "convention B" or "standard parameterization" means.

Model (n hidden units, n_x inputs, n_y outputs), h_{-1} = 0:
  convention A: h_k = W h_{k-1} + F x_k,      ŷ_k = C h_k (+ D x_k)
  convention B: h_k = W h_{k-1} + F x_{k-1},  ŷ_k = C h_k (+ D x_k)
Parameterization (tilde entries iid N(0, 1)):
  ntk:      W = σ_W W̃/√n, F = σ_F F̃/√n_x, C = σ_C C̃/√n, D = σ_D D̃/√n_x; gradient flow on the
            tilde parameters, block X at rate λ_X.
  standard: entries drawn with the same variances; gradient flow on the raw entries at the
            global rate η/n (block X at λ_X η/n); the kernel is reported divided by n.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from fractions import Fraction

from .families import FamilyError, canonical, parse

BLOCKS = ("W", "F", "C", "D")
CONVENTIONS = ("A", "B")
PARAMETERIZATIONS = ("ntk", "standard")
# σ_F = σ_C = σ_D = 1 unless a command is told otherwise: the one default initialization scale
# of the blocks around W, for the derivation's evaluation points and the networks alike.
DEFAULT_SIGMAS = {"F": 1.0, "C": 1.0, "D": 1.0}
# Which width sets each block's fan-in: that is what the NTK scaling divides by.
FAN_IN = {"W": "n", "F": "n_x", "C": "n", "D": "n_x"}

SIGMA_NAMES = ("sigma_W", "sigma_F", "sigma_C", "sigma_D")
MAX_VALUE = 1e6  # σ's and λ's beyond this overflow float64 within a few lags: a typo, not a network
MAX_EVAL_LAGS = 10 ** 6  # a table longer than this is a typo, not a request


class SpecError(ValueError):
    """A spec that does not describe a network; the message names the problem."""


@dataclasses.dataclass(frozen=True)
class Spec:
    """How a linear RNN is parameterized and trained.

    rates: relative learning rate of each block, as exact decimal strings ("3", "0.5");
    blocks not listed have rate 1. With symbolic_rates the derivation keeps λ_X symbols.
    init: the initializer family of W, "NAME[:key=value,…]" (`derivations.families`), stored in
    canonical form with its defaults filled in.
    """

    param: str = "ntk"
    convention: str = "A"
    feedthrough: bool = True
    trained: tuple[str, ...] = BLOCKS
    rates: tuple[tuple[str, str], ...] = ()
    symbolic_rates: bool = False
    init: str = "gaussian"

    def __post_init__(self):
        try:
            object.__setattr__(self, "init", canonical(*parse(self.init)))
        except FamilyError as error:
            raise SpecError(str(error)) from None
        if self.param not in PARAMETERIZATIONS:
            raise SpecError(f"unknown parameterization {self.param!r} (choose ntk or standard)")
        if self.convention not in CONVENTIONS:
            raise SpecError(f"unknown convention {self.convention!r} (choose A or B)")
        trained = tuple(self.trained)
        for block in trained:
            if block not in BLOCKS:
                raise SpecError(f"unknown block {block!r} (blocks are W, F, C, D)")
        if "D" in trained and not self.feedthrough:
            if set(self.trained) != set(BLOCKS):  # D named explicitly
                raise SpecError("block D is trained but the feed-through is off")
            trained = tuple(b for b in trained if b != "D")
        if not trained:
            raise SpecError("no block is trained")
        rates = {}
        for block, value in self.rates:
            if block not in BLOCKS:
                raise SpecError(f"unknown block {block!r} in a rate (blocks are W, F, C, D)")
            try:
                rate = Fraction(str(value))
            except (ValueError, ZeroDivisionError):
                raise SpecError(f"rate of {block} is not a number: {value!r}") from None
            if rate <= 0:
                raise SpecError(f"rate of {block} must be positive, got {value} (freeze a block by leaving it out of the trained blocks)")
            if block not in trained:
                raise SpecError(f"a rate is given for {block}, which is not trained (trained: {','.join(b for b in BLOCKS if b in trained)}); "
                                "a frozen block has no rate")
            rates[block] = str(value)
        # Canonical order so equal specs hash equally.
        object.__setattr__(self, "trained", tuple(b for b in BLOCKS if b in trained))
        object.__setattr__(self, "rates", tuple((b, rates[b]) for b in BLOCKS if b in rates and rates[b] != "1"))

    @property
    def blocks(self) -> tuple[str, ...]:
        """The blocks the network has (D only with the feed-through)."""
        return BLOCKS if self.feedthrough else BLOCKS[:3]

    @property
    def frozen(self) -> tuple[str, ...]:
        return tuple(b for b in self.blocks if b not in self.trained)

    def rate(self, block: str) -> Fraction:
        """Relative rate λ_X of a block as an exact fraction (0 when frozen)."""
        if block not in self.trained:
            return Fraction(0)
        return Fraction(dict(self.rates).get(block, "1"))

    @property
    def family(self) -> str:
        """The initializer family's name."""
        return self.init.partition(":")[0]

    @property
    def init_params(self) -> dict[str, str]:
        """The family's parameters (defaults filled in; files with their content hash)."""
        return dict(item.split("=", 1) for item in filter(None, self.init.partition(":")[2].split(",")))

    @property
    def input_lag(self) -> int:
        """How many steps the input waits before entering the state: 0 (A) or 1 (B)."""
        return {"A": 0, "B": 1}[self.convention]

    def to_dict(self) -> dict:
        data = {
            "param": self.param,
            "convention": self.convention,
            "feedthrough": self.feedthrough,
            "trained": list(self.trained),
            "rates": {b: dict(self.rates).get(b, "1") for b in self.trained},
            "symbolic_rates": self.symbolic_rates,
        }
        if self.family != "gaussian":  # the Gaussian's dict (hashes, cache keys, generated headers) is as before
            data["init"] = self.init
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Spec":
        return cls(
            param=data["param"],
            convention=data["convention"],
            feedthrough=bool(data["feedthrough"]),
            trained=tuple(data["trained"]),
            rates=tuple((b, str(r)) for b, r in data.get("rates", {}).items()),
            symbolic_rates=bool(data.get("symbolic_rates", False)),
            init=data.get("init", "gaussian"),
        )

    def describe(self) -> str:
        rates = ", ".join(f"λ_{b}={'λ_' + b if self.symbolic_rates else dict(self.rates).get(b, '1')}" for b in self.trained)
        init = f", W from {self.init}" if self.family != "gaussian" else ""
        return (f"{self.param} parameterization, convention {self.convention}, "
                f"feed-through {'on' if self.feedthrough else 'off'}, trained {','.join(self.trained)} ({rates}){init}")

    def digest(self) -> str:
        """A short hash of the spec, for file names and caches."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


DEFAULT = Spec()


def parse_blocks(text: str) -> tuple[str, ...]:
    """'W,F,C' → ('W', 'F', 'C'): the blocks a spec trains, as the command line writes them."""
    blocks = tuple(b.strip() for b in text.split(",") if b.strip())
    for b in blocks:
        if b not in BLOCKS:
            raise SpecError(f"unknown block {b!r} (blocks are {', '.join(BLOCKS)})")
    return blocks


def parse_rates(items) -> tuple[tuple[str, str], ...]:
    """['W=3', 'C=0.5'] → (('W', '3'), ('C', '0.5')): relative rates as the command line writes them
    (the values are checked by `Spec`)."""
    rates: list[tuple[str, str]] = []
    for item in items:
        block, sep, value = item.partition("=")
        block = block.strip()
        if not sep or block not in BLOCKS:
            raise SpecError(f"{item!r} is not BLOCK=RATE with a block among {', '.join(BLOCKS)}")
        if block in dict(rates):
            raise SpecError(f"the rate of {block} is given twice")
        rates.append((block, value.strip()))
    return tuple(rates)


def parse_point(text: str) -> dict[str, float]:
    """'sigma_W=0.8,lambda_W=2' → the evaluation point of `derive --eval`, σ_F, σ_C, σ_D defaulting to
    the spec's (1); σ_W is required, every value in [0, MAX_VALUE], a λ positive."""
    values, seen = {f"sigma_{b}": v for b, v in DEFAULT_SIGMAS.items()}, set()
    for item in text.split(","):
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep or not (name in SIGMA_NAMES or name.startswith("lambda_") and name[7:] in BLOCKS):
            raise SpecError(f"{item!r} is not NAME=VALUE with NAME among {', '.join(SIGMA_NAMES)} or lambda_X")
        try:
            values[name] = float(number)
        except ValueError:
            raise SpecError(f"{name} is not a number: {number!r}") from None
        if name in seen:
            raise SpecError(f"{name} is given twice")
        seen.add(name)
        if not 0 <= values[name] <= MAX_VALUE:
            raise SpecError(f"{name} must be a number from 0 to {MAX_VALUE:g}, got {number.strip()}")
        if name.startswith("lambda_") and values[name] == 0:
            raise SpecError(f"{name} must be positive (freeze a block by leaving it out of --train)")
    if "sigma_W" not in values:
        raise SpecError("sigma_W is required")
    return values


def parse_lags(text: str) -> range:
    """'START:STOP' (or 'STOP') → range(START, STOP), STOP excluded."""
    start, sep, stop = text.partition(":")
    try:
        lo, hi = (int(start), int(stop)) if sep else (0, int(start))
    except ValueError:
        raise SpecError(f"{text!r} is not START:STOP (integers)") from None
    if lo < 0 or hi <= lo:
        raise SpecError(f"{text!r} is empty or negative; need 0 ≤ START < STOP")
    if hi - lo > MAX_EVAL_LAGS:
        raise SpecError(f"{text!r} asks for {hi - lo} lags; at most {MAX_EVAL_LAGS} are evaluated at once")
    return range(lo, hi)
