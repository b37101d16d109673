"""YAML -> Template: the shorthand of the template language, validated.

The language: a top-level key is either a template setting (capitalised,
such as ``Env``) or a service. A service key with no ``image:`` (and no ``git:``) *is*
the image, and the service is named after its last path part: ``elsdoerfer/rethinkdb``
is the service ``rethinkdb``. A string value is the service's ``cmd``.
"""

import re
from dataclasses import dataclass
from typing import Any, Mapping

import yaml
from voluptuous import Invalid, MultipleInvalid

from .. import plugins as plugin_registry
from . import schema
from ..errors import TemplateError
from .variables import SecretRef, defaults, substitute


@dataclass(frozen=True)
class Service:
    name: str
    key: str  # the top-level key as written, for error messages
    image: str | None
    options: Mapping[str, Any]  # validated and normalised keys, image excluded


@dataclass(frozen=True)
class Template:
    path: str
    text: str
    settings: Mapping[str, Any]
    services: tuple[Service, ...]

    @property
    def defaults(self):
        """The variables the template gives a default (its ``Vars`` setting)."""
        return self.settings.get("Vars", {})

    def unheeded(self, keys, engine):
        """The one note naming where the services set ``keys`` that mean nothing to
        ``engine`` (which ignores them), or none: a deploy says it once."""
        said = [f"{s.key}.{key}" for s in self.services for key in keys if key in s.options]
        return (f"{self.path}: {', '.join(said)}: means nothing to {engine}, ignored",) if said else ()

    @property
    def secret_names(self):
        """The names of the secrets the template's env values ask for."""
        envs = [self.settings.get("Env", {})] + [s.options.get("env", {}) for s in self.services]
        return sorted({v.name for env in envs for v in env.values() if isinstance(v, SecretRef)})


def load(path, plugins=None, variables=None):
    """Read and validate a template file; every problem is a TemplateError naming file and key."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise TemplateError(f"cannot read template: {getattr(e, 'strerror', None) or e}", file=path) from None
    return parse(text, path, plugins, variables)


def parse(text, path="<template>", plugins=None, variables=None):
    """``variables``: the values of ``{name}`` placeholders (None: leave them as written);
    the ``Vars`` setting's defaults fill those not given."""
    plugins = plugin_registry.installed() if plugins is None else plugins
    data = read_yaml(text, path)
    if not isinstance(data, dict) or not data:
        raise TemplateError("expected a mapping of services (and capitalised settings)", file=path)
    for key in data:
        if not isinstance(key, str):
            raise TemplateError(f"top-level key {key!r} must be a string", file=path)
    if variables is not None:
        data = _filled(data, variables, path)
    settings = {k: v for k, v in data.items() if k[:1].isupper()}
    for key in settings.keys() - schema.SETTINGS.schema.keys():
        raise TemplateError(
            f"unknown template setting (known: {', '.join(map(str, schema.SETTINGS.schema))}; "
            "capitalised top-level keys are settings, services start with a lowercase letter or digit)",
            file=path,
            key=key,
        )
    settings = _validate(schema.SETTINGS, settings, path, "")
    service_schema = schema.service_schema(
        {key: validator for plugin in plugins for key, validator in plugin.keys.items()}
    )
    services = tuple(
        _service(key, value, service_schema, path)
        for key, value in data.items()
        if not key[:1].isupper()
    )
    if not services:
        raise TemplateError("defines no services", file=path)
    _check_unique(services, path)
    return Template(path=str(path), text=text, settings=settings, services=services)


def _filled(data, variables, path):
    """The template with its placeholders filled: by the variables given, else by the
    ``Vars`` setting's defaults (which itself stays as written)."""
    if "Vars" not in data:
        return substitute(data, variables, path)
    given = _validate(schema.SETTINGS, {"Vars": data["Vars"]}, path, "")["Vars"]
    variables = {**defaults(given, variables, path), **variables}
    rest = substitute({k: v for k, v in data.items() if k != "Vars"}, variables, path)
    return {"Vars": data["Vars"], **rest}


def _service(key, value, service_schema, path):
    if value is None:
        value = {}
    elif isinstance(value, str):
        value = {"cmd": value}
    elif not isinstance(value, dict):
        raise TemplateError("expected a mapping of keys, or a string (the cmd)", file=path, key=key)
    options = _validate(service_schema, value, path, key)
    image = options.pop("image", None)
    if image is not None or "git" in options:
        name = _validate(schema.service_name, key, path, key)
    else:
        try:
            image = schema.image(key)
        except Invalid:
            raise TemplateError(
                "no image: the key is not an image reference and there is no 'image:' key",
                file=path,
                key=key,
            ) from None
        name = _validate(schema.service_name, schema.image_service_name(image), path, key)
    return Service(name=name, key=key, image=image, options=options)


def _check_unique(services, path):
    seen = {}
    for service in services:
        if service.name in seen:
            raise TemplateError(
                f"{seen[service.name]!r} and {service.key!r} are both the service {service.name!r}: "
                f"name one yourself, e.g. '{service.name}2: {{image: {service.image or '...'}}}'",
                file=path,
                key=service.key,
            )
        seen[service.name] = service.key


def _validate(validator, value, path, prefix):
    try:
        return validator(value)
    except (MultipleInvalid, Invalid) as e:
        errors = e.errors if isinstance(e, MultipleInvalid) else [e]
        first = min(errors, key=lambda err: [str(p) for p in err.path])
        raise TemplateError(_message(first), file=path, key=_key_path(prefix, first.path)) from None


def _message(error):
    if error.error_message == "extra keys not allowed":
        return "unknown key"
    if error.error_message == "expected a dictionary":
        return "expected a mapping"
    return error.error_message


def _key_path(prefix, path):
    out = prefix
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out or None


def _yaml_message(error):
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"line {mark.line + 1}, column {mark.column + 1}: invalid YAML: {problem}"


def read_yaml(text, path, loader=None):
    """YAML as templates are read (``YAMLLoader``, or a subclass of it): a YAML error, or a
    structure that contains itself, is one TemplateError naming the file."""
    try:
        data = yaml.load(text, Loader=loader or YAMLLoader)
    except yaml.YAMLError as e:
        raise TemplateError(_yaml_message(e), file=path) from None
    except (ValueError, TypeError, AttributeError, RecursionError) as e:  # e.g. `!!int x`, deep nesting
        raise TemplateError(f"invalid YAML: {type(e).__name__}: {e}"[:300], file=path) from None
    _acyclic(data, path)
    return data


def _acyclic(data, path):
    """A YAML alias inside the node it names (``x: &x {cmd: *x}``) makes a structure that
    contains itself: refused, naming where, before anything walks it forever. (Depth
    first, each shared node once: a document of aliases of aliases costs its size.)"""
    done, above = set(), set()
    stack = [(data, "", False)]
    while stack:
        value, where, leaving = stack.pop()
        if leaving:
            above.discard(id(value))
            done.add(id(value))
            continue
        if not isinstance(value, (dict, list)) or id(value) in done:
            continue
        if id(value) in above:
            raise TemplateError("a YAML alias refers to a node that contains it (a cycle)", file=path, key=where)
        above.add(id(value))
        stack.append((value, where, True))
        if isinstance(value, dict):
            stack += [(item, f"{where}.{key}" if where else str(key), False) for key, item in value.items()]
        else:
            stack += [(item, f"{where}[{i}]", False) for i, item in enumerate(value)]


class YAMLLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml parses 10x faster
    """SafeLoader that refuses a key given twice (PyYAML silently keeps the last one) and
    reads scalars as YAML 1.2 does, like docker compose: ``22:22`` and ``12:30`` stay
    strings (YAML 1.1 reads base 60 numbers), and only true/false are booleans."""

    def construct_mapping(self, node, deep=False):
        keys = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, "a key must be a string", key_node.start_mark) from None
            if key in keys:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
            keys.add(key)
        return super().construct_mapping(node, deep)


_YAML11_ONLY = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
YAMLLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML11_ONLY]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _regexp, _first in (
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("int", r"[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+", "-+0123456789"),
    ("float", r"[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)", "-+0123456789."),
):
    YAMLLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(f"^(?:{_regexp})$"), list(_first))
