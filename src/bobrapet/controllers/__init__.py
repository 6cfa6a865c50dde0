"""bobrapet.controllers layer."""
