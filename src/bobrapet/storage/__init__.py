"""Storage-aware payloads (reference §7): blob stores, references, dehydrate and hydrate.

Values larger than the inline limit are written to a blob store (the ``file`` backend under
the home directory, or any S3-compatible store) and replaced by reference maps
(``{"$bubuStorageRef": "outputs/<ns>/<steprun>/<key>.json", ...}``); consumers hydrate them.

Invariants:

* importing this package, :mod:`.refs`, :mod:`.selector`, :mod:`.envelope`, :mod:`.errors`,
  :mod:`.file`, :mod:`.settings`, :mod:`.dehydrate`, :mod:`.hydrate` and :mod:`.kube_refs`
  loads the standard library only (warm workers import them); ``boto3`` is imported by
  :mod:`.s3` only when an S3 store is opened;
* a storage key is a relative POSIX path without ``..`` segments, checked on every read and
  every write (:func:`.refs.check_key`): nothing is ever read or written outside the store.
"""
