"""The symbolic method decides every small machine as enumeration does."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings

from convergent.spec import loads_spec

from .agree import agree
from .linear import LinearMachine, linear_machines

_SETTINGS = dict(deadline=None, database=None, derandomize=True,
                 suppress_health_check=list(HealthCheck))


def _run(n: int) -> Counter[str]:
    seen: Counter[str] = Counter()

    @settings(max_examples=n, **_SETTINGS)  # type: ignore[arg-type]
    @given(linear_machines())
    def one(gm: LinearMachine) -> None:
        seen[agree(loads_spec(gm.to_yaml()))] += 1

    one()
    return seen


def test_agreement_on_random_linear_machines() -> None:
    seen = _run(60)
    assert seen["pass"] >= 3 and seen["fail"] >= 3, seen


@pytest.mark.slow
def test_agreement_on_hundreds_of_machines() -> None:
    seen = _run(400)
    # the generator must reach every outcome, or agreement proves little
    assert seen["pass"] >= 20 and seen["fail"] >= 20, seen
    assert seen["build_error"] >= 1 and seen["wfc"] >= 1, seen
