"""A machine whose every name and value is markup: what an untrusted spec can
put in front of the inspector. It fails CC1, so its counterexample (and so
every name) is shown by the player too.

Names are built as a ``MachineSpec`` directly: the YAML loader and the
Registry only accept identifiers as names, a hand-made spec need not.
"""

from __future__ import annotations

from convergent.spec.model import (
    Assignment,
    Event,
    Invariant,
    MachineSpec,
    Predicate,
    StateView,
    Var,
)

MACHINE = "<script>window.__pwned_machine=1</script>"
VAR = "<img src=x onerror=\"window.__pwned_var=1\">"
A = "<b>a</b>"
Q = "q\"&'<script>window.__pwned_value=1</script>"
EVENT = "<svg onload=\"window.__pwned_event=1\">"
INVARIANT = "</td><script>window.__pwned_inv=1</script>"
MARKERS = ("__pwned_machine", "__pwned_var", "__pwned_value", "__pwned_event",
           "__pwned_inv")


def hostile_spec() -> MachineSpec:
    v = Var.enum(VAR, A, Q)
    flag = Var.boolean("flag")

    def holds(s: StateView) -> bool:
        return not (s["flag"] and s[v] == Q)

    def repair(s: StateView) -> StateView:
        return s.set("flag", False)

    def guard(s: StateView) -> bool:
        return not s["flag"]

    return MachineSpec(
        MACHINE, (v, flag),
        (Invariant(INVARIANT, Predicate(fn=holds, text="holds"),
                   Assignment(fn=repair, text="repair")),),
        (Event(EVENT, Assignment(fn=lambda s: s.set(v, Q), text="apply"),
               Predicate(fn=guard, text="guard")),
         Event("set_flag", Assignment(fn=lambda s: s.set("flag", True), text="apply"))),
        ((EVENT, "set_flag"),), {VAR: A, "flag": False})
