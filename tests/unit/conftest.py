"""Helpers for the unit tests: templates from text, specs, argv; and ``shell``, the host
scripts run with a stub docker (stubdocker.py).

Nothing here touches Docker or SSH. Templates are parsed from strings
under the name ``app.yaml`` and rendered for the instance ``c1`` with volumes under
``/srv/deployer/volumes``, so messages start with ``app.yaml: `` and containers are
named ``c1.<service>``.

The helpers are plain functions handed to tests as fixtures of the same name (a
conftest is not importable by a stable module name).
"""

import json
import textwrap

import pytest

from deployer import plugins
from deployer.model import spec, template
from deployer.errors import TemplateError
from stubdocker import Shell, StubDocker

TEMPLATE_FILE = "app.yaml"
INSTANCE = "c1"
VOLUME_DIR = "/srv/deployer/volumes"


def parse(text, plugin_list=None):
    """A Template from YAML text (dedented), as if read from ``app.yaml``."""
    return template.parse(textwrap.dedent(text), TEMPLATE_FILE, plugin_list)


def render(text, instance=INSTANCE, volume_dir=VOLUME_DIR, plugin_list=None):
    """The ContainerSpecs of a template's text, by unit (service, or replica: web.2), in template order."""
    plugin_list = plugins.installed() if plugin_list is None else plugin_list
    specs = spec.render(parse(text, plugin_list), instance, volume_dir, plugin_list)
    return {s.unit: s for s in specs}


def argv(text, service=None, **kwargs):
    """The ``docker run`` arguments of one service (the only one, unless named)."""
    specs = render(text, **kwargs)
    if service is None:
        (only,) = specs.values()
        return only.run_args()
    return specs[service].run_args()


def template_error(text, plugin_list=None):
    """The one TemplateError a bad template raises (fails the test if it parses)."""
    with pytest.raises(TemplateError) as caught:
        parse(text, plugin_list)
    return caught.value


def values_of(args, flag):
    """Every value given to ``flag`` in an argv: ``values_of(args, "-e")`` -> ``["A=1", ...]``."""
    return [value for option, value in zip(args, args[1:]) if option == flag]


def has_run(args, *items):
    """True if ``items`` appear in ``args`` consecutively, e.g. ``("--restart", "always")``."""
    n = len(items)
    return any(tuple(args[i : i + n]) == items for i in range(len(args) - n + 1))


def yaml_str(value):
    """A YAML double-quoted scalar holding ``value`` exactly (JSON strings are valid YAML)."""
    return json.dumps(value)



# Each helper as a fixture of its own name: `def test_x(argv): argv("redis: {}")`.
@pytest.fixture(name="parse")
def _parse():
    return parse


@pytest.fixture(name="render")
def _render():
    return render


@pytest.fixture(name="argv")
def _argv():
    return argv


@pytest.fixture(name="template_error")
def _template_error():
    return template_error


@pytest.fixture(name="values_of")
def _values_of():
    return values_of


@pytest.fixture(name="has_run")
def _has_run():
    return has_run


@pytest.fixture(name="yaml_str")
def _yaml_str():
    return yaml_str


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """A Shell running host scripts with the stub docker on PATH (stubdocker.py)."""
    docker = StubDocker(tmp_path / "docker")
    docker.install(monkeypatch)
    return Shell(tmp_path, docker)
