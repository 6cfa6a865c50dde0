"""bobrapet.engine layer."""
