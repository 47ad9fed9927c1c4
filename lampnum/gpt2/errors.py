"""GPT-2 loading errors: every failure to load a checkpoint is a :class:`CheckpointError` (a ValueError)."""

from __future__ import annotations

__all__ = ["CheckpointError", "ConfigError", "SafetensorsError"]


class CheckpointError(ValueError):
    """A GPT-2 checkpoint lampnum cannot load exactly; the message names the file and the key, if any."""


class ConfigError(CheckpointError):
    """A ``config.json`` that is not a GPT-2 configuration lampnum can run exactly."""


class SafetensorsError(CheckpointError):
    """A safetensors file with an inconsistent header or size, or a tensor of a dtype lampnum cannot read."""
