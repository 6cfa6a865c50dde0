"""Prometheus metrics of an engine process (reference §9.2, the names that apply embedded).

Metrics are off until :func:`enable` is called (``bobrapet serve`` does, before its engine
starts): a short-lived command pays neither the import of ``prometheus_client`` nor any
recording. The recording points call :func:`current` and do nothing when it is ``None``, so
the disabled hot path costs one global read.

Invariants:

* one :class:`Metrics` per process, in its own :class:`~prometheus_client.CollectorRegistry`
  (:func:`enable` is idempotent and returns it);
* counters and histograms are recorded where a decision is taken: a reconcile ended
  (:meth:`Metrics.reconciled`, by the controller runtime), a StoryRun reached a terminal
  phase (:meth:`Metrics.run_finished`, by the StoryRun controller), a StepRun attempt ended
  in a terminal phase or a scheduled retry (:meth:`Metrics.step_recorded`, by the attempt
  runner); each is counted by the process that wrote it;
* gauges that describe current state (queue depth, active steps) are read when scraped
  from the callbacks given to :meth:`Metrics.observe_state`, never maintained on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from bobrapet.api.phases import is_terminal_phase
from bobrapet.api.timestamps import parse_timestamp

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

__all__ = ["CONTENT_TYPE", "Metrics", "current", "enable"]

#: The Prometheus text exposition format (version 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Seconds: from a quick step to a long run.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
#: Seconds: a reconcile is short.
RECONCILE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

StateGauge = Callable[[], float]

_metrics: Metrics | None = None


def current() -> Metrics | None:
    """The process's metrics, or ``None`` while they are off."""
    return _metrics


def enable() -> Metrics:
    """Turn metrics on for this process (idempotent) and return them."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


def _seconds_between(start: Any, end: Any) -> float | None:
    began = parse_timestamp(start) if isinstance(start, str) else None
    ended = parse_timestamp(end) if isinstance(end, str) else None
    if began is None or ended is None:
        return None
    return max((ended - began).total_seconds(), 0.0)


class Metrics:
    """The metric families of one process and the calls that record them."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry: CollectorRegistry = CollectorRegistry()
        registry = self.registry
        self.storyruns_total = Counter(
            "bobrapet_storyruns_total",
            "StoryRuns that reached a terminal phase.",
            ["namespace", "story", "phase"],
            registry=registry,
        )
        self.storyrun_duration = Histogram(
            "bobrapet_storyrun_duration_seconds",
            "Duration of finished StoryRuns (startedAt to finishedAt).",
            ["namespace", "story", "phase"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.stepruns_total = Counter(
            "bobrapet_stepruns_total",
            "StepRun attempts that ended in a terminal phase.",
            ["namespace", "engram", "phase"],
            registry=registry,
        )
        self.steprun_duration = Histogram(
            "bobrapet_steprun_duration_seconds",
            "Duration of finished StepRuns (startedAt to finishedAt).",
            ["namespace", "engram", "phase"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.steprun_retries = Counter(
            "bobrapet_steprun_retries_total",
            "StepRun retries scheduled after a failed attempt.",
            ["namespace", "engram", "reason"],
            registry=registry,
        )
        self.reconcile_total = Counter(
            "bobrapet_controller_reconcile_total",
            "Reconciles by controller and result (success, error, requeue, requeue_after).",
            ["controller", "result"],
            registry=registry,
        )
        self.reconcile_duration = Histogram(
            "bobrapet_controller_reconcile_duration_seconds",
            "Time spent in one reconcile.",
            ["controller"],
            buckets=RECONCILE_BUCKETS,
            registry=registry,
        )
        self.reconcile_errors = Counter(
            "bobrapet_controller_reconcile_errors_total",
            "Reconciles that raised (the key is retried with back-off).",
            ["controller"],
            registry=registry,
        )
        self._state: dict[str, tuple[str, StateGauge]] = {}
        registry.register(_StateCollector(self._state))

    # -- recording ------------------------------------------------------------------------------
    def reconciled(self, controller: str, result: str, seconds: float) -> None:
        """One reconcile of ``controller`` ended with ``result`` after ``seconds``."""
        self.reconcile_total.labels(controller, result).inc()
        self.reconcile_duration.labels(controller).observe(seconds)
        if result == "error":
            self.reconcile_errors.labels(controller).inc()

    def run_finished(self, run: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """StoryRun ``run`` was just written with the terminal ``status``."""
        metadata = run.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "")
        story = str(((run.get("spec") or {}).get("storyRef") or {}).get("name") or "")
        phase = str(status.get("phase"))
        self.storyruns_total.labels(namespace, story, phase).inc()
        seconds = _seconds_between(status.get("startedAt"), status.get("finishedAt"))
        if seconds is not None:
            self.storyrun_duration.labels(namespace, story, phase).observe(seconds)

    def step_recorded(
        self, step_run: Mapping[str, Any], before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> None:
        """An attempt's outcome turned StepRun status ``before`` into ``after``."""
        metadata = step_run.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "")
        engram = str(((step_run.get("spec") or {}).get("engramRef") or {}).get("name") or "")
        phase = after.get("phase")
        if is_terminal_phase(phase):
            if is_terminal_phase(before.get("phase")):
                return
            self.stepruns_total.labels(namespace, engram, str(phase)).inc()
            seconds = _seconds_between(after.get("startedAt"), after.get("finishedAt"))
            if seconds is not None:
                self.steprun_duration.labels(namespace, engram, str(phase)).observe(seconds)
        elif (after.get("retries") or 0) > (before.get("retries") or 0):
            reason = str(after.get("exitClass") or "unknown")
            self.steprun_retries.labels(namespace, engram, reason).inc()

    def observe_state(self, name: str, documentation: str, read: StateGauge) -> None:
        """Expose gauge ``name`` whose value ``read()`` gives at scrape time (replaces a previous one)."""
        self._state[name] = (documentation, read)

    # -- exposition -----------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _StateCollector:
    """Gauges read at scrape time (see :meth:`Metrics.observe_state`)."""

    def __init__(self, state: dict[str, tuple[str, StateGauge]]) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        for name, (documentation, read) in list(self._state.items()):
            try:
                value = float(read())
            except Exception:  # a gauge that cannot be read now is left out of this scrape
                continue
            yield GaugeMetricFamily(name, documentation, value=value)

    def describe(self) -> list[Metric]:
        return []  # names vary: collected on every scrape
