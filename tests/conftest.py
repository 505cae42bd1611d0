"""Shared test helpers."""
import dataclasses

import pytest
import torch

from numerics import Comparison, WhiteNoise

PROBLEM_FIELDS = {f.name for f in dataclasses.fields(WhiteNoise)}


def white_noise_run(teacher: str, **fields) -> tuple:
    """(WhiteNoise, Comparison) from one flat list of keywords: the problem's fields and the run's."""
    problem = {k: v for k, v in fields.items() if k in PROBLEM_FIELDS}
    run = {k: v for k, v in fields.items() if k not in PROBLEM_FIELDS}
    return WhiteNoise(teacher, **problem), Comparison(**run)


@pytest.fixture
def float64():
    """torch's default dtype float64 for one test (packed-against-alone equality at rounding level)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
