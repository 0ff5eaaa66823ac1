"""Shared parsing of the plugin's command-line options."""
from __future__ import annotations

import argparse

__all__ = ["nonnegative"]


def nonnegative(option: str, unit: str):
    """An argparse ``type`` for a non-negative number of ``unit`` (0 disables the limit), whose
    errors name ``option``, e.g. ``nonnegative("--bn-call-timeout/BN_CALL_TIMEOUT", "seconds")``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option}: {text!r} is not a number of {unit}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{option}: {text!r} is negative (0 disables the limit)")
        return value

    return parse
