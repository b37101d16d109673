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

    @property
    def changes(self):
        return self.kind != KEEP


def plan(specs, state, containers, images, force=False):
    """``images`` maps image references to the id they have on the host now."""
    recorded = state.services if state else {}
    known = set(recorded) | {c.service for c in containers}
    wanted = {spec.service for spec in specs}
    actions = [Action(REMOVE, name, "not in the template") for name in sorted(known - wanted)]
    by_name = {c.name: c for c in containers}
    for spec in specs:
        if spec.service not in known:
            actions.append(Action(CREATE, spec.service, "new", spec))
            continue
        why = _why(spec, by_name.get(spec.name), recorded.get(spec.service), images.get(spec.image), force)
        actions.append(Action(RECREATE, spec.service, why, spec) if why else Action(KEEP, spec.service, "unchanged", spec))
    return tuple(actions)


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
