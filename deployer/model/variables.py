"""Instance variables and secrets: what makes one template many instances.

Variables are ``{name}`` placeholders in the template's string values, filled per
instance: ``{instance}`` and ``{host}`` are built in, others come from ``--var k=v`` or
``--vars FILE`` and are kept in the instance's state, so ``redeploy`` and ``rollback``
need none of them again; the template's ``Vars`` setting gives defaults for the rest
(``defaults``), so CI can validate it without dummy values. ``${NAME}`` (a shell's syntax)
is left alone, ``{{name}}`` is a literal ``{name}``, and in an ``expose`` format
``{host}``/``{port}`` are the endpoint's (``str.format`` fills them at render: a value put
there has its braces doubled). A placeholder without a value is an error naming every one.

Secrets are env values written ``{secret: NAME}``: the value comes from the deploying
side (its environment, or a dotenv file given with ``--secrets``), never from the
template; on the host it is stored only in 0600 files, and output shows it as ``***``.
"""

import os
import re
from dataclasses import dataclass

import yaml

from ..errors import TemplateError

PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][\w.-]*)\}\}|(?<!\$)\{([A-Za-z_][\w.-]*)\}")
ASSIGNMENT = re.compile(r"([A-Za-z_][\w.-]*)=(.*)", re.S)
MASK = "***"
EXPOSE_FORMAT = re.compile(r"[^.]+\.expose\..+\.format", re.S)
BUILT_IN = ("instance", "host")
ENDPOINT_FIELDS = ("host", "port")  # an expose format's own


@dataclass(frozen=True)
class SecretRef:
    """An env value to be read from the deploying side's secrets."""

    name: str


class UnsetVariables(TemplateError):
    """Placeholders without a value (a deploy may still find them in the instance's state)."""


def substitute(data, variables, path, where=""):
    """Every string in ``data`` (a parsed template, or the part of it at ``where``) with its
    placeholders filled.

    YAML aliases share objects: each one is filled once (``seen``), so a document of
    aliases of aliases ("billion laughs") costs its size, not its expansion."""
    unset = {}
    result = _walk(data, variables, unset, where, {})
    if unset:
        names = ", ".join(sorted(unset))
        raise UnsetVariables(
            f"variables without a value: {names} (give them with --var NAME=VALUE or --vars FILE)",
            file=path,
            key=unset[min(unset)],
        )
    return result


def defaults(given, variables, path):
    """The values of the ``Vars`` setting's defaults (validated) of the variables that
    ``variables`` lacks, filled with ``variables``: a default may use ``{instance}``,
    ``{host}`` and the variables given. None may be a built-in."""
    for name in given:
        if name in BUILT_IN:
            raise TemplateError(f"{{{name}}} is built in: it has no default", file=path, key=f"Vars.{name}")
    missing = {name: value for name, value in given.items() if name not in variables}
    return substitute(missing, variables, path, "Vars")


def _walk(value, variables, unset, where, seen):
    if isinstance(value, str):
        if EXPOSE_FORMAT.fullmatch(where):
            return PLACEHOLDER.sub(lambda m: _fill_format(m, variables, unset, where), value)
        return PLACEHOLDER.sub(lambda m: _fill(m, variables, unset, where), value)
    if not isinstance(value, (dict, list)):
        return value
    if id(value) not in seen:
        if isinstance(value, dict):
            seen[id(value)] = {k: _walk(v, variables, unset, f"{where}.{k}" if where else str(k), seen)
                               for k, v in value.items()}
        else:
            seen[id(value)] = [_walk(v, variables, unset, f"{where}[{i}]", seen) for i, v in enumerate(value)]
    return seen[id(value)]


def _fill(match, variables, unset, where):
    literal, name = match.groups()
    if literal:
        return "{" + literal + "}"
    if name not in variables:
        unset.setdefault(name, where)
        return match.group(0)
    return str(variables[name])


def _fill_format(match, variables, unset, where):
    """In an expose format, which str.format reads later: its own fields and a literal stay
    as written, a variable's value goes in with its braces doubled."""
    literal, name = match.groups()
    if literal or name in ENDPOINT_FIELDS:
        return match.group(0)
    return _fill(match, variables, unset, where).replace("{", "{{").replace("}", "}}")


def assignments(items, what="--var"):
    """``["domain=c1.example.com"]`` -> ``{"domain": "c1.example.com"}``."""
    out = {}
    for item in items or ():
        match = ASSIGNMENT.fullmatch(item)
        if not match:
            raise TemplateError(f"{what} expects NAME=VALUE, got {item!r}")
        out[match[1]] = match[2]
    return out


def load_vars_file(path):
    """A YAML mapping of variable names to scalar values."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise TemplateError(f"cannot read variables: {getattr(e, 'strerror', None) or e}", file=path) from None
    if not isinstance(data, dict) or not all(isinstance(v, (str, int, float, bool)) for v in data.values()):
        raise TemplateError("expected a mapping of variable names to values", file=path)
    return {str(k): str(v) for k, v in data.items()}


def load_dotenv(path):
    """``NAME=value`` lines (``#`` comments, optional ``export``, optional quotes)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise TemplateError(f"cannot read secrets: {getattr(e, 'strerror', None) or e}", file=path) from None
    out = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = ASSIGNMENT.fullmatch(line.removeprefix("export ").strip())
        if not match:
            raise TemplateError(f"line {number}: expected NAME=value", file=path)
        value = match[2].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[match[1]] = value
    return out


def check_secrets(names, given, path):
    """The secrets a template names are text: an environment can hold bytes that are not
    UTF-8 (Python keeps them as surrogates), which no script could carry to the host."""
    for name in sorted(names):
        try:
            given.get(name, "").encode()
        except UnicodeEncodeError:
            raise TemplateError(f"secret {name}: its value is not valid UTF-8 text", file=path) from None


def secrets_source(secrets_file=None, environ=None):
    """Where secrets come from: the dotenv file's values over the environment's."""
    source = dict(os.environ if environ is None else environ)
    if secrets_file:
        source.update(load_dotenv(secrets_file))
    return source
