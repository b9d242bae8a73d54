"""The one error type for user mistakes.

Anything the user can fix (bad input, missing file, unknown name) raises
:class:`AnbenchError`; the CLI prints its message as one line and exits 2.
Any other exception escaping a command is a bug in anbench.
"""


class AnbenchError(Exception):
    """A mistake the user can fix. ``str(err)`` is the whole message, one line."""

    exit_code = 2
