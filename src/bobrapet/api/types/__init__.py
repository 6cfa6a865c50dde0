"""Pydantic models of every resource kind (wire form: camelCase).

Import the concrete modules (``bobrapet.api.types.story`` ...) directly; this
package does not import them eagerly so that loading one kind stays cheap.
"""
