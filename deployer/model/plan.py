"""Desired specs vs what the host has -> the ordered actions of a deploy.

Idempotency is a comparison, not a flag: a service is kept when its container runs,
carries the spec's config hash, and runs the image id its image reference has now.
Anything else is recreated, and the action says why in template words. Pure: the host's
facts come in as data. Removals come first (they may free a host port a new service
needs), then services in template order.
"""

from dataclasses import dataclass

from .spec import ContainerSpec, changes

CREATE, RECREATE, KEEP, REMOVE = "create", "recreate", "keep", "remove"


@dataclass(frozen=True)
class Action:
    kind: str
    service: str
    reason: str
    spec: ContainerSpec | None = None  # None for a removal
    retire: str = ""  # the name the current container is kept under, stopped, for rollback
    reuse: str = ""  # a retained container that already matches the spec: started, not created
    prune: tuple[str, ...] = ()  # retained containers beyond the retention count, to remove


def plan(specs, state, containers, images, force=False, retain=3):
    """``images`` maps image references to the id the service should run.

    A replaced container is kept stopped (the newest ``retain`` per service), so that
    rollback is a swap; a retained container that matches the spec is reused.
    """
    recorded = state.services if state else {}
    known = set(recorded) | {c.service for c in containers}
    wanted = {spec.service for spec in specs}
    actions = [Action(REMOVE, name, "not in the template") for name in sorted(known - wanted)]
    for spec in specs:
        mine = [c for c in containers if c.service == spec.service]
        current = next((c for c in mine if c.name == spec.name), None)
        if spec.service not in known:
            actions.append(Action(CREATE, spec.service, "new", spec))
            continue
        why = _why(spec, current, recorded.get(spec.service), images.get(spec.image), force)
        if not why:
            actions.append(Action(KEEP, spec.service, "unchanged", spec))
            continue
        retained = sorted((c for c in mine if c is not current), key=lambda c: c.created, reverse=True)
        reuse = next((c for c in retained if _matches(c, spec, images)), None) if not force else None
        retire = f"{spec.name}.r{current.release}" if current else ""
        kept = ([retire] if current else []) + [c.name for c in retained if c is not reuse]
        if reuse:
            why += f" (retained container {reuse.name} started again)"
        actions.append(
            Action(RECREATE, spec.service, why, spec, retire, reuse.name if reuse else "", tuple(kept[retain:]))
        )
    return tuple(actions)


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
