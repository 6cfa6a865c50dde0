"""bobrapet.store layer: the Client protocol and its backends.

``from bobrapet.store import SqliteClient`` gives the embedded backend.
"""

from bobrapet.store.admission_hook import Admission, Lookup
from bobrapet.store.client import Client, Resource, WatchEvent
from bobrapet.store.sqlite import SqliteClient

__all__ = ["Admission", "Client", "Lookup", "Resource", "SqliteClient", "WatchEvent"]
