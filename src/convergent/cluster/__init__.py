"""Verification past one machine: enumeration sharded over a Dask cluster.

``check_sharded(spec, client)`` gives the same report as whole enumeration
for machines whose step tables do not fit one host (2^30 states and more):
see docs/cluster.md for the model (what is shipped, memory per worker,
scaling, failure handling). Needs the ``cluster`` extra (dask.distributed).
"""

from __future__ import annotations

from ..engine.shard import ShardError, ShardPlan, analyze_sharded
from .check import check_sharded

__all__ = ["ShardError", "ShardPlan", "analyze_sharded", "check_sharded"]
