"""The relation resolver: which states a mutation activates and deactivates.

Pure functions over state indices, shared by the asyncio runtime and the
static checks, so both read exactly one definition of the semantics. The rules
follow the reference resolver step by step, including its order dependence:

1. ``states_to_set``: add = called + active, remove = active - called, set = called.
2. One hop of ``add`` relations, skipping states already active before the
   transition (unless ``multi``); for a remove mutation, a state's ``add`` never
   re-activates a state called for removal.
3. De-duplicate, then drop states whose ``require`` is missing, until stable.
4. Walk the list from the end; a state is *blocked* when another listed state
   removes it, unless that remover was itself blocked earlier in the walk (so
   called states win over implied and active ones).
5. Drop what the survivors remove, apply a second hop of ``add``, de-duplicate,
   check ``require`` again, and sort: by the ``require`` topology, then by
   ``after`` with a stable insertion sort (the reference's comparator is not a
   strict order, so the algorithm is part of the result).

Lists keep order because order decides handler order and, in step 4, the
outcome. ``trace``, when given, collects the reference's log lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import Schema

__all__ = ["ADD", "REMOVE", "SET", "Compiled", "accepted", "auto_candidates", "compile_schema",
           "resolve", "sort_states", "states_to_set"]

ADD, REMOVE, SET = 0, 1, 2
KIND_NAMES = ("add", "remove", "set")


@dataclass(frozen=True, slots=True, eq=False)
class Compiled:
    """A schema as index tables, built once per machine."""

    schema: Schema
    names: tuple[str, ...]
    index: dict[str, int]
    add: tuple[tuple[int, ...], ...]
    remove: tuple[frozenset[int], ...]
    removed_by: tuple[tuple[int, ...], ...]
    require: tuple[tuple[int, ...], ...]
    after: tuple[frozenset[int], ...]
    auto: tuple[bool, ...]
    multi: tuple[bool, ...]
    auto_states: tuple[int, ...]
    rank: tuple[int, ...]
    has_after: bool
    has_require: bool
    has_add: bool
    has_remove: bool
    require_cycle: tuple[str, ...]


def compile_schema(schema: Schema) -> Compiled:
    names = schema.names
    index = {n: i for i, n in enumerate(names)}
    states = [schema[n] for n in names]
    remove = tuple(frozenset(index[r] for r in s.remove) for s in states)
    removed_by = tuple(tuple(j for j in range(len(names)) if i in remove[j])
                       for i in range(len(names)))
    require = tuple(tuple(index[r] for r in s.require) for s in states)
    rank, cycle = _topology(names, require)
    return Compiled(
        schema=schema, names=names, index=index,
        add=tuple(tuple(index[a] for a in s.add) for s in states),
        remove=remove, removed_by=removed_by, require=require,
        after=tuple(frozenset(index[a] for a in s.after) for s in states),
        auto=tuple(s.auto for s in states), multi=tuple(s.multi for s in states),
        auto_states=tuple(i for i, s in enumerate(states) if s.auto),
        rank=rank,
        has_after=any(s.after for s in states),
        has_require=any(s.require for s in states),
        has_add=any(s.add for s in states),
        has_remove=any(s.remove for s in states),
        require_cycle=tuple(names[i] for i in cycle),
    )


def _topology(names: tuple[str, ...], require: tuple[tuple[int, ...], ...]
              ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Post-order DFS over ``require`` edges: required states rank first.

    States outside the graph rank -1 (before everything), as in the reference;
    a cycle leaves every state at -1 and is returned for reporting.
    """
    rank = [-1] * len(names)
    order: list[int] = []
    done: set[int] = set()
    onstack: list[int] = []

    def visit(node: int) -> tuple[int, ...]:
        if node in onstack:
            return tuple(onstack[onstack.index(node):])
        if node in done:
            return ()
        onstack.append(node)
        for dep in require[node]:
            cycle = visit(dep)
            if cycle:
                return cycle
        onstack.pop()
        done.add(node)
        order.append(node)
        return ()

    for start in range(len(names)):
        if require[start] and start not in done:
            cycle = visit(start)
            if cycle:
                return tuple(rank), cycle
    for pos, node in enumerate(order):
        rank[node] = pos
    return tuple(rank), ()


def states_to_set(kind: int, called: list[int], before: list[int]) -> list[int]:
    if kind == ADD:
        return called + before
    if kind == REMOVE:
        gone = set(called)
        return [s for s in before if s not in gone]
    return list(called)


def _uniq(states: list[int]) -> list[int]:
    return list(dict.fromkeys(states))


def _parse_add(c: Compiled, states: list[int], before: set[int], kind: int,
               called: list[int], trace: list[str] | None) -> list[int]:
    out = list(states)
    visited: set[int] = set()
    add = c.add
    multi = c.multi
    for s in states:
        adds = add[s]
        if not adds or (s in before and not multi[s]) or s in visited:
            continue
        if kind == REMOVE:
            adds = tuple(a for a in adds if a not in called)
            if not adds:
                continue
        out.extend(adds)
        visited.add(s)
    return out


def _parse_require(c: Compiled, states: list[int], trace: list[str] | None) -> list[int]:
    require = c.require
    missing: dict[int, list[int]] = {}
    while True:
        present = set(states)
        kept = []
        for s in states:
            reqs = require[s]
            if reqs:
                lack = [r for r in reqs if r not in present]
                if lack:
                    missing[s] = lack
                    continue
            kept.append(s)
        if len(kept) == len(states):
            break
        states = kept
    if missing and trace is not None:
        names = c.names
        trace.append("[reject] " + " ".join(
            f"{names[s]}(-{' -'.join(names[r] for r in lack)})" for s, lack in missing.items()))
    return states


def sort_states(c: Compiled, states: list[int]) -> list[int]:
    """Order for handlers: required states first, then ``after`` relations."""
    if len(states) < 2:
        return states
    if c.has_require:
        rank = c.rank
        states = sorted(states, key=rank.__getitem__)
    if c.has_after:
        after = c.after
        # insertion sort, element for element the reference's stable sort on
        # small slices; ``less(x, y)``: y is declared after x and x not after y
        for i in range(1, len(states)):
            j = i
            while j > 0:
                x, y = states[j], states[j - 1]
                if y in after[x] or x not in after[y]:
                    break
                states[j], states[j - 1] = y, x
                j -= 1
    return states


def resolve(c: Compiled, kind: int, called: list[int], before: list[int],
            trace: list[str] | None = None) -> list[int]:
    """The target states of a mutation, in handler order."""
    before_set = set(before)
    to_set = states_to_set(kind, called, before)
    if c.has_add:
        to_set = _parse_add(c, to_set, before_set, kind, called, trace)
    to_set = _uniq(to_set)
    if c.has_require:
        to_set = _parse_require(c, to_set, trace)

    if c.has_remove:
        present = set(to_set)
        blocked: set[int] = set()
        kept: list[int] = []
        removed_by = c.removed_by
        for s in reversed(to_set):
            blockers = [b for b in removed_by[s] if b in present and b not in blocked]
            if blockers:
                blocked.add(s)
                if trace is not None:
                    trace.append(f"[rel:remove] {c.names[s]} by "
                                 f"{' '.join(c.names[b] for b in blockers)}")
                continue
            kept.append(s)
        remove = c.remove
        gone: set[int] = set()
        for s in kept:
            gone |= remove[s]
    else:
        kept = to_set[::-1]
        gone = set()

    if c.has_add:
        kept = _parse_add(c, kept, before_set, kind, called, trace)
    if gone:
        kept = [s for s in kept if s not in gone]
    resolved = _uniq(kept)
    resolved.reverse()
    if c.has_require:
        resolved = _parse_require(c, resolved, trace)
    return sort_states(c, resolved)


def accepted(kind: int, called: list[int], targets: list[int], is_auto: bool) -> bool:
    """Relations accept a mutation when every called state is a target; auto
    mutations need only one; removals are always accepted."""
    if kind == REMOVE:
        return True
    target_set = set(targets)
    rejected = sum(1 for s in called if s not in target_set)
    if is_auto:
        return rejected < len(called)
    return rejected == 0


def auto_candidates(c: Compiled, active: list[int]) -> list[int]:
    """Auto states to try after a transition: inactive and not removed by an
    active state."""
    if not c.auto_states:
        return []
    active_set = set(active)
    blocked: set[int] = set()
    remove = c.remove
    for s in active:
        blocked |= remove[s]
    return [s for s in c.auto_states if s not in active_set and s not in blocked]
