"""The HTTP service of ``bobrapet serve``: a Kubernetes-shaped API over the embedded store.

:func:`bobrapet.server.app.build_app` builds the ASGI application (discovery, the resource
API, health, metrics, OpenAPI); :mod:`bobrapet.server.service` runs it with the engine in one
process. Built on FastAPI (the OpenAPI document) and served by uvicorn.
"""
