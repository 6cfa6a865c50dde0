"""``python -m bobrapet.storage.helper``: storage work for a command engram, off the engine.

The engine process never loads a large payload: for a command engram the executor runs this
helper (its storage settings in its environment, as a step's) to

* ``hydrate INPUTS_FILE CONFIG_FILE``: read ``{"inputs": ..., "config": ...}`` (JSON, small:
  references) on stdin, hydrate both and write each as JSON to its file;
* ``dehydrate OUTPUT_FILE``: read the engram's output file and print its dehydrated JSON
  (values above ``BUBU_MAX_INLINE_SIZE`` offloaded) on stdout.

Exit 0 on success. On failure it prints one JSON object ``{"error": message, "type":
<StructuredError type>, "retryable": bool}`` on stdout and exits :data:`FAILED`.
Standard library only (boto3 once an S3 store is used).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from bobrapet.storage.envelope import ENCODER
from bobrapet.storage.errors import StorageError
from bobrapet.storage.step import StepStorage

FAILED = 3
_CHUNK = 1 << 20


def _write_json(path: str, value: Any) -> int:
    text = ENCODER.encode(value)
    with open(path, "w", encoding="utf-8") as fh:
        for start in range(0, len(text), _CHUNK):
            fh.write(text[start : start + _CHUNK])
    return os.path.getsize(path)


def _fail(message: str, kind: str, retryable: bool) -> int:
    print(json.dumps({"error": message, "type": kind, "retryable": retryable}))
    return FAILED


def hydrate(inputs_file: str, config_file: str) -> int:
    request = json.load(sys.stdin)
    storage = StepStorage.from_env(os.environ)
    inputs, config = storage.hydrate(request.get("inputs"), request.get("config"))
    _write_json(inputs_file, inputs)
    _write_json(config_file, config)
    return 0


def dehydrate(output_file: str) -> int:
    try:
        with open(output_file, encoding="utf-8") as fh:
            output = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return _fail(f"output file is not valid JSON: {exc}", "serialization_error", False)
    result = StepStorage.from_env(os.environ).dehydrate_output(output)
    sys.stdout.write(ENCODER.encode(result))
    return 0


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 4 and argv[1] == "hydrate":
            return hydrate(argv[2], argv[3])
        if len(argv) == 3 and argv[1] == "dehydrate":
            return dehydrate(argv[2])
    except StorageError as exc:
        return _fail(exc.message, "storage_error", exc.retryable)
    except (OSError, ValueError) as exc:
        return _fail(f"{type(exc).__name__}: {exc}", "storage_error", False)
    print(
        "usage: python -m bobrapet.storage.helper hydrate INPUTS CONFIG | dehydrate OUTPUT", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
