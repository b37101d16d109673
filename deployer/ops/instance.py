"""Working with an instance that exists: status, history, endpoints, prune, stop/start/
restart, logs, run/exec's specs, destroy. Each is one round trip to the engine and returns
data for output.py; nothing prints.
"""

import getpass
import socket
from dataclasses import dataclass, field

from ..errors import DeployerError
from ..model import route
from ..model.plan import leftovers
from ..model.spec import ContainerSpec
from ..model.state import InstanceState, check_instance_name


@dataclass(frozen=True)
class Status:
    host: str
    instance: str
    state: InstanceState | None
    containers: tuple
    leftovers: dict = field(default_factory=dict)  # service -> plan.Leftovers a deploy repairs


def waiting(host, given):
    """The --lock-wait flag, else the setting."""
    return host.settings.lock_wait if given is None else given


def who():
    return f"{getpass.getuser()}@{socket.gethostname()}"


def status(host, instance, missing_ok=False):
    """The instance's state and containers, and what a deploy would repair. An instance
    the host knows nothing of is an error, or with ``missing_ok`` a Status of nothing."""
    check_instance_name(instance)
    facts = host.facts(instance)
    if facts.state is None and not facts.containers and not missing_ok:
        raise DeployerError("no such instance on this host", host=host.name, instance=instance)
    extra = {}
    for service, recorded in (facts.state.services.items() if facts.state else ()):
        mine = [c for c in facts.containers if c.unit == service]
        if found := leftovers(recorded.container, mine, host.settings.retain):
            extra[service] = found
    return Status(host.name, instance, facts.state, facts.containers, extra)


def history(host, instance):
    check_instance_name(instance)
    releases = host.history(instance)
    if not releases:
        raise DeployerError("no releases: the instance was never deployed here", host=host.name, instance=instance)
    return releases


def prune(host, instance, lock_wait=None):
    """Remove this instance's retained (stopped, replaced) containers, then the images built
    for it that no container uses now; never another's. (containers, images) removed."""
    check_instance_name(instance)
    return host.prune(instance, who(), waiting(host, lock_wait))


def destroy(host, instance, volumes=False, lock_wait=None):
    """Its routes go first (their domains answer 404 at once): the table is read, then the
    destroy changes it only if no deploy changed it meanwhile."""
    check_instance_name(instance)
    table, seen = host.routes()
    rest = route.without(table, instance)
    routes = (seen, route.dump(rest), route.rendered(rest, host.settings.router)) if rest != table else ()
    if not host.destroy(instance, volumes, who(), waiting(host, lock_wait), routes):
        raise DeployerError("no such instance on this host", host=host.name, instance=instance)


def restart_router(host, lock_wait=None):
    """The router replaced, serving the host's table (with the settings as they are now)."""
    table, seen = host.routes()
    host.router("restart", waiting(host, lock_wait), seen, table)
    return table


def _state(host, instance):
    """The instance's state on the host (one round trip), or an error if it has none."""
    check_instance_name(instance)
    state = host.facts(instance).state
    if state is None:
        raise DeployerError("no such instance on this host", host=host.name, instance=instance)
    return state


def service_specs(host, instance, service=None):
    """The specs the host's state records, of all services, of one (each of its replicas,
    in replica order: ``web``), or of one replica (``web.2``): for run, exec, logs..."""
    state = _state(host, instance)
    specs = [ContainerSpec.from_dict(svc.spec) for svc in state.services.values()]
    chosen = [spec for spec in specs if service in (None, spec.service, spec.unit)]
    if not chosen:
        known = ", ".join(dict.fromkeys(spec.service for spec in specs))
        replicas = ", ".join(spec.unit for spec in specs if spec.replica)
        raise DeployerError(f"no service {service!r} (services: {known}{f'; replicas: {replicas}' if replicas else ''})",
                            host=host.name, instance=instance)
    return chosen


def control(host, instance, verb, service=None, lock_wait=None):
    """Stop, start or restart the instance's service containers (a swarm: its services),
    under the lock; the containers' names."""
    specs = service_specs(host, instance, service)
    host.control(instance, verb, specs, who(), waiting(host, lock_wait))
    return [spec.name for spec in specs]


def endpoints(host, instance):
    """The instance's registered endpoints, from its state: ``{"svc:ep": {address, host_port, ...}}``."""
    return _state(host, instance).endpoints
