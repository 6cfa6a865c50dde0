"""Bobrapet: a declarative workflow engine for AI and data pipelines."""

__version__ = "0.1.0"
