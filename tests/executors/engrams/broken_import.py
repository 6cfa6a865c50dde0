"""An engram module whose import fails."""

raise RuntimeError("cannot import me")
