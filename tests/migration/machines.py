"""Machine pairs for the migration tests: named pairs that land in each class
under each delivery model, and a Hypothesis strategy of small random pairs."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from convergent.engine.check import analyze
from convergent.migration.build import make_migration
from convergent.migration.model import Migration
from convergent.spec import loads_spec
from convergent.spec.model import MachineSpec


def spec(text: str) -> MachineSpec:
    return loads_spec(text, "<test>")


# ---------------------------------------------------------------- named pairs

ACCOUNT_V1 = """
machine: account
vars: {balance: {int: [0, 4]}, frozen: bool}
events:
  deposit: {apply: {balance: balance + 1}}
  withdraw: {guard: not frozen and balance > 0, apply: {balance: balance - 1}}
  freeze: {apply: {frozen: true}}
independent: [[deposit, freeze]]
"""

# online under causal (tier derived by an invariant; withdraw renamed debit)
ACCOUNT_V2 = """
machine: account
vars: {balance: {int: [0, 4]}, frozen: bool, tier: {enum: [basic, gold]}}
invariants:
  - {name: tier, holds: (tier == gold) == (balance >= 3),
     repair: {tier: "if balance >= 3 then gold else basic"}}
events:
  deposit: {apply: {balance: balance + 1}}
  debit: {guard: not frozen and balance > 0, apply: {balance: balance - 1}}
  freeze: {apply: {frozen: true}}
independent: [[deposit, freeze]]
"""

# barrier under causal: v2's deposit also counts deposits, the map starts at 0
ACCOUNT_V2_COUNTING = """
machine: account
vars: {balance: {int: [0, 4]}, frozen: bool, deposits: {int: [0, 9]}}
events:
  deposit: {apply: {balance: balance + 1, deposits: deposits + 1}}
  withdraw: {guard: not frozen and balance > 0, apply: {balance: balance - 1}}
  freeze: {apply: {frozen: true}}
independent: [[deposit, freeze]]
"""

# unsafe under causal: set/mark commute where v2 starts (x true) but not
# where the map lands (x false)
FLAG_V1 = """
machine: flag
vars: {x: bool}
events:
  set: {apply: {x: true}}
"""
FLAG_V2 = """
machine: flag
vars: {x: bool, y: bool}
initial: {x: true}
events:
  set: {apply: {x: true}}
  mark: {guard: not x, apply: {y: true}}
independent: [[set, mark]]
"""

# every pair commutes and is idempotent: online everywhere
BITS_V1 = """
machine: bits
vars: {a: bool, b: bool}
events:
  seta: {apply: {a: true}}
  setb: {apply: {b: true}}
"""
BITS_V2 = """
machine: bits
vars: {a: bool, b: bool, both: bool}
invariants:
  - {name: both, holds: both == (a and b), repair: {both: a and b}}
events:
  seta: {apply: {a: true}}
  setb: {apply: {b: true}}
"""
# barrier everywhere: v2's seta also sets c, which the map starts at false
BITS_V2_MARKING = """
machine: bits
vars: {a: bool, b: bool, c: bool}
events:
  seta: {apply: {a: true, c: true}}
  setb: {apply: {b: true}}
"""

# a counter: every pair commutes, inc is not idempotent: online under
# exactly-once and causal, unsafe under at-least-once
COUNT_V1 = """
machine: count
vars: {n: {int: [0, 3]}, on: bool}
events:
  inc: {apply: {n: n + 1}}
  turn_on: {apply: {on: true}}
"""
COUNT_V2 = """
machine: count
vars: {n: {int: [0, 3]}, on: bool, big: bool}
invariants:
  - {name: big, holds: big == (n >= 2), repair: {big: n >= 2}}
events:
  inc: {apply: {n: n + 1}}
  turn_on: {apply: {on: true}}
"""

# v1 does not converge without causal order (a/b), but the map forgets which
# came last: the switch absorbs it (online under exactly-once)
LAST_V1 = """
machine: last
vars: {x: {enum: [none, p, q]}}
events:
  a: {apply: {x: p}}
  b: {apply: {x: q}}
independent: []
"""
LAST_V2 = """
machine: last
vars: {touched: bool}
events:
  a: {apply: {touched: true}}
  b: {apply: {touched: true}}
"""

# barrier under causal, through PAIRS-MIXED alone: v1 lets x and x2 run
# concurrently; in v2 x2 clears a once c is set (by the v2-only event g, which
# may run concurrently with x). A v1 x in flight and a v2 x2 after g then
# diverge; the switch itself (DS) and v2's own pairs are fine.
SPLIT_V1 = """
machine: split
vars: {a: bool, b: bool}
events:
  x: {apply: {a: true}}
  x2: {apply: {b: true}}
"""
SPLIT_V2 = """
machine: split
vars: {a: bool, b: bool, c: bool}
events:
  x: {apply: {a: true}}
  x2: {apply: {b: true, a: a and not c}}
  g: {apply: {c: true}}
independent: [[x, g]]
"""

# v1's a/b do not commute and the map keeps x; v2 makes them no-ops (so v2
# commutes): without causal order the v1 replicas disagree at the cut.
LAST_KEPT_V2 = """
machine: last
vars: {x: {enum: [none, p, q]}}
events:
  a: {apply: {x: x}}
  b: {apply: {x: x}}
"""
# the map forgets which of a/b came last, but c copies it into y first: the
# disagreement shows one event after the swapped pair (the closure's suffix)
LAST_C_V1 = """
machine: lastc
vars: {x: {enum: [none, p, q]}, y: bool}
events:
  a: {apply: {x: p}}
  b: {apply: {x: q}}
  c: {apply: {y: x == p}}
independent: []
"""
LAST_C_V2 = """
machine: lastc
vars: {touched: bool, y: bool}
events:
  a: {apply: {touched: true}}
  b: {apply: {touched: true}}
  c: {apply: {y: true}}
"""

NAMED: dict[str, tuple[str, str, dict[str, Any], dict[str, str | None]]] = {
    "account": (ACCOUNT_V1, ACCOUNT_V2,
                {"tier": "if balance >= 3 then gold else basic"}, {"withdraw": "debit"}),
    "account_counting": (ACCOUNT_V1, ACCOUNT_V2_COUNTING, {"deposits": "0"}, {}),
    "flag": (FLAG_V1, FLAG_V2, {"y": "false"}, {}),
    "bits": (BITS_V1, BITS_V2, {"both": "false"}, {}),
    "bits_marking": (BITS_V1, BITS_V2_MARKING, {"c": "false"}, {}),
    "count": (COUNT_V1, COUNT_V2, {"big": "false"}, {}),
    "last": (LAST_V1, LAST_V2, {"touched": "x != none"}, {}),
    "split": (SPLIT_V1, SPLIT_V2, {"c": "false"}, {}),
    "last_kept": (LAST_V1, LAST_KEPT_V2, {}, {}),
    "last_c": (LAST_C_V1, LAST_C_V2, {"touched": "x != none"}, {}),
}

#: the class each named pair lands in, per delivery model
EXPECTED: dict[str, dict[str, str]] = {
    "account": {"exactly-once": "unsafe", "at-least-once": "unsafe", "causal": "online"},
    "account_counting": {"exactly-once": "unsafe", "at-least-once": "unsafe",
                         "causal": "barrier"},
    "flag": {"exactly-once": "unsafe", "at-least-once": "unsafe", "causal": "unsafe"},
    "bits": {"exactly-once": "online", "at-least-once": "online", "causal": "online"},
    "bits_marking": {"exactly-once": "barrier", "at-least-once": "barrier",
                     "causal": "barrier"},
    "count": {"exactly-once": "online", "at-least-once": "unsafe", "causal": "online"},
    "last": {"exactly-once": "online", "at-least-once": "online", "causal": "online"},
    "split": {"exactly-once": "unsafe", "at-least-once": "unsafe", "causal": "barrier"},
    "last_kept": {"exactly-once": "unsafe", "at-least-once": "unsafe", "causal": "barrier"},
    "last_c": {"exactly-once": "unsafe", "at-least-once": "unsafe", "causal": "barrier"},
}


def named(name: str) -> Migration:
    v1, v2, smap, events = NAMED[name]
    return make_migration(spec(v1), spec(v2), smap, events)


def independent_sets(mig: Migration) -> tuple[set[frozenset[str]], set[frozenset[str]]]:
    """The verified independent pairs of both machines, as the classifier reads them."""
    return ({frozenset(p) for p in analyze(mig.v1).independent},
            {frozenset(p) for p in analyze(mig.v2).independent})


# ---------------------------------------------------------------- random pairs

_POOL: dict[str, tuple[str | None, dict[str, str]]] = {
    "inc": (None, {"x": "x + 1"}),
    "zero": (None, {"x": "0"}),
    "seton": (None, {"y": "true"}),
    "flip": (None, {"y": "not y"}),
    "dec": ("y", {"x": "x - 1"}),
    "cap": ("x >= 1", {"y": "true"}),
    "two": ("not y", {"x": "2"}),
}


def _yaml(name: str, vars_: dict[str, str], events: dict[str, tuple[str | None, dict[str, str]]],
          independent: list[tuple[str, str]], invariants: list[str],
          initial: dict[str, str]) -> str:
    lines = [f"machine: {name}", "vars:"]
    lines += [f"  {k}: {v}" for k, v in vars_.items()]
    if initial:
        lines.append("initial: {" + ", ".join(f"{k}: {v}" for k, v in initial.items()) + "}")
    if invariants:
        lines.append("invariants:")
        lines += [f"  - {inv}" for inv in invariants]
    lines.append("events:")
    for ev, (guard, app) in events.items():
        body = ", ".join(f'{k}: "{v}"' for k, v in app.items())
        g = f'guard: "{guard}", ' if guard else ""
        lines.append(f"  {ev}: {{{g}apply: {{{body}}}}}")
    pairs = ", ".join(f"[{a}, {b}]" for a, b in independent)
    lines.append(f"independent: [{pairs}]")
    return "\n".join(lines) + "\n"


def _commuting(text: str) -> list[tuple[str, str]]:
    an = analyze(spec(text), independent="auto")
    return [(a, b) for a, b in an.independent]


@st.composite
def random_migrations(draw: st.DrawFn) -> Migration:
    """Small random pairs: v1 over x in [0, 2] and y, two or three events;
    v2 mutates it (a new var z, an event changed, renamed, removed or added,
    an invariant, another initial state); a map of simple expressions. Both
    machines pass their own checks (independent pairs: a random subset of
    the pairs that commute)."""
    names = sorted(_POOL)
    ev1 = draw(st.lists(st.sampled_from(names), min_size=2, max_size=3, unique=True))
    events1 = {e: _POOL[e] for e in ev1}
    vars1 = {"x": "{int: [0, 2]}", "y": "bool"}
    base1 = _yaml("m", vars1, events1, [], [], {})
    pairs1 = [p for p in _commuting(base1) if draw(st.booleans())]
    v1_text = _yaml("m", vars1, events1, pairs1, [], {})

    vars2 = dict(vars1)
    with_z = draw(st.booleans())
    if with_z:
        vars2["z"] = "bool"
    events2: dict[str, tuple[str | None, dict[str, str]]] = dict(events1)
    emap: dict[str, str | None] = {}
    change = draw(st.sampled_from(["none", "apply", "z", "rename", "remove", "add"]))
    target = draw(st.sampled_from(ev1))
    if change == "apply":
        events2[target] = _POOL[draw(st.sampled_from(names))]
    elif change == "z" and with_z:
        guard, app = events2[target]
        events2[target] = (guard, {**app, "z": "true"})
    elif change == "rename":
        events2[target + "2"] = events2.pop(target)
        emap[target] = target + "2"
    elif change == "remove":
        del events2[target]
    elif change == "add":
        extra = [n for n in names if n not in events2]
        if extra:
            new = draw(st.sampled_from(extra))
            events2[new] = _POOL[new]
    invariants = []
    if with_z and draw(st.booleans()):
        invariants.append('{name: zy, holds: "z implies y", repair: {z: false}}')
    initial2 = {"x": "1"} if draw(st.booleans()) else {}
    base2 = _yaml("m", vars2, events2, [], invariants, initial2)
    pairs2 = [p for p in _commuting(base2) if draw(st.booleans())]
    v2_text = _yaml("m", vars2, events2, pairs2, invariants, initial2)

    smap: dict[str, str] = {}
    smap["x"] = draw(st.sampled_from(["x", "x", "min(x + 1, 2)", "0", "2 - x"]))
    smap["y"] = draw(st.sampled_from(["y", "y", "not y", "x >= 1"]))
    if with_z:
        smap["z"] = draw(st.sampled_from(["false", "y", "x == 2"]))
    return make_migration(spec(v1_text), spec(v2_text), smap, emap)
