"""bobrapet.server layer."""
