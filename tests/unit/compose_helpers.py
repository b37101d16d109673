"""Helpers of the compose import's unit tests: a compose file from text, what it became.

A compose file is written as ``compose.yaml`` in the test's directory (with any files
beside it); the import's template is read back with the template loader, so a test
compares data, not text, and each test knows the output is YAML deployer reads.
"""

import textwrap

import yaml

from deployer import plugins
from deployer.model import spec, template
from deployer.ops import deploy
from deployer.compose import imported
from deployer.model.discovery import Endpoint


def import_text(directory, compose, files=None):
    """Import ``compose`` (dedented YAML) written in ``directory``, with ``files``
    (relative path -> text) beside it: the Imported."""
    for relative, text in (files or {}).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    path = directory / "compose.yaml"
    path.write_text(textwrap.dedent(compose))
    return imported(path)


def data(result):
    """The template as data, read as deployer reads templates."""
    return yaml.load(result.template, Loader=template.YAMLLoader)


def dropped(result):
    """``{"service.key": why}`` of what the import could not carry (top-level: ``key``)."""
    return {".".join(filter(None, (d.service, d.key))): d.why for d in result.dropped}


def noted(result):
    return {".".join(filter(None, (n.service, n.key))): n.note for n in result.notes}


def validated(result, directory, variables=None):
    """Validate the template as ``deployer validate`` does, beside the compose file (git
    paths are relative to it), each variable given ``variables``' value or ``1``."""
    path = directory / "template.yaml"
    path.write_text(result.template)
    given = {name: "1" for name in result.variables} | (variables or {})
    return deploy.validate(path, given)


def rendered(result, variables=None, secrets=None):
    """The ContainerSpecs the template renders to, by service: what a container gets."""
    parsed = template.parse(result.template, "t.yaml", variables={"instance": "i", "host": "h", **(variables or {})})
    names = {name: "secret-" + name for name in parsed.secret_names} | (secrets or {})
    endpoints = {f"{s.name}:{p}": _endpoint(p) for s in parsed.services for p in s.options.get("register", {})}
    specs = spec.render(parsed, "i", "/v", plugins.installed(), names, endpoints)
    return {s.service: s for s in specs}


def _endpoint(port):
    return Endpoint("172.17.0.1", 30000 + int(port) % 1000, int(port))
