"""bobrapet.cli layer."""
