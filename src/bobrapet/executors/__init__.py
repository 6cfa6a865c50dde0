"""bobrapet.executors: how an Engram step runs.

``protocol`` is the :class:`~bobrapet.executors.protocol.Executor` seam controllers depend on;
``request`` re-exports the ExecutionRequest/ExecutionResult contract (defined in
:mod:`bobrapet.execution.request`) and ``build_env``; ``local`` runs steps on this machine.
This package imports nothing at import time so that warm workers
(``bobrapet.executors.local.worker``) start small and fast.
"""
