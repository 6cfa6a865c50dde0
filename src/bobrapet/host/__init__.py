"""bobrapet.host: what every long- or short-lived Bobrapet process wires up on one home.

The embedded control plane (store + admission), the home's ``config.yaml``, the local worker
pool and the engine host (lease, executor, controllers). ``cli`` commands and the ``serve``
process both start from here; nothing in this package parses command lines or serves HTTP.
"""
