"""bobrapet.runtime layer."""
