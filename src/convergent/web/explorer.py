"""The reachable state graph, one page and one state at a time.

States are listed in breadth-first order from the initial state (the order
the engine found them), filtered by a small query language::

    status=paid inventory=0        every condition holds (spaces or commas)
    status!=shipped                a var differs from a value
    #12  or  12                    the state with that id

A query is untrusted input: its size is bounded, names and values are checked
against the machine's vars, and a bad one is a ``QueryError`` naming what is
wrong (the API answers 400 with that message).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.check import Analysis
from ..spec.model import Var
from ..viz.stepper import Stepper
from .views import state_json, transition_json

__all__ = ["Explorer", "NoReachableGraph", "QueryError"]

MAX_QUERY = 400
MAX_PAGE = 200
MAX_PREDECESSORS = 50
_TOKEN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(!=|=)\s*(.+)$")


class QueryError(ValueError):
    """A state query or a page request that cannot be answered as asked."""


class NoReachableGraph(QueryError):
    """The machine has no reachable graph to explore: its repairs loop (WFC fails)."""

    def __init__(self) -> None:
        super().__init__("there is no reachable graph: normalization does not terminate "
                         "(WFC fails)")


@dataclass(frozen=True)
class _Cond:
    var: int
    digit: int
    equal: bool


def _tokens(query: str) -> list[str]:
    """Conditions split on spaces and commas; quotes keep a value with spaces
    whole (``status='on hold'``); spaces around ``=``/``!=`` are allowed."""
    lex = shlex.shlex(re.sub(r"\s*(!=|=)\s*", r"\1", query), posix=True)
    lex.whitespace = " \t\r\n,"
    lex.whitespace_split = True
    lex.commenters = ""
    try:
        return list(lex)
    except ValueError as exc:
        raise QueryError(f"cannot read the query: {exc}") from None


def _value(var: Var, text: str) -> int:
    if var.kind == "bool":
        if text.lower() not in ("true", "false"):
            raise QueryError(f"{var.name}={text!r} (expected true or false)")
        return int(text.lower() == "true")
    if var.kind == "int":
        try:
            return var.digit(int(text))
        except ValueError:
            raise QueryError(f"{var.name}={text!r} (expected an int in "
                             f"[{var.lo}, {var.hi}])") from None
    try:
        return var.digit(text)
    except ValueError:
        raise QueryError(f"{var.name}={text!r} (expected one of "
                         f"{', '.join(map(str, var.values))})") from None


class Explorer:
    """Pages, search and per-state detail over an analysis' reachable set."""

    def __init__(self, analysis: Analysis, stepper: Stepper) -> None:
        if analysis.reach is None or analysis.step is None:
            raise NoReachableGraph()
        self.an = analysis
        self.st = stepper
        self.reach = np.asarray(analysis.reach, dtype=np.int64)
        self.in_reach = np.zeros(stepper.size, dtype=bool)
        self.in_reach[self.reach] = True

    # ------------------------------------------------------------ query

    def parse(self, query: str) -> tuple[list[_Cond], int | None]:
        if len(query) > MAX_QUERY:
            raise QueryError(f"query of {len(query)} characters (at most {MAX_QUERY})")
        names = {v.name: i for i, v in enumerate(self.st.vars)}
        conds: list[_Cond] = []
        sid = None
        for token in _tokens(query):
            if re.fullmatch(r"#?\d+", token):
                sid = int(token.lstrip("#"))
                if not 0 <= sid < self.st.size:
                    raise QueryError(f"state id {sid} is outside [0, {self.st.size})")
                continue
            m = _TOKEN.match(token)
            if m is None:
                raise QueryError(f"cannot read {token!r} (expected var=value, var!=value "
                                 "or a state id)")
            name, op, text = m.groups()
            if name not in names:
                raise QueryError(f"unknown var {name!r} (known: {', '.join(names)})")
            i = names[name]
            conds.append(_Cond(i, _value(self.st.vars[i], text), op == "="))
        return conds, sid

    def matching(self, query: str) -> np.ndarray:
        """Reachable ids matching ``query``, in breadth-first order."""
        conds, sid = self.parse(query)
        ids = self.reach
        if sid is not None:
            ids = ids[ids == sid]
        for c in conds:
            var = self.st.vars[c.var]
            digits = (ids // self.st.strides[c.var]) % var.size
            ids = ids[(digits == c.digit) == c.equal]
        return ids

    def page(self, query: str = "", page: int = 0, size: int = 50) -> dict[str, Any]:
        if not 1 <= size <= MAX_PAGE:
            raise QueryError(f"size={size} (expected 1..{MAX_PAGE})")
        if page < 0:
            raise QueryError(f"page={page} (expected >= 0)")
        ids = self.matching(query)
        total = int(len(ids))
        chunk = ids[page * size:(page + 1) * size]
        return {
            "query": query, "page": page, "size": size, "total": total,
            "pages": max(1, -(-total // size)), "reachable": int(len(self.reach)),
            "initial": int(self.an.initial_id or 0),
            "states": [{"id": int(s), "values": self.st.decode(int(s))} for s in chunk],
        }

    # ------------------------------------------------------------ one state

    def path(self, sid: int) -> list[dict[str, Any]]:
        """The breadth-first path from the initial state (events and states)."""
        assert self.an.parent is not None and self.an.parent_event is not None
        out: list[dict[str, Any]] = []
        cur = sid
        while len(out) <= len(self.reach):
            p = int(self.an.parent[cur])
            if p < 0:
                break
            e = int(self.an.parent_event[cur])
            out.append({"event": self.st.events[e], "id": cur})
            cur = p
        return out[::-1]

    def state(self, sid: int) -> dict[str, Any]:
        sid = self.st.check_id(sid)
        reachable = bool(self.in_reach[sid])
        transitions = [transition_json(self.st, self.st.apply(e, sid))
                       for e in range(len(self.st.events))]
        preds: list[dict[str, Any]] = []
        if reachable:
            assert self.an.step is not None
            for e, name in enumerate(self.st.events):
                src = self.reach[self.an.step[e][self.reach] == sid]
                for s in src[:MAX_PREDECESSORS - len(preds)].tolist():
                    if s != sid:
                        preds.append({"event": name, "id": int(s)})
                if len(preds) >= MAX_PREDECESSORS:
                    break
        return {
            **state_json(self.st, sid),
            "reachable": reachable,
            "initial": sid == self.an.initial_id,
            "initial_id": int(self.an.initial_id or 0),
            "enabled": [t["event"] for t in transitions if t["fired"]],
            "transitions": transitions,
            "path": self.path(sid) if reachable else None,
            "predecessors": preds,
        }
