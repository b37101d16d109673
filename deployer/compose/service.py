"""The template service an import writes, and the context its converters share.

A converter reads one compose key and sets template keys on a ``Target``; every string
it sets is checked to be writable as template text (``interpolate.representable``), and
what cannot be is dropped with why rather than written wrong.
"""

from dataclasses import dataclass, field

from voluptuous import Invalid

from .interpolate import has_variables, representable


@dataclass
class Target:
    """One template service as the converters build it, with what network.py needs."""

    compose: str  # the service's name in the compose file
    name: str  # its name in the template
    image: str | None = None
    keys: dict = field(default_factory=dict)  # template key -> value
    comments: dict = field(default_factory=dict)  # template key ("" for the service) -> lines
    ports: list = field(default_factory=list)  # container ports others may reach (expose, ports)
    secret_files: dict = field(default_factory=dict)  # /run/secrets/... path -> the env var holding it now

    def comment(self, key, line):
        lines = self.comments.setdefault(key, [])
        if line not in lines:
            lines.append(line)

    @property
    def env(self):
        return self.keys.setdefault("env", {})


@dataclass
class Context:
    """What every converter may use: where to report, the files beside the compose file,
    the compose file's top-level sections, and the targets converted so far."""

    report: object  # report.Report
    project: object  # read.Project
    interpolation: object  # interpolate.Interpolation (env files are interpolated as they are read)
    top: dict  # the compose file's top-level data (secrets, volumes, ...)
    targets: dict = field(default_factory=dict)  # compose name -> Target
    secrets_used: dict = field(default_factory=dict)  # deployer secret name -> where it came from
    drivers: set = field(default_factory=set)  # named volumes whose driver a service kept (storage.py)

    def drop(self, target, key, why):
        self.report.drop(target.compose if target else None, key, why)

    def note(self, target, key, note):
        self.report.note(target.compose if target else None, key, note)

    def writable(self, target, key, value):
        """Whether every string in ``value`` can be written as template text; if not,
        it is dropped with why."""
        bad = next((s for s in strings(value) if not representable(s)), None)
        if bad is not None:
            self.drop(target, key, "puts a compose variable right after a literal '$' or inside literal "
                                   "'{...}', which deployer's {name} placeholders cannot write")
            return False
        return True


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from strings(v)


def checked(validator, value):
    """``value`` as deployer's schema validator normalises it, or Invalid; a value
    holding a variable is only known at deploy time and passes as it is."""
    if has_variables(value):
        return value
    return validator(value)


def why_invalid(value, error):
    """The drop reason for a value deployer's schema refuses."""
    message = error.msg if isinstance(error, Invalid) else str(error)
    return f"{value!r}: {message}" if repr(value) not in message else message


def scalar_text(value):
    """A YAML scalar as the string compose makes of it (booleans: true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def assignments(value):
    """environment, labels or build args in either form, as a mapping: a list's
    ``NAME=value`` items, a lone ``NAME`` (no value: compose's shell gives it) as None."""
    if isinstance(value, dict):
        return dict(value)
    out = {}
    for item in value or []:
        name, eq, text = scalar_text(item).partition("=")
        out[name] = text if eq else None
    return out
