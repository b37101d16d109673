"""Settings: every ``deployer.*`` setting, parsed and checked in one place into one frozen value.

Settings come from Fabric's config, under ``deployer``: the collection's declared keys
(``declared()``), ``fabric.yaml`` / ``~/.fabric.yaml``, env vars ``FABRIC_DEPLOYER_<KEY>``
(which arrive as strings, and reach only declared keys), the CLI's flags. ``Settings.of``
reads them with fallbacks, so tasks imported flat into a user's fabfile (without the
collection's declarations) and direct Python calls work too. A bad value is one error
naming the setting (exit 2), before any host is contacted. README.rst's settings table
is ``table()``; a unit test keeps them the same.
"""

import ipaddress
from dataclasses import dataclass

from .errors import TemplateError
from .model.etcd import BACKENDS, Etcd
from .model.schema import HOOKS, IMAGE
from .model.route import Router
from .ops.build import DEFAULT_BUILDER, DEFAULT_RUNNER, Slug


def _number(kind):
    def parse(name, value):
        try:
            number = kind(value)
        except (TypeError, ValueError):
            number = -1
        if number < 0:
            raise TemplateError(f"setting deployer.{name}: expected a number of at least 0, got {value!r}")
        return number

    return parse


def _flag(name, value):
    """fabric.yaml gives a bool, an env var a string."""
    return str(value).lower() in ("1", "true", "yes")


def _text(name, value):
    return str(value)


def _port(name, value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if not 0 < number < 65536:
        raise TemplateError(f"setting deployer.{name}: expected a port (1-65535), got {value!r}")
    return number


def _choice(*choices):
    def parse(name, value):
        if value not in choices:
            raise TemplateError(f"setting deployer.{name}: expected one of {', '.join(choices)}, got {value!r}")
        return value

    return parse


def _subnets(name, value):
    """An IPv4 /16 (``10.211.0.0/16``): its 256 /24s are the subnets deployer's networks take
    once Docker's own address pools are used up."""
    try:
        net = ipaddress.IPv4Network(str(value))
    except ValueError:
        net = None
    if net is None or net.prefixlen != 16:
        raise TemplateError(f"setting deployer.{name}: expected an IPv4 /16 such as 10.211.0.0/16, got {value!r}")
    return str(net)


def _registry(name, value):
    """Where a swarm's ``git`` images are pushed: a registry, and a path in it if wanted
    (``registry.example:5000/team``, ``ghcr.io/team``; ``team`` is Docker Hub's), without a
    scheme, tag or trailing slash: ``<value>/<instance>-<service>:<tag>`` must be a reference."""
    value = str(value)
    if IMAGE.fullmatch(f"{value}/x") is None:
        raise TemplateError(f"setting deployer.{name}: expected a registry and an optional path in it, such as "
                            f"registry.example:5000/team (no scheme, tag or trailing slash), got {value!r}")
    return value


def _urls(name, value):
    """A list, or (an env var) a comma-separated string."""
    urls = value.split(",") if isinstance(value, str) else value
    return tuple(str(u).strip() for u in urls if str(u).strip())


@dataclass(frozen=True)
class Setting:
    """One ``deployer.<key>`` setting: how it is parsed, its default, and its README row."""

    key: str
    default: object
    parse: object
    doc: tuple  # the README's default column, one string a line
    flag: str = ""
    env_note: str = ""  # a line under the env var (how a list is written)

    @property
    def field(self):
        return self.key.replace(".", "_")

    @property
    def env(self):
        return "FABRIC_DEPLOYER_" + self.field.upper()


ENGINES = ("docker", "swarm")

SETTINGS = (
    Setting("engine", "docker", _choice(*ENGINES), ("``docker``: the host's Docker engine;",
                                                    "``swarm``: Swarm services, through a manager"), "--engine"),
    Setting("state_dir", "", _text, ("``/var/lib/deployer`` as root, else", "``$XDG_STATE_HOME/deployer``")),
    Setting("volume_dir", "", _text, ("``/srv/deployer/volumes`` as root, else", "``$XDG_STATE_HOME/deployer/volumes``")),
    Setting("retain", 3, _number(int), ("3 replaced containers kept per service",)),
    Setting("lock_wait", 60, _number(int), ("60 seconds waiting for another deploy",), "--lock-wait"),
    Setting("health_timeout", 60, _number(int), ("60 seconds to become healthy",)),
    Setting("min_uptime", 0.1, _number(float), ("0.1 seconds a new container must keep running",)),
    Setting("history", 100, _number(int), ("100 releases kept in ``history.jsonl`` (0: all)",)),
    Setting("release_timeout", 600, _number(int), ("600 seconds a service's ``release`` command may",
                                                   "run, then it is stopped (0: no limit)")),
    Setting("docker_timeout", 120, _number(int), ("120 seconds a docker command may take on a",
                                                   "host (builds and pulls: no limit); more than",
                                                   "the longest ``stop_timeout``")),
    Setting("subnets", "10.211.0.0/16", _subnets, ("``10.211.0.0/16``: the /24s deployer's",
                                                   "networks take once Docker's own address",
                                                   "pools are used up (about 30 networks)")),
    Setting("parallel", 10, _number(int), ("10 hosts at once",), "--parallel"),
    Setting("parallel_starts", 8, _number(int), ("8 new containers starting at once on a host",
                                                 "(0: all of a wave)")),
    Setting("rolling.batch", 1, _number(int), ("1 replica of a service replaced at a time, each",
                                               "health-gated (0: all at once)")),
    Setting("fail_fast", False, _flag, ("false: a failing host does not stop the others",), "--fail-fast"),
    Setting("known_hosts", "", _text, ("none: only ``~/.ssh/known_hosts``",)),
    Setting("accept_new_hosts", False, _flag, ("false: an unknown host key is refused",)),
    Setting("discovery", "state", _choice(*BACKENDS), ("``state``: endpoints registered on one host;",
                                                       "``etcd``: in etcd, across hosts")),
    Setting("etcd.endpoints", (), _urls, ("none (needed by ``etcd``): URLs as the hosts",
                                          "reach them, a list or comma-separated"), env_note="(comma-separated)"),
    Setting("etcd.prefix", "/deployer", _text, ("``/deployer``",)),
    Setting("quiet", False, _flag, ("false: print only errors",), "-q"),
    Setting("verbose", False, _flag, ("false: show each docker command the host runs",), "-v"),
    Setting("registry", "", _registry, ("none: a ``git`` service is refused on a swarm;",
                                        "else where a swarm's ``git`` images are",
                                        "pushed (``registry.example:5000/team``)")),
    Setting("slug.builder_image", DEFAULT_BUILDER, _text, (f"``{DEFAULT_BUILDER}``: builds buildpack slugs",)),
    Setting("slug.runner_image", DEFAULT_RUNNER, _text, (f"``{DEFAULT_RUNNER}``: runs them",)),
    *(Setting(f"hooks.{name.replace('-', '_')}", "", _text, ("none: else a command, ``sh -c``,", when))
      for name, when in HOOKS.items()),
    Setting("router.image", "caddy:2", _text, ("``caddy:2``: the router (Caddy 2) serving routes",)),
    Setting("router.http_port", 80, _port, ("80: the router's HTTP port on the host",)),
    Setting("router.https_port", 443, _port, ("443: its HTTPS port (not with ``tls: off``)",)),
    Setting("router.tls", "acme", _choice("acme", "internal", "off"),
            ("``acme``: certificates from Let's Encrypt;", "``internal``: from the router's own CA;",
             "``off``: plain HTTP only")),
    Setting("router.email", "", _text, ("none: the ACME account's email",)),
    Setting("router.drain", 10, _number(float), ("10 seconds a replaced container keeps serving",
                                                 "requests begun before its route moved")),
)


@dataclass(frozen=True)
class Settings:
    """Every setting's value, checked."""

    engine: str = "docker"
    state_dir: str = ""
    volume_dir: str = ""
    retain: int = 3
    lock_wait: int = 60
    health_timeout: int = 60
    min_uptime: float = 0.1
    history: int = 100
    release_timeout: int = 600
    docker_timeout: int = 120
    subnets: str = "10.211.0.0/16"
    parallel: int = 10
    parallel_starts: int = 8
    rolling_batch: int = 1
    fail_fast: bool = False
    known_hosts: str = ""
    accept_new_hosts: bool = False
    discovery: str = "state"
    etcd_endpoints: tuple = ()
    etcd_prefix: str = "/deployer"
    quiet: bool = False
    verbose: bool = False
    registry: str = ""
    slug_builder_image: str = DEFAULT_BUILDER
    slug_runner_image: str = DEFAULT_RUNNER
    hooks_pre_deploy: str = ""
    hooks_post_deploy: str = ""
    hooks_pre_rollback: str = ""
    hooks_post_rollback: str = ""
    router_image: str = "caddy:2"
    router_http_port: int = 80
    router_https_port: int = 443
    router_tls: str = "acme"
    router_email: str = ""
    router_drain: float = 10

    @classmethod
    def of(cls, config):
        """The settings in a Fabric/invoke config (or any mapping with a ``deployer`` key)."""
        return cls.parse(config.get("deployer", {}) or {})

    @classmethod
    def parse(cls, given):
        """Settings from the ``deployer`` mapping: unset (None, "") keys keep their default."""
        values = {}
        for setting in SETTINGS:
            value = _lookup(given, setting.key)
            if value is not None and value != "":
                values[setting.field] = setting.parse(setting.key, value)
        settings = cls(**values)
        settings.etcd  # checked now, with the rest
        if settings.router_tls != "off" and settings.router_http_port == settings.router_https_port:
            raise TemplateError("settings deployer.router.http_port and https_port: both are "
                                f"{settings.router_http_port}")
        return settings

    @property
    def etcd(self):
        """The etcd backend, checked; None for the default ``state`` backend."""
        return Etcd.of(self.etcd_endpoints, self.etcd_prefix) if self.discovery == "etcd" else None

    @property
    def router(self):
        """The host's router, as these settings run it (a request waits for an upstream as
        long as a new container may take to turn healthy)."""
        return Router(self.router_image, self.router_http_port, self.router_https_port, self.router_tls,
                      self.router_email, self.router_drain, self.health_timeout)

    @property
    def slug(self):
        return Slug(self.slug_builder_image, self.slug_runner_image)

    @property
    def hooks(self):
        """The hooks fabric.yaml sets, by name (``pre-deploy``): command and where it is set."""
        return {name: (command, f"deployer.hooks.{name.replace('-', '_')}") for name in HOOKS
                if (command := getattr(self, f"hooks_{name.replace('-', '_')}"))}


def _lookup(given, key):
    """``given[a][b]`` for the key ``a.b``; a part written with ``-`` for ``_`` is found too
    (``hooks.pre-deploy``, as a template's ``Hooks`` writes it)."""
    for part in key.split("."):
        if not hasattr(given, "get"):
            return None
        value = given.get(part)
        given = given.get(part.replace("_", "-")) if value is None else value
    return given


def declared():
    """The ``deployer`` keys a collection declares (with no value), so that Fabric maps the
    env vars FABRIC_DEPLOYER_<KEY> onto them."""
    tree = {}
    for setting in SETTINGS:
        *parents, leaf = setting.key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = None
    return tree


def table():
    """README.rst's settings table (reStructuredText)."""
    widths = (32, 48, 40)
    rule = "  ".join("=" * w for w in widths)
    rows = [rule, _row(("``fabric.yaml`` key", "default", "env var / flag"), widths), rule]
    for s in SETTINGS:
        env = [f"``{s.env}``" + ("," if s.flag else ""), *([f"``{s.flag}``"] if s.flag else []),
               *([s.env_note] if s.env_note else [])]
        lines = max(len(s.doc), len(env))
        for i in range(lines):
            key = f"``deployer.{s.key}``" if i == 0 else ""
            rows.append(_row((key, s.doc[i] if i < len(s.doc) else "", env[i] if i < len(env) else ""), widths))
    rows.append(rule)
    return "\n".join(rows) + "\n"


def _row(cells, widths):
    return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip()
