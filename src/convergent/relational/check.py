"""``convergent check module_or_path:Name`` for relational schemas, as one call.

The CLI owns argument parsing and printing; this returns the exit code and the
text so the contract stays in one place: 0 pass, 1 findings, 2 bad input.
"""

from __future__ import annotations

import json

from ..errors import ConvergentError
from .loader import load_schema
from .static import MAX_STATES, analyze

__all__ = ["check"]

EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


def check(target: str, *, as_json: bool = False, max_states: int = MAX_STATES
          ) -> tuple[int, str]:
    """Load ``target`` (``states.py:Schema``), analyze it, and render the report.

    Returns:
        ``(exit_code, output)``: 0 when no finding is an error, 1 otherwise, 2
        when the schema cannot be loaded, is malformed, or is too large.
    """
    try:
        report = analyze(load_schema(target), max_states=max_states)
    except ConvergentError as exc:
        if as_json:
            return EXIT_BAD_INPUT, json.dumps({"version": 1, "kind": "relational",
                                               "error": type(exc).__name__,
                                               "message": str(exc)}, indent=2)
        return EXIT_BAD_INPUT, f"error: {exc}"
    text = json.dumps(report.to_dict(), indent=2) if as_json else report.render_text()
    return (EXIT_PASS if report.ok else EXIT_FAIL), text
