"""The one base class of errors caused by what the user gave us (a file, a name, an option).

Every domain error of racer, sim and car that means "your input is wrong" derives from
`InputError`; the `racer` command line prints its message (which names the file, line or key and
the fix) and exits with code 2, without a traceback unless `--debug` is given.
"""
from __future__ import annotations


class InputError(Exception):
    """Bad input from the user; the message says what is wrong, where, and how to fix it."""
