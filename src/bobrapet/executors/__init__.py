"""bobrapet.executors: how an Engram step runs.

``request`` holds the ExecutionRequest/ExecutionResult contract and ``build_env``;
``local`` runs steps on this machine. This package imports nothing at import time so that
warm workers (``bobrapet.executors.local.worker``) start small and fast.
"""
