"""bobrapet.storage layer."""
