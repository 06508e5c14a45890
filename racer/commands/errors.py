"""How `racer` ends on an error: one line with the cause and the fix, exit code 2 for bad input."""
from __future__ import annotations

import click

from racer.extras import missing_extra
from sim.errors import InputError


class InputFailure(click.ClickException):
    """A message about the user's input: exit code 2, as for a bad option."""

    exit_code = 2


def cli_error(exc: Exception) -> click.ClickException:
    """The message (and exit code) `racer` ends with for an exception a command let through."""
    if isinstance(exc, InputError):
        return InputFailure(str(exc))
    if isinstance(exc, OSError) and exc.filename is not None:
        what = exc.strerror or type(exc).__name__
        return InputFailure(f"{exc.filename}: {what}; check the path and its permissions")
    if isinstance(exc, ModuleNotFoundError) and (message := missing_extra(exc)) is not None:
        return click.ClickException(message)
    return click.ClickException(f"internal error: {type(exc).__name__}: {exc} (run `racer --debug ...` for the "
                                f"traceback, and please report it)")


class RacerGroup(click.Group):
    """racer's command groups: one error path for every command.  Bad input (any `InputError`: a track,
    car, reward, bundle, run or launch file that cannot be used) and files that cannot be read or
    written end in a one-line message and exit code 2; a missing optional extra says what to
    install; anything else is reported as an internal error.  `--debug` re-raises, for the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                raise
            raise cli_error(exc) from None
