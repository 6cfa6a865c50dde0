"""Resolving ``"package.module:callable"`` entrypoints inside a warm worker.

Invariants: modules stay imported across steps; before each use the entrypoint's module file
is stat-ed and, when its mtime changed since it was (re)loaded, the module is reloaded (its
stale bytecode cache removed first) and its cached class instances are dropped. A class
entrypoint is instantiated once per worker, entrypoint and (config, secrets) -- so a step never
sees an instance initialised with another step's config -- ``init(config, secrets)`` is called
once per instance (an instance whose init failed is not cached), at most ``MAX_INSTANCES``
instances are kept (LRU), and the instance's ``process`` is returned. Import-time failures
of the user's module are ``EntrypointError`` (initialization_error).
Standard library only (runs in warm workers).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

Secrets = dict[str, dict[str, str]]
"""``ctx.secrets`` / ``init``'s second argument: logical name -> key -> value."""


class EntrypointError(Exception):
    """The entrypoint could not be loaded or initialised; ``error_type`` is the §9.3 type."""

    def __init__(self, message: str, error_type: str = "initialization_error") -> None:
        super().__init__(message)
        self.error_type = error_type


def _mtime(module: ModuleType) -> int | None:
    path = getattr(module, "__file__", None)
    if not path:
        return None
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        importlib.invalidate_caches()  # a module created after the directory was first listed
        return importlib.import_module(name)


def _fingerprint(config: dict[str, Any], secrets: Secrets) -> str:
    try:
        return json.dumps([config, secrets], sort_keys=True, separators=(",", ":"), default=repr)
    except (TypeError, ValueError):
        return repr((config, secrets))


def _initialised(cls: type, config: dict[str, Any], secrets: Secrets) -> Any:
    """``cls()`` then ``init(config, secrets)`` (sync or async); user failures -> EntrypointError."""
    from bobrapet.sdk.errors import StructuredError

    try:
        instance = cls()
        init = getattr(instance, "init", None)
        if callable(init):
            result = init(config, secrets)
            if hasattr(result, "__await__"):
                import asyncio

                asyncio.run(result)
    except StructuredError:
        raise
    except Exception as exc:
        raise EntrypointError(f"{cls.__name__}.init failed: {type(exc).__name__}: {exc}") from exc
    return instance


MAX_INSTANCES = 16  # class instances kept per worker (least recently used are dropped)


class EntrypointCache:
    """Per-worker cache of imported entrypoint modules and class instances."""

    def __init__(self) -> None:
        self._mtimes: dict[str, int | None] = {}
        self._instances: dict[str, Any] = {}

    def _module(self, name: str) -> ModuleType:
        module = sys.modules.get(name)
        if module is None or name not in self._mtimes:
            module = module or _import(name)
            self._mtimes[name] = _mtime(module)
            return module
        current = _mtime(module)
        if current != self._mtimes[name]:
            source = getattr(module, "__file__", None)
            if source and source.endswith(".py"):
                with contextlib.suppress(OSError, NotImplementedError, ValueError):
                    os.unlink(importlib.util.cache_from_source(source))
            module = importlib.reload(module)
            self._mtimes[name] = _mtime(module)
            prefix = f"{name}:"
            for key in [k for k in self._instances if k.startswith(prefix)]:
                del self._instances[key]
        return module

    def resolve(self, entrypoint: str, config: dict[str, Any], secrets: Secrets) -> Callable[..., Any]:
        """The callable to invoke as ``target(inputs, ctx)``."""
        module_name, sep, attr_path = entrypoint.partition(":")
        if not sep or not module_name or not attr_path:
            raise EntrypointError(f"invalid entrypoint {entrypoint!r}: expected 'package.module:callable'")
        try:
            module = self._module(module_name)
        except Exception as exc:  # ImportError, SyntaxError, or an error raised at import time
            raise EntrypointError(
                f"cannot import {module_name!r} (entrypoint {entrypoint!r}): {type(exc).__name__}: {exc}; "
                "modules are imported from PYTHONPATH and the engine's current directory"
            ) from exc
        target: Any = module
        for part in attr_path.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                message = f"entrypoint {entrypoint!r}: {module_name} has no attribute {attr_path!r}"
                raise EntrypointError(message) from None
        if isinstance(target, type):
            return self._instance(entrypoint, target, config, secrets)
        if not callable(target):
            raise EntrypointError(f"entrypoint {entrypoint!r} is not callable")
        return target  # type: ignore[no-any-return]

    def _instance(self, key: str, cls: type, config: dict[str, Any], secrets: Secrets) -> Callable[..., Any]:
        cache_key = f"{key}\x00{_fingerprint(config, secrets)}"
        instance = self._instances.pop(cache_key, None)
        if instance is None:
            instance = _initialised(cls, config, secrets)
            while len(self._instances) >= MAX_INSTANCES:
                del self._instances[next(iter(self._instances))]  # least recently used
        self._instances[cache_key] = instance
        process = getattr(instance, "process", None)
        if not callable(process):
            raise EntrypointError(
                f"entrypoint {key!r}: class {cls.__name__} has no process(inputs, ctx) method"
            )
        return process  # type: ignore[no-any-return]
