"""The engine seam: what the use cases (ops/) ask of whatever runs an instance's containers.

The core decides (template -> specs -> plan, all pure); an engine reports the facts a plan
is made against and applies the plan. ops/ call nothing but what ``Engine`` and
``Applying`` name: ``remote.host.Host`` is one Docker engine driven by shell scripts over
SSH (or locally), one round trip per operation; ``swarm.manager.Manager`` a Swarm, its
services driven the same way through a manager. ``connect`` picks the engine
(``deployer.engine``) for a task's context.
"""

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from .model.state import Container, InstanceState


@dataclass(frozen=True)
class Roots:
    state_dir: str
    volume_dir: str


@dataclass(frozen=True)
class Facts:
    """What one round trip learns about an instance before a deploy or a status."""

    roots: Roots
    state: InstanceState | None
    containers: tuple[Container, ...]
    images: dict  # image reference -> id, for the references present on the host
    others: tuple = ()  # the other instances' states (discovery)
    listening: frozenset = frozenset()  # TCP ports listening on the host (discovery)
    host_id: str = ""  # with etcd: this host's id, its reachable address, the registry
    address: str = ""
    registry: dict = field(default_factory=dict)
    networks: frozenset = frozenset()  # which of the networks asked about exist
    routes: tuple = ()  # the host's route table (model.route.Route), when asked for
    commands: dict = field(default_factory=dict)  # swarm: image reference -> (entrypoint, cmd) of its config


@dataclass(frozen=True)
class Released:
    """A service's release command: run (its exit code and seconds), or, in a dry run,
    one that would run (``command``, no exit code)."""

    service: str
    exit_code: int | None = None
    seconds: float | None = None
    command: tuple = ()

    def to_dict(self):
        """As --json and the history give it (the command only where it would run)."""
        done = {"service": self.service, "exit_code": self.exit_code, "seconds": self.seconds}
        return done if self.exit_code is not None else {**done, "command": list(self.command)}


class Applying(Protocol):
    """A deploy holding the instance's lock, its facts read under it."""

    facts: Facts
    seconds: dict  # service -> seconds its step took, once applied
    released: tuple  # Released: the release commands run, once applied
    back: frozenset  # replicas a failed roll put back on their previous containers, once applied
    notes: tuple  # warnings the engine gave while applying, once applied

    def apply(self, actions, final_state=None, entry=None, template_text="", deps=None, registry=None, networks=(),
              releases=None, held=None, moves=None):
        """Create the ``networks`` missing, run the plan's changing actions (each service in
        ``releases`` after its release command, moving routes as ``moves`` says), then record
        ``final_state`` and the release ``entry``; call ``held(ok, done)`` before the lock is
        released; (services
        done, the error that stopped the rest or None)."""

    def register(self, registry):
        """Only bring the endpoint registry up to date (nothing else changed)."""


class Engine(Protocol):
    """Where an instance runs. Every method is one round trip to it."""

    name: str  # as errors name it
    hostname: str  # ``{host}`` in templates
    settings: object  # settings.Settings
    etcd: object  # model.etcd.Etcd, or None
    registry: str  # where a built image is pushed for the other nodes to pull ("": nowhere, one engine)
    names_replicas: bool  # each replica has a name of its own (else its service's name resolves to them all)

    def check(self, template) -> tuple:
        """Before a deploy contacts the engine: the notes on what of the template it ignores
        (said once a deploy), or a TemplateError for what it cannot run."""

    def facts(self, instance, images=(), discovery=False, networks=(), routes=False) -> Facts: ...

    def sealed(self, instance, desired):
        """No round trip: what an instance should run (ops/converge.Desired) as this engine
        records and compares it: its secrets' values as they are (one host's state is a
        0600 file), or sealed (a swarm's state is a config anyone on a manager reads)."""

    def deploying(self, instance, images, who, lock_wait, pull=(), discovery=False, networks=(), routed=False
                  ) -> AbstractContextManager[Applying]: ...

    def build(self, tag, source, instance, progress=None) -> str: ...

    def write_state(self, instance, state, entry, history=0): ...

    def instances(self) -> list: ...

    def history(self, instance) -> list: ...

    def stored(self, instance) -> tuple: ...

    def prune(self, instance, who, lock_wait) -> tuple: ...

    def control(self, instance, verb, specs, who, lock_wait):
        """Stop, start or restart the specs' containers (a swarm: their services), holding
        the instance's lock."""

    def destroy(self, instance, volumes, who, lock_wait, routes=()) -> bool: ...

    def routes(self) -> tuple:
        """The host's route table (model.route.Route rows) and its text as read."""

    def served(self) -> tuple:
        """The host's route table and each routed container's state, by name."""

    def router(self, verb, lock_wait=0, seen="", table=()):
        """The host's router: ``status``, ``ca``, or ``restart`` serving ``table`` (read as ``seen``)."""

    def logs(self, instance, specs, follow=False, tail=None) -> int:
        """Print the log lines of the specs' containers (a swarm: of their services' tasks),
        each line prefixed with where it comes from; the exit code."""

    def attach(self, argv, tty, hidden=None, instance=None) -> int: ...

    def exec(self, instance, spec, words, tty, stdin=None) -> int:
        """Run ``words`` inside a running container of the spec (a swarm: a task of its
        service), attached as ``attach`` is (``tty``: the user's terminal, else ``stdin``);
        the exit code."""

    def one_off(self, instance, spec, words, tty, stdin=None) -> int:
        """Run a one-off of the service's ``spec`` (``run``) running ``words`` (else its cmd),
        its output printed, ``tty``: with the user's terminal, ``stdin``: given that pipe or
        file; its exit code (a container on one host, a job on a swarm)."""

    def conceal(self, values): ...


def connect(c, settings):
    """The engine ``deployer.engine`` names, for a task's context: a Fabric Connection is a
    host (or a swarm's manager) over SSH, a plain invoke Context (no ``-H``) this machine."""
    if settings.engine == "swarm":
        from .swarm.manager import Manager

        return Manager.for_context(c, settings)
    from .remote.host import Host

    return Host.for_context(c, settings)
