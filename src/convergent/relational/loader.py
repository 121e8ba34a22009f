"""``load_schema("module_or_path:Name")``: find a schema for ``convergent check``.

The target is a module (``pkg.states:Schema``) or a file (``states.py:Schema``)
and an attribute of it holding a ``Schema``, a ``{name: State}`` mapping, or a
function of no arguments returning either. Importing runs the module's code:
load only files you trust.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

from .errors import SchemaError, SchemaLoadError
from .schema import Schema

__all__ = ["load_schema"]


def _split(target: str) -> tuple[str, str]:
    if not isinstance(target, str) or ":" not in target:
        raise SchemaLoadError(f"target {target!r} (expected 'module_or_path:Name', "
                              "e.g. 'states.py:Schema' or 'app.states:Schema')")
    where, _, name = target.rpartition(":")
    if not where or not name.isidentifier():
        raise SchemaLoadError(f"target {target!r} (expected 'module_or_path:Name' where Name "
                              "is an attribute name)")
    return where, name


def _import_file(path: Path) -> ModuleType:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"_convergent_schema_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise SchemaLoadError(f"cannot import {str(path)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SchemaError:
        sys.modules.pop(module_name, None)
        raise
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise SchemaLoadError(f"importing {str(path)!r} failed: {exc!r}") from exc
    return module


def _import(where: str) -> ModuleType:
    path = Path(where)
    if where.endswith(".py") or path.is_file():
        if not path.is_file():
            raise SchemaLoadError(f"no such file: {where!r}")
        return _import_file(path)
    try:
        return importlib.import_module(where)
    except SchemaError:
        raise
    except ImportError as exc:
        raise SchemaLoadError(f"cannot import module {where!r}: {exc}") from exc
    except Exception as exc:
        raise SchemaLoadError(f"importing {where!r} failed: {exc!r}") from exc


def load_schema(target: str) -> Schema:
    """Import ``module_or_path:Name`` and return the schema it names.

    Raises:
        SchemaLoadError: the target cannot be imported or holds no schema.
        SchemaError: the schema it builds is malformed.
    """
    where, name = _split(target)
    module = _import(where)
    try:
        value = getattr(module, name)
    except AttributeError:
        raise SchemaLoadError(f"{where!r} has no attribute {name!r}") from None
    if callable(value) and not isinstance(value, (Schema, Mapping, type)):
        try:
            value = value()
        except SchemaError:
            raise
        except TypeError as exc:
            raise SchemaLoadError(f"{target}: calling {name}() failed: {exc}") from exc
    if isinstance(value, Schema):
        return value
    if isinstance(value, Mapping):
        return Schema.from_dict(value, name=name)
    raise SchemaLoadError(f"{target} is {type(value).__name__}, expected a Schema, a "
                          "{name: State} mapping, or a function returning one")
