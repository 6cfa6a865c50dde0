"""The pure secretSchema mapping (reference §8.3): schema + Secret data -> env, files, ctx."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bobrapet.engine.secrets import SecretProblem, effective_bindings, resolve_step_secrets
from bobrapet.execution.secrets import SecretFiles, StepSecrets


def secret(**data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": encoded}


CREDS = secret(token="tok-123456", user="alice")


def resolve(
    schema: dict[str, Any],
    bindings: dict[str, str] | None = None,
    secrets: dict[str, Any] | None = None,
) -> StepSecrets:
    return resolve_step_secrets(
        bindings={"api": "api-creds"} if bindings is None else bindings,
        schema=schema,
        secrets={"api-creds": CREDS} if secrets is None else secrets,
        namespace="default",
        template="http",
    )


def problem(schema: dict[str, Any], **kw: Any) -> SecretProblem:
    with pytest.raises(SecretProblem) as info:
        resolve(schema, **kw)
    return info.value


def test_env_with_prefix_and_expected_keys() -> None:
    schema = {"api": {"mountType": "env", "envPrefix": "API_", "expectedKeys": ["token", "user"]}}
    out = resolve(schema)
    assert dict(out.env) == {
        "API_token": "tok-123456",
        "API_user": "alice",
        "BUBU_SECRET_api": "env:API_",
        "BUBU_SECRET_api_NAME": "api-creds",
    }
    assert out.files == ()
    assert out.wire() == {"api": {"token": "tok-123456", "user": "alice"}}


def test_env_with_expected_keys_delivers_only_those_keys() -> None:
    schema = {"api": {"envPrefix": "API_", "expectedKeys": ["token"]}}  # mountType defaults to env
    out = resolve(schema, secrets={"api-creds": secret(token="tok-123456", extra="hidden-value")})
    assert "API_extra" not in out.env and out.env["API_token"] == "tok-123456"
    assert out.wire() == {"api": {"token": "tok-123456"}}


def test_env_default_prefix_is_the_logical_name_and_all_keys_without_expected_keys() -> None:
    out = resolve({"api": {"mountType": "env"}})
    assert out.env["api_token"] == "tok-123456" and out.env["api_user"] == "alice"
    assert out.env["BUBU_SECRET_api"] == "env:api_"


def test_file_mount_is_the_mount_path_rerooted_and_holds_every_key() -> None:
    out = resolve({"api": {"mountType": "file", "mountPath": "/var/run/api/", "expectedKeys": ["token"]}})
    assert out.files == (SecretFiles("api", "var/run/api", {"token": "tok-123456", "user": "alice"}, True),)
    assert dict(out.env) == {"BUBU_SECRET_api_NAME": "api-creds"}  # file: descriptor set by the executor
    assert out.wire() == {"api": {"token": "tok-123456", "user": "alice"}}


def test_file_mount_default_path() -> None:
    out = resolve({"api": {"mountType": "file"}})
    assert out.files[0].path == "etc/bubu/secrets/api"


def test_both_mounts_files_and_variables_and_keeps_the_env_descriptor() -> None:
    out = resolve({"api": {"mountType": "both", "envPrefix": "API_", "expectedKeys": ["token"]}})
    assert out.env["API_token"] == "tok-123456" and "API_user" not in out.env
    assert out.env["BUBU_SECRET_api"] == "env:API_"
    assert out.files[0].descriptor is False and set(out.files[0].values) == {"token", "user"}
    assert out.wire() == {"api": {"token": "tok-123456", "user": "alice"}}


def test_string_data_and_no_bindings() -> None:
    raw = {"kind": "Secret", "stringData": {"token": "plain-text"}}
    out = resolve({"api": {}}, secrets={"api-creds": raw})
    assert out.wire() == {"api": {"token": "plain-text"}}
    assert not resolve({"api": {}}, bindings={})  # optional and unbound: nothing delivered


def test_step_bindings_override_the_engram_per_logical_name() -> None:
    merged = effective_bindings({"api": "engram-creds", "db": "db-creds"}, {"api": "step-creds"})
    assert merged == {"api": "step-creds", "db": "db-creds"}
    assert effective_bindings(None, None) == {}


def test_missing_secret_is_reference_not_found_and_names_no_value() -> None:
    exc = problem({"api": {}}, secrets={"api-creds": None})
    assert exc.reason == "ReferenceNotFound"
    assert "Secret 'default/api-creds' bound to secret 'api' not found" in exc.message


def test_missing_expected_key() -> None:
    exc = problem({"api": {"expectedKeys": ["token", "password", "pin"]}})
    assert exc.reason == "InvalidConfiguration"
    assert "has no key 'password', 'pin'; the template expects: token, password, pin" in exc.message
    assert "tok-123456" not in exc.message


def test_missing_expected_key_also_for_file_mounts() -> None:
    assert problem({"api": {"mountType": "file", "expectedKeys": ["pin"]}}).reason == "InvalidConfiguration"


def test_required_secret_must_be_bound() -> None:
    exc = problem({"api": {"required": True}}, bindings={})
    assert exc.reason == "InvalidConfiguration"
    assert "EngramTemplate 'http' requires secret 'api'" in exc.message


def test_binding_not_declared_by_the_template() -> None:
    exc = problem({"db": {}})
    assert exc.reason == "InvalidConfiguration"
    assert "secret 'api' is bound but EngramTemplate 'http' does not declare it" in exc.message


@pytest.mark.parametrize(
    ("data", "schema", "text"),
    [
        ({"data": {"token": "!!"}}, {"api": {}}, "key 'token' is not base64-encoded UTF-8 text"),
        (secret(**{"../evil": "x"}), {"api": {"mountType": "file"}}, "not a valid Secret key"),
        (secret(token="abcd"), {"api": {"mountType": "file", "mountPath": "/../.."}}, "mountPath"),
        (secret(token="a\0b"), {"api": {}}, "NUL byte"),
        (secret(token="abcd"), {"api": {"envPrefix": "A=B"}}, "envPrefix 'A=B'"),
    ],
)
def test_bad_secret_data_or_mounts(data: dict[str, Any], schema: dict[str, Any], text: str) -> None:
    exc = problem(schema, secrets={"api-creds": data})
    assert exc.reason == "InvalidConfiguration" and text in exc.message


def test_two_secrets_may_not_collide() -> None:
    bindings = {"a": "api-creds", "b": "api-creds"}
    env = {"a": {"envPrefix": "X_"}, "b": {"envPrefix": "X_"}}
    assert "both set variable X_token" in problem(env, bindings=bindings).message
    files = {"a": {"mountType": "file", "mountPath": "/s"}, "b": {"mountType": "file", "mountPath": "/s/"}}
    assert "both mounted at '/s'" in problem(files, bindings=bindings).message


def test_repr_never_shows_values() -> None:
    out = resolve({"api": {"mountType": "both"}})
    assert "tok-123456" not in repr(out) and "alice" not in repr(out)
    assert out.redaction_terms() == ("tok-123456", "alice")
