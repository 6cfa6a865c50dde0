"""Engram modules used by the executor tests (imported by workers via python_path)."""
