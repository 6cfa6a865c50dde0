"""bobrapet.runtime layer: how controllers run (controller-runtime / client-go model).

* :mod:`.clock` — injectable time (``RealClock``, ``FakeClock``);
* :mod:`.ratelimit` — per-key exponential back-off;
* :mod:`.queue` — the rate-limited delaying work queue;
* :mod:`.request` — ``Request`` / ``Result`` of a reconcile;
* :mod:`.watches` — ``Watch``, event → request mappers, predicates;
* :mod:`.cache` — in-memory object caches with indexes and projections;
* :mod:`.informer` — one shared watch stream per kind;
* :mod:`.controller` — a work queue plus workers around one reconciler;
* :mod:`.manager` — runs controllers over one Client: list, watch, idle, graceful stop;
* :mod:`.retry` — ``retry_on_conflict`` for read-modify-write updates.
"""
