"""Turning a template's ``secretSchema`` and the bound Secrets into a step's secrets (§8.3).

Pure: the caller fetches the Secret objects (in the StepRun's namespace — the namespace the
step "runs" in, reference §10.2: secrets never cross namespaces) and this module decides.

Rules, per logical secret bound through ``Engram.spec.secrets`` or the step's ``secrets``
(the step wins per logical name, §8.1 layer 4), by its ``secretSchema`` entry:

* ``mountType: env`` (also the default): one variable ``<envPrefix><key>`` per key —
  ``envPrefix`` defaults to ``<logical name>_`` (verbatim, as the Go operator's
  ``fmt.Sprintf("%s_", logicalName)``); with ``expectedKeys`` only those keys, else every key
  of the Secret (``envFrom`` with a prefix); plus ``BUBU_SECRET_<name>=env:<prefix>``;
* ``mountType: file``: one file per key of the Secret in a directory that is the template's
  ``mountPath`` (default ``/etc/bubu/secrets/<name>``) re-rooted under the attempt's private
  directory; ``BUBU_SECRET_<name>=file:<that directory>`` (set by the executor, which picks
  the directory);
* ``mountType: both``: the files and the variables; ``BUBU_SECRET_<name>`` stays
  ``env:<prefix>`` (in the Go operator's pod spec the env entry comes last and wins);
* always ``BUBU_SECRET_<name>_NAME=<Secret name>``;
* ``ctx.secrets[<name>]`` holds every key delivered (by variable or file).

Checked at launch, before any code runs, in a fixed order (sorted logical names):
a ``required`` secret must be bound and every bound name must be declared
(``InvalidConfiguration``); the Secret must exist (``ReferenceNotFound``); its data must be
base64 of UTF-8 text, it must hold every ``expectedKeys`` entry, keys must be valid Secret
keys, mount directories must stay inside the attempt directory and differ, and two secrets
must not set the same variable (all ``InvalidConfiguration``). Messages name Secrets, keys
and fields, never values.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from bobrapet.api.conditions import Reason
from bobrapet.execution.secrets import SECRET_ENV_PREFIX, SecretFiles, StepSecrets

DEFAULT_MOUNT_ROOT = "/etc/bubu/secrets"
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class SecretProblem(Exception):
    """The step's secrets cannot be delivered; ``reason`` is a §1.14 reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def effective_bindings(
    engram_secrets: Mapping[str, Any] | None, step_secrets: Mapping[str, Any] | None
) -> dict[str, str]:
    """Logical name -> Secret name: the Engram's bindings overridden per name by the step's."""
    merged: dict[str, str] = {}
    for layer in (engram_secrets, step_secrets):
        for logical, secret in (layer or {}).items():
            if isinstance(secret, str) and secret:
                merged[str(logical)] = secret
    return merged


def _definition(schema: Mapping[str, Any], logical: str) -> Mapping[str, Any]:
    value = schema.get(logical)
    return value if isinstance(value, Mapping) else {}


def secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's keys as text: base64 ``data`` decoded, ``stringData`` (if still present) on top.

    Raises ``ValueError`` naming the key when a value is not base64 of UTF-8 text.
    """
    out: dict[str, str] = {}
    data = secret.get("data")
    for key, raw in (data if isinstance(data, Mapping) else {}).items():
        try:
            out[str(key)] = base64.b64decode(str(raw), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ValueError(f"key '{key}' is not base64-encoded UTF-8 text") from None
    string_data = secret.get("stringData")
    for key, value in (string_data if isinstance(string_data, Mapping) else {}).items():
        out[str(key)] = str(value)
    return out


def _mount_dir(logical: str, definition: Mapping[str, Any], where: str) -> str:
    declared = definition.get("mountPath") or f"{DEFAULT_MOUNT_ROOT}/{logical}"
    relative = posixpath.normpath(str(declared)).lstrip("/")
    if relative in ("", ".") or relative == ".." or relative.startswith("../"):
        raise SecretProblem(
            Reason.INVALID_CONFIGURATION,
            f"{where}: mountPath '{declared}' must name a directory (no '..'); fix the template's "
            f"secretSchema.{logical}.mountPath",
        )
    return relative


def _check_keys(keys: Mapping[str, str], what: str) -> None:
    for key in keys:
        if not _SECRET_KEY.match(key) or key in (".", ".."):
            raise SecretProblem(
                Reason.INVALID_CONFIGURATION,
                f"{what} has key '{key}', which is not a valid Secret key (letters, digits, '-', '_', '.')",
            )


def resolve_step_secrets(
    *,
    bindings: Mapping[str, str],
    schema: Mapping[str, Any] | None,
    secrets: Mapping[str, Mapping[str, Any] | None],
    namespace: str,
    template: str,
    template_kind: str = "EngramTemplate",
    binding_hint: str = "the Engram's spec.secrets or the step's secrets",
) -> StepSecrets:
    """The :class:`StepSecrets` of a step; raises :class:`SecretProblem`.

    ``bindings`` comes from :func:`effective_bindings`; ``schema`` is the EngramTemplate's
    ``spec.secretSchema``; ``secrets`` maps each bound Secret name to the Secret object, or
    ``None`` when it does not exist in ``namespace``. ``template_kind`` and ``binding_hint``
    word the messages for another owner of bindings (an Impulse and its ImpulseTemplate).
    """
    schema = schema if isinstance(schema, Mapping) else {}
    for logical in sorted(schema):
        if _definition(schema, logical).get("required") and logical not in bindings:
            raise SecretProblem(
                Reason.INVALID_CONFIGURATION,
                f"{template_kind} '{template}' requires secret '{logical}'; bind it to a Secret in "
                f"{binding_hint}",
            )
    values: dict[str, dict[str, str]] = {}
    env: dict[str, str] = {}
    env_owner: dict[str, str] = {}
    files: list[SecretFiles] = []
    dirs: dict[str, str] = {}
    for logical in sorted(bindings):
        secret_name = bindings[logical]
        where = f"secret '{logical}' (Secret '{namespace}/{secret_name}')"
        if logical not in schema:
            declared = ", ".join(sorted(schema)) or "none"
            raise SecretProblem(
                Reason.INVALID_CONFIGURATION,
                f"secret '{logical}' is bound but {template_kind} '{template}' does not declare it in "
                f"secretSchema (declared: {declared}); remove the binding or fix the template",
            )
        definition = _definition(schema, logical)
        secret = secrets.get(secret_name)
        if secret is None:
            raise SecretProblem(
                Reason.REFERENCE_NOT_FOUND,
                f"Secret '{namespace}/{secret_name}' bound to secret '{logical}' not found; create it "
                "(bobrapet apply -f with kind: Secret) or fix the binding",
            )
        try:
            data = secret_data(secret)
        except ValueError as exc:
            raise SecretProblem(Reason.INVALID_CONFIGURATION, f"{where}: {exc}") from None
        expected = [str(k) for k in definition.get("expectedKeys") or ()]
        missing = [k for k in expected if k not in data]
        if missing:
            raise SecretProblem(
                Reason.INVALID_CONFIGURATION,
                f"Secret '{namespace}/{secret_name}' (secret '{logical}') has no key "
                f"{', '.join(repr(k) for k in missing)}; the template expects: {', '.join(expected)}",
            )
        mount = str(definition.get("mountType") or "env")
        if mount not in ("env", "file", "both"):
            mount = "env"  # admission rejects other values; the Go operator's default case
        delivered: dict[str, str] = {}
        if mount in ("env", "both"):
            prefix = str(definition.get("envPrefix") or f"{logical}_")
            if "=" in prefix or "\0" in prefix:
                raise SecretProblem(
                    Reason.INVALID_CONFIGURATION,
                    f"envPrefix '{prefix}' of secret '{logical}' cannot start a variable name (no '='); "
                    f"fix the template's secretSchema.{logical}.envPrefix",
                )
            keys = {k: data[k] for k in expected} if expected else data
            _check_keys(keys, f"Secret '{namespace}/{secret_name}'")
            for key, value in keys.items():
                name = prefix + key
                if name in env_owner:
                    raise SecretProblem(
                        Reason.INVALID_CONFIGURATION,
                        f"secrets '{env_owner[name]}' and '{logical}' both set variable {name}; "
                        "give them different envPrefix values in the template's secretSchema",
                    )
                if "\0" in value:
                    raise SecretProblem(
                        Reason.INVALID_CONFIGURATION,
                        f"{where}: key '{key}' contains a NUL byte and cannot be an environment variable",
                    )
                env_owner[name] = logical
                env[name] = value
            env[f"{SECRET_ENV_PREFIX}{logical}"] = f"env:{prefix}"
            delivered.update(keys)
        if mount in ("file", "both"):
            _check_keys(data, f"Secret '{namespace}/{secret_name}'")
            relative = _mount_dir(logical, definition, where)
            if relative in dirs:
                raise SecretProblem(
                    Reason.INVALID_CONFIGURATION,
                    f"secrets '{dirs[relative]}' and '{logical}' are both mounted at '/{relative}'; "
                    "give them different mountPath values in the template's secretSchema",
                )
            dirs[relative] = logical
            descriptor = mount == "file"
            files.append(SecretFiles(name=logical, path=relative, values=dict(data), descriptor=descriptor))
            delivered.update(data)
        env[f"{SECRET_ENV_PREFIX}{logical}_NAME"] = secret_name
        values[logical] = delivered
    return StepSecrets(values=values, env=env, files=tuple(files))
