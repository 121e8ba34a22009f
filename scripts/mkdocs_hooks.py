"""mkdocs hooks of the documentation site (``hooks:`` in mkdocs.yml).

The pages are written to read well on GitHub too, so they link to files of
the repository outside ``docs/`` (``../examples/gsm_order.yaml``), which a
site built from ``docs/`` alone does not have. Such a link is rewritten to
the file on the repository's web page (``repo_url``/blob/main/...) when the
file exists; a link to a file that does not exist is left as written, so
``mkdocs build --strict`` still fails on it.

Pages that other work is adding (``OPTIONAL_PAGES``) may be absent: their
nav entries are then dropped with a notice instead of failing the build.
Any other page missing from ``docs/`` still fails a strict build.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.convergent")

#: pages listed in the nav that may not exist yet (written in parallel)
OPTIONAL_PAGES = frozenset({"migration.md", "cluster.md"})

_LINK = re.compile(r"\]\((?P<target>\.\./[^)\s#]+)(?P<anchor>#[^)\s]*)?\)")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _prune(nav: Any, present: set[str]) -> Any:
    """``nav`` without the optional pages that are not in ``present``."""
    if isinstance(nav, str):
        return None if nav in OPTIONAL_PAGES and nav not in present else nav
    if isinstance(nav, dict):
        out = {}
        for title, value in nav.items():
            kept = _prune(value, present)
            if kept not in (None, []):
                out[title] = kept
        return out or None
    if isinstance(nav, list):
        return [k for k in (_prune(item, present) for item in nav) if k not in (None, [])]
    return nav


def on_config(config: Any) -> Any:
    docs = Path(config["docs_dir"])
    present = {name for name in OPTIONAL_PAGES if (docs / name).is_file()}
    for name in sorted(OPTIONAL_PAGES - present):
        log.info("docs/%s is not written yet: left out of the nav", name)
    if config.get("nav"):
        config["nav"] = _prune(config["nav"], present)
    return config


def _repository_link(config: Any, page_uri: str, target: str) -> str | None:
    """The web address of ``target`` (relative to the page) when it names an
    existing file of the repository outside docs/, else None."""
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(page_uri), target))
    if not resolved.startswith("../") or resolved.startswith("../../"):
        return None
    path = resolved[3:]
    root = Path(config["config_file_path"]).resolve().parent
    docs = Path(config["docs_dir"]).resolve()
    local = (docs.parent / path).resolve()
    if root not in (local, *local.parents) or not local.exists():
        return None
    repo = str(config.get("repo_url") or "").rstrip("/")
    if not repo:
        return None
    kind = "tree" if local.is_dir() else "blob"
    return f"{repo}/{kind}/main/{path}"


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    out = []
    in_code = False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and "](../" in line:
            def swap(m: re.Match[str]) -> str:
                url = _repository_link(config, page.file.src_uri, m.group("target"))
                if url is None:
                    return m.group(0)
                return f"]({url}{m.group('anchor') or ''})"
            line = _LINK.sub(swap, line)
        out.append(line)
    return "\n".join(out)
