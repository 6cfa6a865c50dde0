"""Operator configuration (reference §9.1 keys) for the embedded engine: which keys act, and how.

Invariants (pure: the caller reads the file):

* Keys are the flat dotted keys of the reference's ConfigMap (``timeout.default-step``,
  ``storyrun.queue.<name>.concurrency`` ...). Only keys that act embedded are offered
  (:data:`KEYS` plus the per-queue keys); a key of the reference that would be inert here is
  rejected with the reason (:func:`inert_reason`), any other key as unknown, listing the
  valid ones. Nothing is silently ignored.
* Values may be YAML scalars or strings (a ConfigMap holds strings): ``"3"`` and ``3`` are
  the same; durations are Go durations (``"5m"``) or numbers of seconds.
* :func:`parse_settings` turns a mapping into an :class:`EngineConfig` and an
  :class:`AdmissionConfig` (one loader for both), and records for every key whether its
  value came from the file or is the default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bobrapet.api.admission.config import AdmissionConfig
from bobrapet.api.durations import parse_duration
from bobrapet.engine.config import EMBEDDED_STORAGE, EngineConfig, QueueConfig
from bobrapet.storage.settings import StorageSettings

FILE = "file"
DEFAULT = "default"

_QUEUE_KEY = re.compile(r"^storyrun\.queue\.(?P<queue>[^.]+)\.(?P<field>[a-z-]+)$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUEUE_FIELDS = ("concurrency", "default-priority", "priority-aging-seconds")


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


# -- value parsers ----------------------------------------------------------------------------
def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise ValueError(f"expected a scalar, got {type(value).__name__}")
    return str(value).strip()


def _int(low: int | None = None, high: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("expected an integer, got a boolean")
        try:
            number = value if isinstance(value, int) else int(_text(value))
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
        if low is not None and number < low:
            raise ValueError(f"must be at least {low}, got {number}")
        if high is not None and number > high:
            raise ValueError(f"must be at most {high}, got {number}")
        return number

    return parse


def _seconds(minimum: float = 0.0, *, zero: bool = True) -> Callable[[Any], float]:
    """A duration (``"5m"``, ``"1.5s"``) or a number of seconds, as float seconds."""

    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("expected a duration such as 30s or 5m, got a boolean")
        if isinstance(value, int | float):
            seconds = float(value)
        else:
            text = _text(value)
            try:
                seconds = float(text)
            except ValueError:
                try:
                    seconds = parse_duration(text).total_seconds()
                except ValueError as err:
                    raise ValueError(f"expected a duration such as 30s or 5m ({err})") from None
        if seconds == 0 and zero:
            return 0.0
        if seconds < minimum or seconds <= 0:
            raise ValueError(f"must be a positive duration{f' of at least {minimum:g}s' if minimum else ''}")
        return seconds

    return parse


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value)
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {text!r}")
        return text

    return parse


def _offloaded_policy(value: Any) -> str:
    text = _text(value)
    if text == "inject":
        raise ValueError(
            "inject materializes offloaded data with a helper pod and exists only on Kubernetes; "
            "use controller (the engine hydrates in process) or error (fail the step)"
        )
    return _choice("controller", "error")(text)


def _provider(value: Any) -> str:
    return _choice("file", "s3", "none")(value)


# -- the offered keys -------------------------------------------------------------------------
Engine = dict[str, Any]
Admission = dict[str, Any]


@dataclass(frozen=True)
class Key:
    """One offered key: how to parse it, its default (display form) and what it sets."""

    name: str
    help: str
    parse: Callable[[Any], Any]
    default: Any
    apply: Callable[[Engine, Admission, Any], None]


def _engine(
    attr: str, transform: Callable[[Any], Any] = lambda v: v
) -> Callable[[Engine, Admission, Any], None]:
    def apply(engine: Engine, admission: Admission, value: Any) -> None:
        engine[attr] = transform(value)

    return apply


def _both(engine_attr: str, admission_attr: str) -> Callable[[Engine, Admission, Any], None]:
    def apply(engine: Engine, admission: Admission, value: Any) -> None:
        engine[engine_attr] = value
        admission[admission_attr] = value

    return apply


def _admission(attr: str) -> Callable[[Engine, Admission, Any], None]:
    def apply(engine: Engine, admission: Admission, value: Any) -> None:
        admission[attr] = value

    return apply


def _storage(
    attr: str, transform: Callable[[Any], Any] = lambda v: v
) -> Callable[[Engine, Admission, Any], None]:
    """Sets one field of ``EngineConfig.storage`` (collected, then built by :func:`parse_settings`)."""

    def apply(engine: Engine, admission: Admission, value: Any) -> None:
        engine.setdefault(_STORAGE_FIELDS, {})[attr] = transform(value)

    return apply


_STORAGE_FIELDS = "_storage"


def _retention(value: int) -> float | None:
    return None if value == 0 else float(value)


def _approval(value: float) -> float | None:
    return None if value == 0 else value


_E, _A = EngineConfig(), AdmissionConfig()

KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key(
            "timeout.default-step",
            "Step timeout when neither the StepRun, step, Engram, template nor Story sets one.",
            _seconds(0.01, zero=False),
            "30m",
            _engine("default_step_timeout"),
        ),
        Key(
            "timeout.approval-default",
            "Timeout of a gate that sets none (0 = wait forever).",
            _seconds(0.01),
            "24h",
            _engine("approval_default_timeout", _approval),
        ),
        Key(
            "retry.max-retries",
            "maxRetries filled into retry policies that leave it unset (0-50).",
            _int(0, 50),
            _E.default_max_retries,
            _both("default_max_retries", "default_max_retries"),
        ),
        Key(
            "storyrun.retention-seconds",
            "Seconds a finished StoryRun is kept (0 = forever, negative = delete at once).",
            _int(),
            int(_E.retention_seconds or 0),
            _engine("retention_seconds", _retention),
        ),
        Key(
            "job.ttl-seconds-after-finished",
            "Seconds the StepRuns and child runs of a finished run are kept (0 = delete at once).",
            _int(0),
            int(_E.child_ttl_seconds),
            _engine("child_ttl_seconds", float),
        ),
        Key(
            "storyrun.global-concurrency",
            "Running StepRuns across all runs of the home (0 = unlimited).",
            _int(0),
            _E.global_concurrency,
            _engine("global_concurrency"),
        ),
        Key(
            "storyrun.max-inline-inputs-size",
            "Largest spec.inputs of a StoryRun in bytes (0 = unlimited).",
            _int(0),
            _A.storyrun_max_inline_inputs,
            _both("max_inline_inputs_size", "storyrun_max_inline_inputs"),
        ),
        Key(
            "controller.max-story-with-block-size-bytes",
            "Largest `with`/`output`/`policy.with` block of a Story in bytes (0 = unlimited).",
            _int(0),
            _A.max_with_block_size,
            _admission("max_with_block_size"),
        ),
        Key(
            "controller.requeue-base-delay",
            "How often a running StoryRun is re-checked when nothing else wakes it.",
            _seconds(0.01, zero=False),
            "5s",
            _engine("requeue_base_delay"),
        ),
        Key(
            "engram.default-graceful-shutdown-timeout-seconds",
            "Grace period of a cancel before the remaining steps are stopped.",
            _int(0),
            int(_E.graceful_cancel_timeout),
            _engine("graceful_cancel_timeout", float),
        ),
        Key(
            "engram.default-max-recursion-depth",
            "Deepest nesting of executeStory sub-stories.",
            _int(1),
            _E.max_sub_story_depth,
            _engine("max_sub_story_depth"),
        ),
        Key(
            "references.cross-namespace-policy",
            "References across namespaces: deny, grant (ReferenceGrant) or allow.",
            _choice("deny", "grant", "allow"),
            _A.cross_namespace_policy,
            _admission("cross_namespace_policy"),
        ),
        Key(
            "engram.default-max-inline-size",
            "Output values larger than this many bytes are offloaded to storage (0 = always).",
            _int(0),
            _E.max_inline_size,
            _engine("max_inline_size"),
        ),
        Key(
            "engram.default-storage-timeout-seconds",
            "Bound of one storage read or write, in seconds.",
            _int(1),
            int(StorageSettings().timeout),
            _storage("timeout", float),
        ),
        Key(
            "controller.storage.provider",
            "Where offloaded values live: file (under controller.storage.file.path), s3, or none.",
            _provider,
            "file",
            _storage("provider", lambda v: "" if v == "none" else v),
        ),
        Key(
            "controller.storage.file.path",
            "Root directory of the file storage (default: <home>/storage).",
            _text,
            "<home>/storage",
            _storage("path"),
        ),
        Key(
            "controller.storage.s3.bucket",
            "Bucket of the s3 storage (credentials: BUBU_S3_ACCESS_KEY_ID/... or the AWS chain).",
            _text,
            "",
            _storage("bucket"),
        ),
        Key(
            "controller.storage.s3.region",
            "Region of the s3 storage.",
            _text,
            "us-east-1",
            _storage("region"),
        ),
        Key(
            "controller.storage.s3.endpoint",
            "Endpoint URL of an S3-compatible service (empty: AWS).",
            _text,
            "",
            _storage("endpoint"),
        ),
        Key(
            "controller.storage.s3.use-path-style",
            "Address the bucket in the URL path (most S3-compatible services need it).",
            _bool,
            True,
            _storage("force_path_style"),
        ),
        Key(
            "templating.offloaded-data-policy",
            "Templates over offloaded data: controller (hydrate in the engine, bounded) or error.",
            _offloaded_policy,
            _E.offloaded_data_policy,
            _engine("offloaded_data_policy"),
        ),
        Key(
            "templating.deterministic",
            "When true, now() and random helpers are unavailable in templates.",
            _bool,
            _E.deterministic_templates,
            _engine("deterministic_templates"),
        ),
    )
}

_QUEUE_HELP = {
    "concurrency": "Running StepRuns of runs in queue {q} (0 = unlimited).",
    "default-priority": "Priority of runs in queue {q} whose Story sets none (higher runs first).",
    "priority-aging-seconds": "A waiting run of queue {q} gains one priority point per this many seconds.",
}
_QUEUE_PARSE: dict[str, Callable[[Any], Any]] = {
    "concurrency": _int(0),
    "default-priority": _int(),
    "priority-aging-seconds": _int(0),
}
_QUEUE_ATTR = {
    "concurrency": "concurrency",
    "default-priority": "default_priority",
    "priority-aging-seconds": "priority_aging_seconds",
}

# -- keys of the reference that would be inert embedded ---------------------------------------
_K8S = "acts only on Kubernetes (pods, Jobs and RBAC); the embedded engine runs steps as local processes"
_REALTIME = "belongs to realtime/streaming execution, planned with the realtime issue"
_K8S_STORAGE = (
    "acts only on Kubernetes (pod volumes and Secrets); embedded storage uses "
    "controller.storage.file.path, and S3 credentials come from the environment"
)
_INJECT = "belongs to the inject policy of templating.offloaded-data-policy, which exists only on Kubernetes"
_TUNING = "tunes the operator's controllers; the embedded engine sizes and paces its controllers itself"
_UNUSED = "is parsed but not used by the reference operator either"

_INERT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("images.", _K8S),
    ("resources.", _K8S),
    ("security.", _K8S),
    ("job.backoff-limit", _K8S),
    ("job.restart-policy", _K8S),
    ("engram.default-termination-grace-period-seconds", _K8S),
    ("streaming.", _REALTIME),
    ("realtime.", _REALTIME),
    ("transport.", _REALTIME),
    ("controller.transport.", _REALTIME),
    ("engram.default-grpc-", _REALTIME),
    ("engram.default-max-recv-msg-bytes", _REALTIME),
    ("engram.default-max-send-msg-bytes", _REALTIME),
    ("engram.default-dial-timeout-seconds", _REALTIME),
    ("engram.default-channel-buffer-size", _REALTIME),
    ("engram.default-reconnect-", _REALTIME),
    ("engram.default-hang-timeout-seconds", _REALTIME),
    ("engram.default-message-timeout-seconds", _REALTIME),
    ("controller.storage.file.volume-claim-name", _K8S_STORAGE),
    ("controller.storage.s3.auth-secret-name", _K8S_STORAGE),
    ("templating.materialize-engram", _INJECT),
    ("controller.max-concurrent-reconciles", _TUNING),
    ("controller.requeue-max-delay", _TUNING),
    ("controller.cleanup-interval", _TUNING),
    ("controller.reconcile-timeout", _TUNING),
    ("storyrun.max-concurrent-reconciles", _TUNING),
    ("storyrun.rate-limiter.", _TUNING),
    ("steprun.", _TUNING),
    ("story.", _TUNING),
    ("engram.max-concurrent-reconciles", _TUNING),
    ("engram.rate-limiter.", _TUNING),
    ("impulse.", _TUNING),
    ("template.", _TUNING),
    ("storyrun.binding.", _UNUSED),
    ("loop.", _UNUSED),
    ("retry.exponential-backoff-", _UNUSED),
    ("timeout.external-data-default", _UNUSED),
    ("timeout.conditional-default", _UNUSED),
    ("telemetry.", "is not implemented by the embedded engine (no tracing yet)"),
    ("debug.", "is not implemented embedded; use BUBU_DEBUG / the step's debug settings"),
    (
        "templating.evaluation-timeout",
        "is not enforced by the embedded template sandbox (it bounds work itself)",
    ),
    ("templating.max-output-bytes", "is not enforced embedded; outputs are bounded by the inline limits"),
)


def inert_reason(key: str) -> str | None:
    """Why a reference key is not offered embedded (``None``: not such a key)."""
    for prefix, reason in _INERT_PREFIXES:
        if key == prefix or key.startswith(prefix):
            return reason
    return None


def valid_keys() -> list[str]:
    return [*KEYS, *(f"storyrun.queue.<name>.{f}" for f in QUEUE_FIELDS)]


def _queue_key(key: str) -> tuple[str, str] | None:
    match = _QUEUE_KEY.match(key)
    return (match["queue"], match["field"]) if match else None


def check_key(key: str) -> None:
    """Raise :class:`ConfigError` unless ``key`` is offered embedded."""
    if key in KEYS:
        return
    queue = _queue_key(key)
    if queue is not None:
        name, field_ = queue
        if not _DNS_LABEL.match(name) or len(name) > 63:
            raise ConfigError(
                key, f"queue name {name!r} must be a DNS label (lower-case letters, digits, '-')"
            )
        if field_ not in QUEUE_FIELDS:
            raise ConfigError(key, f"unknown queue setting {field_!r}; use one of: {', '.join(QUEUE_FIELDS)}")
        return
    reason = inert_reason(key)
    if reason is not None:
        raise ConfigError(key, f"not offered embedded: it {reason}")
    raise ConfigError(key, f"unknown key; valid keys: {', '.join(valid_keys())}")


def parse_value(key: str, value: Any) -> Any:
    """The typed value of ``key`` (raises :class:`ConfigError` naming the key)."""
    check_key(key)
    queue = _queue_key(key)
    parser = _QUEUE_PARSE[queue[1]] if queue is not None else KEYS[key].parse
    try:
        return parser(value)
    except ValueError as err:
        raise ConfigError(key, str(err)) from None


@dataclass(frozen=True)
class Setting:
    key: str
    value: Any
    source: str
    help: str


@dataclass(frozen=True)
class Settings:
    engine: EngineConfig = field(default_factory=EngineConfig)
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)
    #: Every offered key (queues: ``default`` and each configured one) with its effective value.
    effective: tuple[Setting, ...] = ()


def parse_settings(raw: Mapping[str, Any] | None) -> Settings:
    """Build the engine and admission configuration from flat dotted ``raw`` keys."""
    raw = raw or {}
    engine_kwargs: Engine = {}
    admission_kwargs: Admission = {}
    queues: dict[str, dict[str, Any]] = {}
    given: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ConfigError(str(key), "keys must be strings")
        if isinstance(value, dict):
            raise ConfigError(
                key, "use flat dotted keys as in the operator ConfigMap (e.g. timeout.default-step: 5m)"
            )
        parsed = parse_value(key, value)
        given[key] = value
        queue = _queue_key(key)
        if queue is not None:
            queues.setdefault(queue[0], {})[_QUEUE_ATTR[queue[1]]] = parsed
        else:
            KEYS[key].apply(engine_kwargs, admission_kwargs, parsed)
    storage_fields = engine_kwargs.pop(_STORAGE_FIELDS, None)
    if storage_fields:
        engine_kwargs["storage"] = replace(EMBEDDED_STORAGE, **storage_fields)
    engine = EngineConfig(**engine_kwargs)
    if queues:
        merged = dict(engine.queues)
        for name, attrs in queues.items():
            merged[name] = replace(merged.get(name, QueueConfig()), **attrs)
        engine = replace(engine, queues=merged)
    admission = AdmissionConfig(**admission_kwargs)
    effective = [
        Setting(k.name, given.get(k.name, k.default), FILE if k.name in given else DEFAULT, k.help)
        for k in KEYS.values()
    ]
    for name in sorted({"default", *queues}):
        defaults = QueueConfig()
        for field_ in QUEUE_FIELDS:
            key = f"storyrun.queue.{name}.{field_}"
            default = getattr(defaults, _QUEUE_ATTR[field_])
            effective.append(
                Setting(
                    key,
                    given.get(key, int(default)),
                    FILE if key in given else DEFAULT,
                    _QUEUE_HELP[field_].format(q=name),
                )
            )
    return Settings(engine=engine, admission=admission, effective=tuple(effective))
