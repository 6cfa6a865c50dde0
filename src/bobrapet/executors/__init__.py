"""bobrapet.executors layer."""
