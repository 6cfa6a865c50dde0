"""bobrapet.templating layer."""
