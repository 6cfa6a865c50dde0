"""bobrapet.controllers layer: one reconciler per kind (``setup(manager) -> Controller``).

:func:`bobrapet.controllers.registry.setup_all` registers them all with a manager.
"""
