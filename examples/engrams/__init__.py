"""Python engrams used by the example Stories (``spec.entrypoint`` of their templates)."""
