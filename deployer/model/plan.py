"""Desired specs vs what the host has -> the ordered actions of a deploy.

Idempotency is a comparison, not a flag: a service is kept when its container runs,
carries the spec's config hash, and runs the image id its image reference has now.
Anything else is recreated, and the action says why in template words. Pure: the host's
facts come in as data. A service dropped from the template whose container publishes a
host port is removed first (it may free the port for a new one); the rest come after the
services in template order (``late``), so that a route its domain moves to serves first.
"""

from dataclasses import dataclass

from . import network
from .spec import ContainerSpec, changes

CREATE, RECREATE, KEEP, REMOVE, REPAIR = "create", "recreate", "keep", "remove", "repair"


@dataclass(frozen=True)
class Action:
    kind: str
    service: str
    reason: str
    spec: ContainerSpec | None = None  # None for a removal
    retire: str = ""  # the name the current container is kept under, stopped, for rollback
    reuse: str = ""  # a retained container that already matches the spec: started, not created
    prune: tuple[str, ...] = ()  # retained containers beyond the retention count, removed after the steps
    stop: tuple[str, ...] = ()  # retained containers found running: stopped before the step
    clear: tuple[str, ...] = ()  # leftovers of a cut-off start-first step (NAME.next): removed before the step
    late: bool = False  # a removal once the other steps are done (and its route drained): plan()


@dataclass(frozen=True)
class Leftovers:
    """What a service has besides its one running container that must not be there: a
    retained container running (a restart policy brought it back, or a step was cut off
    between its rename and its stop), a ``NAME.next`` of a cut-off start-first step, more
    retained containers than ``retain``. A deploy repairs them; status shows them."""

    stop: tuple[str, ...] = ()
    clear: tuple[str, ...] = ()
    prune: tuple[str, ...] = ()

    def __bool__(self):
        return bool(self.stop or self.clear or self.prune)

    def said(self):
        """In the deploy table's words: ``stopped leftover web.r38, removed leftover web.next``."""
        return ", ".join([*(f"stopped leftover {n}" for n in self.stop), *(f"removed leftover {n}" for n in self.clear),
                          *(f"removed retained {n} (beyond retain)" for n in self.prune)])


def leftovers(name, mine, retain, kept=None, retire=""):
    """The Leftovers of the service whose container is ``name``, among its containers
    ``mine``: ``kept`` (a retained container about to run again) is not one, and a
    replacement adds its current container (retired as ``retire``) to those retained."""
    clear = tuple(c.name for c in mine if c.name == f"{name}.next")
    retained = sorted((c for c in mine if c.name != name and c.name not in clear), key=lambda c: c.created, reverse=True)
    stop = tuple(c.name for c in retained if c.running and c is not kept)
    names = ([retire] if retire else []) + [c.name for c in retained if c is not kept]
    return Leftovers(stop, clear, tuple(names[retain:]))


def plan(specs, state, containers, images, force=False, retain=3):
    """``images`` maps image references to the id the service should run.

    Services gone from the template are removed last, drained, as a service's units scaled
    away are (another service, or the new units, take their domains first), except those
    whose containers publish host ports: first, since a new service may bind them.
    A replaced container is kept stopped (the newest ``retain`` per service), so that
    rollback is a swap; a retained container that matches the spec is reused. Leftovers
    of a deploy that was cut off are repaired (REPAIR when nothing else changes).
    """
    recorded = state.services if state else {}
    known = set(recorded) | {c.unit for c in containers}
    wanted = {spec.unit for spec in specs}
    services = {spec.service for spec in specs}
    gone = sorted(known - wanted, key=_removal_order)
    binding = {c.unit for c in containers if c.ports}
    dropped = [name for name in gone if split(name)[0] not in services]
    actions = [Action(REMOVE, name, "not in the template") for name in dropped if name in binding]
    for spec in specs:
        mine = [c for c in containers if c.unit == spec.unit]
        current = next((c for c in mine if c.name == spec.name), None)
        if spec.unit not in known:
            actions.append(Action(CREATE, spec.unit, ", ".join(["new", *network.joined(spec)]), spec))
            continue
        why = _why(spec, current, recorded.get(spec.unit), images.get(spec.image), force)
        if not why:
            extra = leftovers(spec.name, mine, retain)
            kind = REPAIR if extra else KEEP
            actions.append(Action(kind, spec.unit, extra.said() or "unchanged", spec, prune=extra.prune,
                                  stop=extra.stop, clear=extra.clear))
            continue
        retained = sorted((c for c in mine if c is not current and c.name != f"{spec.name}.next"),
                          key=lambda c: c.created, reverse=True)
        reuse = next((c for c in retained if _matches(c, spec, images)), None) if not force else None
        retire = f"{spec.name}.r{current.release}" if current else ""
        extra = leftovers(spec.name, mine, retain, reuse, retire)
        if reuse:
            why += f" (retained container {reuse.name} started again)"
        why += "".join(f"; {said}" for said in [Leftovers(extra.stop, extra.clear).said()] if said)
        actions.append(Action(RECREATE, spec.unit, why, spec, retire, reuse.name if reuse else "", extra.prune,
                              extra.stop, extra.clear))
    # a unit of a service still in the template goes last: its service's other units (new
    # ones, when its one container becomes replicas or back) serve before it stops
    actions += [Action(REMOVE, name, "not in the template", late=True) for name in dropped if name not in binding]
    actions += [Action(REMOVE, name, "scaled down", late=True) for name in gone if split(name)[0] in services]
    return tuple(actions)


def split(unit):
    """``web.2`` -> ``("web", 2)``, ``web`` -> ``("web", 0)`` (no service name ends in ``.N``)."""
    service, _, replica = unit.rpartition(".")
    return (service, int(replica)) if replica.isdigit() and service else (unit, 0)


def _removal_order(unit):
    """Units removed by service, the highest replica first (scaling down drops the last)."""
    service, replica = split(unit)
    return service, -replica


def releasing(actions, commands, state, images, force=False):
    """Service -> the release command (``release:``) that runs before its step: for a service
    created, or recreated because its spec or its image changed (or ``force``); not for one
    recreated only because its container exited or went missing (the same release ran
    before), nor for one kept, repaired or removed. In the plan's order."""
    recorded = state.services if state else {}

    def changed(spec):
        before = recorded.get(spec.unit)
        image_id = images.get(spec.image)
        return force or before is None or before.config_hash != spec.config_hash or bool(
            before.image_id and image_id and before.image_id != image_id)

    out = {}
    for a in actions:
        if a.kind in (CREATE, RECREATE) and a.spec.service in commands and changed(a.spec):
            out.setdefault(a.service if not a.spec.replica else _first(actions, a.spec.service), commands[a.spec.service])
    return out


def _first(actions, service):
    """The unit of a service's first step: its release command runs before it, once."""
    return next(a.service for a in actions if a.spec and a.spec.service == service and a.kind in (CREATE, RECREATE))


def _matches(container, spec, images):
    return container.config_hash == spec.config_hash and container.image_id == images.get(spec.image)

def _why(spec, container, recorded, image_id, force):
    if container is None:
        return "container missing"
    if not container.running:
        return f"container {container.status}"
    if container.config_hash != spec.config_hash:
        if recorded and recorded.config_hash == container.config_hash:
            return ", ".join(changes(recorded.spec, spec)) or "config changed"
        return "container differs from what deployer recorded"
    if image_id and container.image_id != image_id:
        return f"image {spec.image} updated ({_short(container.image_id)} -> {_short(image_id)})"
    if force:
        return "forced (--force)"
    return None


def _short(image_id):
    return image_id.split(":")[-1][:12]
