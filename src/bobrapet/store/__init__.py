"""bobrapet.store layer."""
