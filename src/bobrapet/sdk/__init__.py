"""bobrapet.sdk layer."""
