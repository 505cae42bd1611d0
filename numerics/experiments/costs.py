"""Refresh the planner's reference rates (numerics/pipeline/costs.json) from a reproduction's cells:

    python -m numerics.experiments.costs OUT "the machine, in words"

Run it after a quick reproduction from empty on the reference machine (the project's 2-core CPU), so
`rnnmemory reproduce --plan` sizes a run for users who have not run one yet (`numerics.pipeline.plan`).
"""
import sys

from ..pipeline.plan import write_costs
from .registry import REGISTRY

if __name__ == "__main__":
    write_costs(REGISTRY, sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
