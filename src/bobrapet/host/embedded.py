"""The embedded control plane: the SQLite store in a home directory, admission and controllers.

Any CLI command that writes opens the store with admission plugged in, so an
object is validated and defaulted exactly as the Kubernetes webhooks would do
it. After writes, :meth:`ControlPlane.settle` runs the controllers until their
queues are idle so statuses (validation, counters, conditions) are up to date
before the command returns.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bobrapet.store.sqlite import SqliteClient

if TYPE_CHECKING:
    from bobrapet.api.admission import AdmissionConfig, Lookup
    from bobrapet.storage.settings import StorageSettings
    from bobrapet.triggers import OffloadInputs

# Admission, the controllers and the manager are imported where they are first used:
# read-only commands (get, describe) never need them and start much faster without them.

STATE_FILE = "state.db"


class StoreAdmission:
    """Adapts the admission library to the store's admission hook."""

    def __init__(self, plane: ControlPlane, lookup: Lookup) -> None:
        self.plane = plane
        self.lookup = lookup

    @property
    def config(self) -> AdmissionConfig:
        return self.plane.config

    async def __call__(
        self, obj: dict[str, Any], old: dict[str, Any] | None, *, subresource: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        from bobrapet.api.admission import admit

        result = await admit(
            obj, old, self.lookup, self.config, subresource=subresource, hydrate=self.plane.hydrate_inputs
        )
        return result.object, result.warnings

    def admit_trusted(self, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
        """The short path for an engine-built object (``None``: admit it fully)."""
        from bobrapet.api.admission import admit_trusted

        result = admit_trusted(obj, self.config)
        return None if result is None else (result.object, result.warnings)


class ControlPlane:
    """The store of one home directory, with admission, and its controllers on demand."""

    def __init__(
        self, home: Path, config: AdmissionConfig | None = None, *, poll_interval: float | None = None
    ) -> None:
        self.home = home
        self._config = config
        #: How late the store's watches see other processes' writes (None: the store's default).
        self.poll_interval = poll_interval
        self._client: SqliteClient | None = None
        self._storage: StorageSettings | None = None

    @property
    def config(self) -> AdmissionConfig:
        if self._config is None:
            from bobrapet.host.config_file import load

            # <home>/config.yaml (or the defaults); embedded: warn about Kubernetes-only fields
            self._config = replace(load(self.home).admission, embedded=True)
        return self._config

    @property
    def storage(self) -> StorageSettings:
        """The home's effective storage settings (config file and environment, §7.5)."""
        if self._storage is None:
            from bobrapet.host.storage import home_storage

            self._storage = home_storage(self.home)
        return self._storage

    async def hydrate_inputs(self, value: Any) -> Any:
        """Admission's reader of offloaded StoryRun inputs (the home's storage)."""
        from bobrapet.host.config_file import load
        from bobrapet.host.storage import inputs_hydrator

        budget = load(self.home).engine.max_controller_hydration
        return await inputs_hydrator(self.storage, budget)(value)

    def run_inputs_offload(self) -> OffloadInputs | None:
        """The StoryTrigger controller's offload of oversized run inputs (None: no storage)."""
        from bobrapet.host.storage import run_inputs_offload

        return run_inputs_offload(self.storage, self.config.storyrun_max_inline_inputs)

    def submission_offload(self) -> OffloadInputs | None:
        """A submitter's offload of oversized trigger inputs (None: no storage)."""
        from bobrapet.host.storage import submission_offload

        return submission_offload(self.storage, self.config.storyrun_max_inline_inputs)

    @property
    def exists(self) -> bool:
        return (self.home / STATE_FILE).exists()

    @property
    def client(self) -> SqliteClient:
        if self._client is None:
            self._adopt(self._open())
        assert self._client is not None
        return self._client

    def _open(self) -> SqliteClient:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.poll_interval is None:
            return SqliteClient(self.home / STATE_FILE)
        return SqliteClient(self.home / STATE_FILE, poll_interval=self.poll_interval)

    def _adopt(self, client: SqliteClient) -> None:
        if self._client is not None:  # opened meanwhile: keep the first
            client.close()
            return
        client.admission = StoreAdmission(self, client.lookup)
        self._client = client

    def request_client(self) -> SqliteClient:
        """A second client of the store for requests from users over the HTTP API (the
        caller closes it): unlike the engine's, it admits status writes too, since a status
        written over the API (a gate decision) is user input."""
        self.home.mkdir(parents=True, exist_ok=True)
        client = SqliteClient(self.home / STATE_FILE, admit_status=True)
        client.admission = StoreAdmission(self, client.lookup)
        return client

    async def open(self) -> None:
        """Open the store in a worker thread (creating a new home's database waits on the
        disk; the caller's thread can load code meanwhile)."""
        if self._client is None:
            self._adopt(await asyncio.to_thread(self._open))

    async def settle(self, timeout: float = 10.0) -> None:
        """Run every controller until nothing is left to reconcile (or ``timeout``)."""
        from bobrapet.controllers.registry import setup_all
        from bobrapet.runtime.manager import Manager

        manager = Manager(self.client)
        setup_all(manager, offload_inputs=self.run_inputs_offload())
        await manager.start()
        try:
            await manager.wait_idle(timeout=timeout)
        finally:
            await manager.stop()

    async def __aenter__(self) -> ControlPlane:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
