"""What every command shares: one-line errors a person can act on, argument types, help layout."""

from __future__ import annotations

import argparse
import sys
from datetime import date


class CLIError(Exception):
    """A failure the command explains in one line; `code` is the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported on one line instead of the usage block."""

    def error(self, message: str):  # noqa: D102
        print(f"{self.prog}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps a one-paragraph description; keeps text with line breaks (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


def day_arg(value: str) -> date:
    """A YYYY-MM-DD argument."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a day: use YYYY-MM-DD") from None


def positive_int(value: str) -> int:
    """An integer argument of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def fail(message: str, code: int = 1) -> int:
    """Print `feedback-pipelines: error: message` on stderr and return the exit status."""
    print(f"feedback-pipelines: error: {message}", file=sys.stderr)
    return code
