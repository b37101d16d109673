"""The one exception type users see.

Every failure a user can cause or meet (a bad template, a bad instance name, an
unreachable host, a failed docker command) is a DeployerError that knows *where* it
happened. Only the task layer turns it into a line on stderr and an exit code, so the
core never prints and never exits.
"""

# Exit codes, documented in README.rst.
EXIT_FAILED = 1   # the deploy (or another host operation) failed
EXIT_USAGE = 2    # bad arguments or an invalid template: nothing was changed
EXIT_UNREACHABLE = 3  # the host could not be reached (connection, key, host key)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class DeployerError(Exception):
    """An error with its context: file, key path, host, instance.

    ``str()`` gives the one line the user sees, most general context first:
    ``app.yaml: app.env.PORT: expected a string or number``.
    """

    exit_code = EXIT_FAILED

    def __init__(self, message, *, file=None, key=None, host=None, instance=None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.key = key
        self.host = host
        self.instance = instance
        self.details = []  # further lines shown under the message (e.g. a container's last log lines)

    def where(self, **context):
        """Fill in context the raiser did not know (e.g. the host), keeping what it knew."""
        for name, value in context.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        return self

    def __str__(self):
        parts = []
        if self.host:
            parts.append(f"host {self.host}")
        if self.instance:
            parts.append(f"instance {self.instance}")
        if self.file:
            parts.append(printable(str(self.file)))
        if self.key:
            parts.append(printable(str(self.key)))
        return ": ".join(parts + [printable(self.message)])


def printable(text):
    """One line, whatever a hostile key or file name holds: control characters escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def plural(count, noun):
    """``1 service``, ``2 services``: every count a message gives agrees with its noun."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


class UnreachableError(DeployerError):
    """The host could not be reached: nothing was changed on it."""

    exit_code = EXIT_UNREACHABLE


class TemplateError(DeployerError):
    """The template (or an argument such as the instance name) is invalid."""

    exit_code = EXIT_USAGE
