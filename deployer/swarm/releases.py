"""Releases held by the cluster: each deploy's record (its history entry, template text
included, and the state it leaves) is a Swarm config labelled ``deployer.instance``, so
every manager reads the same history and state, and destroy removes them with the rest.

A config is immutable and named at random (``deployer-<hex>``: an instance name can be as
long as a config name may be); ``deployer.at`` (nanoseconds) orders them, and
``deployer.state`` marks those that say what runs (not a first deploy that changed
nothing). Pure: the lines recording one, and the parsers of what ``sh/swarm.sh`` reports.
"""

import base64
import json

from ..errors import DeployerError
from ..model.state import InstanceState
from ..remote.scripts import call, q


def record(state, entry, history=0, released=False):
    """The line keeping a release (``state`` None: only the entry, an attempt), and only the
    newest ``history`` releases (0: all). With ``released``, the entry's ``releases`` are
    what the script's release commands reported (dpl_released), as on one host (apply.record)."""
    data = json.dumps({"state": json.loads(state.to_json()) if state else None, "entry": entry}, sort_keys=True)
    word = q(data)
    if released:  # {"entry": {"releases": [...], <the entry's keys>}, "state": ...}: the keys sorted, entry first
        head = '{"entry": {'
        word = f'"{{\\"entry\\": {{\\"releases\\": [$dpl_released], "{q(data[len(head):])}'
    return f"{call('dpl_swarm_record', int(state is not None), int(history))} {word} || exit 1"


def state(text, where):
    """The InstanceState of a release config's data (``dpl_swarm_state``'s ``release``
    section), None for an attempt that left none."""
    stated = _data(text, where)["state"]
    return None if stated is None else InstanceState.from_json(json.dumps(stated), where)


def entry(text, where):
    """The history entry of a release config's data."""
    return _data(text, where)["entry"]


def releases(inspected, where):
    """``[(at, instance, data)]`` of the release configs in a ``docker config inspect``
    array, oldest first."""
    try:
        found = [(int(c["Spec"]["Labels"]["deployer.at"]), c["Spec"]["Labels"]["deployer.instance"],
                  base64.b64decode(c["Spec"]["Data"]).decode()) for c in json.loads(inspected)]
    except (ValueError, KeyError, TypeError) as e:
        raise DeployerError(f"cannot read docker config inspect output: {e}", host=where) from None
    return sorted(found)


def _data(text, where):
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or "entry" not in data:
            raise ValueError("not a release")
        return data
    except ValueError as e:
        raise DeployerError(f"corrupt release config ({e}); nothing was changed", file=where) from None
