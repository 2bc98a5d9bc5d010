"""Loads the functions' handlers from their folders, as Lambda would, under unique names."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from typing import Any

from . import template


def load(function_name: str) -> Callable[[dict[str, Any], Any], Any]:
    """The handler of template function `function_name` (e.g. 'ConnectorsFunction')."""
    mount_layers()
    fn = template.functions()[function_name]
    module_file, _, attribute = fn.handler.rpartition(".")
    path = template.ROOT / fn.code_uri / f"{module_file.replace('.', '/')}.py"
    module_name = f"_function_{function_name}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    handler: Callable[[dict[str, Any], Any], Any] = getattr(module, attribute)
    return handler


def mount_layers() -> None:
    """Put the template's layers on the import path, as Lambda mounts them under /opt/python."""
    for layer in template.resources("AWS::Serverless::LayerVersion").values():
        path = str(template.ROOT / layer["Properties"]["ContentUri"])
        if path.rstrip("/") not in (p.rstrip("/") for p in sys.path):
            sys.path.append(path)
