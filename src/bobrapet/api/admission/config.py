"""Admission limits and policies (reference §9.1 keys, with Bobrapet's own defaults).

Invariant: a zero size limit means "unlimited"; every other field is used as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bobrapet.api.types.shared import DEFAULT_BACKOFF, DEFAULT_MAX_RETRIES, DEFAULT_RETRY_DELAY

CrossNamespacePolicy = Literal["deny", "grant", "allow"]


@dataclass(frozen=True)
class AdmissionConfig:
    max_story_size: int = 1 << 20
    max_with_block_size: int = 65536
    engram_max_inline_size: int = 4096
    storyrun_max_inline_inputs: int = 1024
    max_steps: int = 1000
    max_compensations: int = 50
    max_finally: int = 50
    cross_namespace_policy: CrossNamespacePolicy = "deny"
    max_template_json: int = 1 << 20
    max_object_size: int = 1 << 20
    default_max_retries: int = DEFAULT_MAX_RETRIES
    default_retry_delay: str = DEFAULT_RETRY_DELAY
    default_backoff: str = DEFAULT_BACKOFF
    #: The store is the embedded one: warn (once per object write) about fields that act
    #: only on Kubernetes (:mod:`bobrapet.api.acts`). False behind the Kubernetes webhook.
    embedded: bool = False
