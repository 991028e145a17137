"""Result codes and typed errors. The C ABI returns the same codes (``stss_plugin.h``).

Every error names the field, the value expected and the value received, so a message
alone tells an integrator what to fix: ``InvalidInputError("frame.jitter_px", "each in
[-0.5, 0.5] render pixels", "(0.7, 0.1)")``.
"""

from __future__ import annotations

from enum import IntEnum


class Result(IntEnum):
    """Plain result codes (``STSS_RESULT_*`` in C)."""

    OK = 0
    INVALID_ARGUMENT = 1  # a field has a wrong value, shape, dtype or size
    INVALID_STATE = 2  # e.g. a call on a destroyed context
    UNSUPPORTED = 3  # a combination the plugin does not do (a quality mode, a back-end here)
    BACKEND_UNAVAILABLE = 4  # a back-end / device is missing on this machine
    INTERNAL = 5  # an unexpected failure inside the plugin, never the answer to malformed input: a bug to report
    NULL_POINTER = 6  # C only: a required pointer is NULL


class PluginError(Exception):
    """Base of the plugin's errors; ``code`` is the C result code."""

    code = Result.INTERNAL


class _FieldError(PluginError, ValueError):
    """An error about one field: ``field``, ``expected`` and ``actual`` are kept."""

    def __init__(self, field: str, expected: str, actual: object, hint: str = ""):
        self.field, self.expected, self.actual = field, expected, actual
        msg = f"{field}: expected {expected}, got {actual}"
        super().__init__(msg + (f" ({hint})" if hint else ""))


class InvalidInputError(_FieldError):
    """A field of a description or a resource is wrong."""

    code = Result.INVALID_ARGUMENT


class ContextStateError(PluginError, RuntimeError):
    """The context cannot take this call now (destroyed, not yet dispatched, ...)."""

    code = Result.INVALID_STATE


class UnsupportedError(_FieldError):
    """The plugin does not do this combination (a field value it cannot serve)."""

    code = Result.UNSUPPORTED


class BackendUnavailableError(PluginError, RuntimeError):
    """The back-end or device asked for cannot run here; the message says what is missing."""

    code = Result.BACKEND_UNAVAILABLE
