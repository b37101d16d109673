"""Reading a compose file: YAML, its shape, ``extends`` in the same file, and the files
beside it (``.env``, env files, build contexts, bind-mount sources).

This is the import's only I/O, and it only reads. The YAML is read as compose reads it
(YAML 1.2 scalars, anchors and ``<<`` merge keys, a key given twice is an error, the
``!reset`` and ``!override`` tags of compose's merge rules). Compose file versions 2.x,
3.x and the unversioned Compose Specification share one shape (``services:``); version
1 (services at the top level) is refused with a line saying so.
"""

import os
from dataclasses import dataclass

import yaml

from ..errors import TemplateError
from ..model.template import YAMLLoader, read_yaml
from . import envfile, shape
from .service import assignments

RESET = object()  # !reset: the key is removed from what it extends


@dataclass(frozen=True)
class Override:
    """!override: the value replaces what it extends instead of merging with it."""

    value: object


class _Loader(YAMLLoader):
    """The template loader's YAML 1.2 reading, plus compose's two merge tags."""


def _override(loader, node):
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))


_Loader.add_constructor("!reset", lambda loader, node: RESET)
_Loader.add_constructor("!override", _override)


def load(path):
    """The compose file as data: a mapping with a non-empty ``services`` mapping, each
    service a mapping; anything else is a TemplateError naming the file (and key)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise TemplateError(f"cannot read compose file: {getattr(e, 'strerror', None) or e}", file=path) from None
    data = read_yaml(text, path, _Loader)
    shape.check(_plain(_checked(data, path)), path)
    return data


def _checked(data, path):
    if not isinstance(data, dict):
        raise TemplateError("not a compose file: expected a mapping with 'services:'", file=path)
    services = data.get("services")
    if services is None:
        if data and all(isinstance(v, dict) and ("image" in v or "build" in v) for v in data.values()):
            raise TemplateError("a version 1 compose file (services at the top level) is not read: "
                                "put them under 'services:'", file=path)
        raise TemplateError("not a compose file: no 'services:'", file=path)
    if not isinstance(services, dict) or not services:
        raise TemplateError("expected a mapping of services", file=path, key="services")
    for name, service in services.items():
        if not isinstance(name, str):
            raise TemplateError(f"a service's name must be a string, got {name!r}", file=path, key="services")
        if service is None:
            raise TemplateError("no image and no build: nothing to run", file=path, key=name)
        if not isinstance(service, dict):
            raise TemplateError("expected a mapping of keys", file=path, key=name)
    return data


# --- extends ---------------------------------------------------------------------------

# keys compose merges as mappings, whichever form (list of K=V, or mapping) each side uses
MAPPINGS = {"environment", "labels", "extra_hosts", "sysctls", "annotations", "storage_opt", "args"}
REPLACED = {"command", "entrypoint", "test"}  # sequences that replace, not combine
BY_TARGET = {"volumes", "devices"}  # sequences merged by their container path


def extended(services, path, report):
    """Every service with its ``extends`` (in this file) merged in, as compose merges
    them: mappings key by key, sequences combined (volumes by their target), scalars
    and commands replaced. ``extends`` of another file is dropped with why."""
    resolved = {}

    def resolve(name, chain):
        if name in chain:
            raise TemplateError(f"extends makes a cycle: {' -> '.join(chain[chain.index(name):] + [name])}",
                                file=path, key=f"{name}.extends")
        if name not in resolved:
            resolved[name] = _resolve_one(name, services, path, report, lambda base: resolve(base, chain + [name]))
        return resolved[name]

    return {name: _plain(resolve(name, [])) for name in services}


def _resolve_one(name, services, path, report, resolve):
    service = dict(services[name])
    spec = service.pop("extends", None)
    if spec is None:
        return service
    if isinstance(spec, str):
        spec = {"service": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("service"), str):
        raise TemplateError("expected a service name, or {service, file}", file=path, key=f"{name}.extends")
    if spec.get("file") is not None:
        report.drop(name, "extends", f"extends {spec['service']} of the file {spec['file']}: an import reads "
                                     "one compose file (extends in the same file works)")
        return service
    if spec["service"] not in services:
        raise TemplateError(f"extends names no service of this file: {spec['service']!r}",
                            file=path, key=f"{name}.extends")
    return merge(resolve(spec["service"]), service)


def merge(base, main, key=""):
    """``main`` over ``base`` by compose's merge rules (see ``extended``)."""
    if isinstance(main, Override):
        return main.value
    if key in MAPPINGS:
        base, main = assignments(base), assignments(main)
    if isinstance(base, dict) and isinstance(main, dict):
        out = dict(base)
        for k, v in main.items():
            if v is RESET:
                out.pop(k, None)
            else:
                out[k] = merge(out[k], v, k) if k in out else v
        return out
    if isinstance(base, list) and isinstance(main, list) and key not in REPLACED:
        if key in BY_TARGET:
            targets = {_target(item) for item in main}
            return [item for item in base if _target(item) not in targets] + main
        return base + [item for item in main if item not in base]
    return main


def _target(item):
    if isinstance(item, dict):
        return item.get("target")
    parts = str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _plain(value):
    """The data with every !reset and !override tag resolved away."""
    if isinstance(value, Override):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not RESET}
    if isinstance(value, list):
        return [_plain(v) for v in value if v is not RESET]
    return value


# --- the files beside it -------------------------------------------------------------


class Project:
    """The compose file's directory, as the import may look at it (read only): paths in
    a compose file are relative to it."""

    def __init__(self, compose_path):
        self.file = str(compose_path)
        self.root = os.path.dirname(os.path.abspath(compose_path))

    def path(self, relative):
        return os.path.normpath(os.path.join(self.root, relative))

    def kind(self, relative):
        """'file', 'dir' (holding something), 'empty' (an empty directory) or 'missing'."""
        full = self.path(relative)
        if os.path.isfile(full):
            return "file"
        if os.path.isdir(full):
            return "dir" if os.listdir(full) else "empty"
        return "missing"

    def git_root(self, relative):
        """The work tree holding that path (the nearest directory with a ``.git``), or None."""
        at = self.path(relative)
        while True:
            if os.path.exists(os.path.join(at, ".git")):
                return at
            parent = os.path.dirname(at)
            if parent == at:
                return None
            at = parent

    def dotenv(self):
        """The project's ``.env`` (compose reads it for interpolation), as name -> value."""
        path = self.path(".env")
        if not os.path.isfile(path):
            return {}
        return {e.name: e.value for e in self.env_file(".env")}

    def env_file(self, relative):
        path = self.path(relative)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise TemplateError(f"cannot read env file: {getattr(e, 'strerror', None) or e}", file=path) from None
        return envfile.parse(text, path)
