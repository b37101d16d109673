"""Desired specs vs what the host has -> the ordered actions of a deploy.

Pure: the host's facts come in as data. Removals come first (they may free a fixed host
port a new service needs), then services in template order.
"""

from dataclasses import dataclass

from .spec import ContainerSpec

CREATE, RECREATE, REMOVE = "create", "recreate", "remove"


@dataclass(frozen=True)
class Action:
    kind: str
    service: str
    reason: str
    spec: ContainerSpec | None = None  # None for a removal


def plan(specs, state, containers):
    """Every service in the template is (re)created; services the host has beyond it go."""
    known = set(state.services if state else ()) | {c.service for c in containers}
    wanted = {spec.service for spec in specs}
    actions = [Action(REMOVE, name, "not in the template") for name in sorted(known - wanted)]
    for spec in specs:
        if spec.service in known:
            actions.append(Action(RECREATE, spec.service, "deploy replaces every service", spec))
        else:
            actions.append(Action(CREATE, spec.service, "new", spec))
    return tuple(actions)
