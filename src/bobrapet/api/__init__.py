"""bobrapet.api layer."""
