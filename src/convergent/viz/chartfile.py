"""Tell a statechart file from a machine spec, and load a chart to draw it.

Both are YAML (or JSON) mappings: a machine spec names itself with a
top-level ``machine:`` key, a statechart with ``statechart:``. A file with
neither (or both) is refused with a message saying what each looks like.

A chart file may name functions (``call:`` actions, ``{call: name}``
guards, ``actor_guard:``) that only its Python code provides. A diagram
needs their names, not their code: each named function is replaced by a
placeholder that refuses to run, so any chart file can be drawn without
importing anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .errors import DiagramError

if TYPE_CHECKING:  # pragma: no cover
    from ..durable.chart import Chart

__all__ = ["FileKind", "file_kind", "function_names", "load_chart_file"]

FileKind = Literal["machine", "statechart"]

#: a file bigger than this is not sniffed (the loaders refuse it with their own message)
MAX_SNIFF_CHARS = 4 * 2**20


def _document(path: str) -> Any:
    """The parsed document, or None when it cannot be read or parsed (the
    loader that is then tried reports why, with a location)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    try:
        with open(path, encoding="utf-8-sig") as fh:
            text = fh.read(MAX_SNIFF_CHARS + 1)
    except (OSError, UnicodeDecodeError):
        return None
    if len(text) > MAX_SNIFF_CHARS:
        return None
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    try:
        return yaml.load(text)
    except (YAMLError, RecursionError, ValueError):
        return None


def file_kind(path: str | os.PathLike[str]) -> FileKind | None:
    """``"statechart"``, ``"machine"``, or None when the file cannot be
    parsed at all. Raises ``DiagramError`` for a parsed document that is
    neither."""
    name = os.fspath(path)
    doc = _document(name)
    if doc is None:
        return None
    keys = set(doc) if isinstance(doc, Mapping) else set()
    if "statechart" in keys and "machine" in keys:
        raise DiagramError(f"{name}: has both a 'machine' and a 'statechart' key: a file "
                           "is one machine spec or one statechart")
    if "statechart" in keys:
        return "statechart"
    if "machine" in keys:
        return "machine"
    if not isinstance(doc, Mapping):
        what = f"the document is a {type(doc).__name__}, not a mapping"
    elif not keys:
        what = "the mapping is empty"
    else:
        what = "its top-level keys are " + ", ".join(sorted(map(str, keys))[:8])
    raise DiagramError(f"{name}: neither a machine spec nor a statechart ({what}); a "
                       "machine spec starts with 'machine: NAME', a statechart with "
                       "'statechart: NAME'")


def function_names(doc: Any) -> set[str]:
    """Every function a chart document names (``call:`` and
    ``actor_guard:`` values), found without recursion."""
    found: set[str] = set()
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in ("call", "actor_guard") and isinstance(value, (str, int)):
                    found.add(str(value))
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _placeholder(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise DiagramError(f"function {name!r} is a placeholder: a chart loaded for a "
                           "diagram never runs its functions")
    refuse.__name__ = refuse.__qualname__ = name
    return refuse


def load_chart_file(path: str | os.PathLike[str]) -> Chart:
    """The chart in ``path``, its named functions replaced by placeholders.
    Raises ``ChartError`` (located) for a malformed chart."""
    from ..durable.loader import load_chart
    name = os.fspath(path)
    doc = _document(name)
    functions = {n: _placeholder(n) for n in function_names(doc)} if doc is not None else {}
    return load_chart(name, functions=functions)
