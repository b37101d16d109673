"""``volumes``: container paths bind-mounted from the instance's own host directory.

Each path lives at ``<volume_dir>/<instance>/<service>/<path-id>``; a replica's
(``replicas: N``) at ``<volume_dir>/<instance>/<service>.<n>/<path-id>``, its own, unless the
volume is ``shared`` (``/data:shared``: the service's directory, for every replica). The path id must be
injective (``/a-b`` and ``/a/b`` may never share a directory) and must never leave that
directory, so it is an escape of the normalised path rather than a slug: ``/`` becomes
``-`` and every character outside ``[A-Za-z0-9.]`` becomes ``_XX`` (its hex bytes).

With ``volume_driver: NAME`` (and its ``volume_opts: {KEY: VALUE}``) each path is instead
a named volume of that driver, ``<instance>_<service>_<path-id>`` (a replica's
``<instance>_<service>.<n>_<path-id>``), made by Docker where the container first runs: on
one host as on a swarm, where such a service need not be pinned to a node (the driver
is trusted to give every node the same data; ``local`` keeps it on each node).
"""

import posixpath
import re

from voluptuous import Invalid

from ..errors import TemplateError
from ..model.schema import mapping, scalar, sequence, unit, volume
from .base import Fragment, Mount

_PLAIN = re.compile(r"[A-Za-z0-9.]")
DRIVER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./:@-]*")  # a plugin's name may be repository:tag
OPTION = re.compile(r"[A-Za-z0-9_.-]+")


def path_id(path):
    """``/var/lib/my-data`` -> ``var-lib-my_2ddata`` (one directory name, never ``.``/``..``)."""
    parts = posixpath.normpath(path).strip("/").split("/")
    return "-".join("".join(_escape(ch) for ch in part) for part in parts)


def _escape(ch):
    return ch if _PLAIN.match(ch) else "".join(f"_{b:02x}" for b in ch.encode())


def volumes(value):
    """A list of container paths, each at most once."""
    items = sequence(volume)(value)
    paths = [item["path"] for item in items]
    for twice in {p for p in paths if paths.count(p) > 1}:
        raise Invalid(f"{twice!r} is listed twice")
    return items


def _matching(pattern, expected):
    """A validator of strings matching ``pattern``; ``expected`` says what one is."""
    def validate(value):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise Invalid(f"expected {expected}, got {value!r}")
        return value
    return validate


volume_driver = _matching(DRIVER, "a volume driver's name such as local or org/plugin")


class VolumesPlugin:
    name = "volumes"
    keys = {"volumes": volumes, "volume_driver": volume_driver, "volume_opts": mapping(
        _matching(OPTION, "an option name (letters, digits, '_', '.', '-')"), scalar)}

    def fragment(self, service, context):
        driver, options = service.options.get("volume_driver"), service.options.get("volume_opts")
        if options is not None and driver is None:
            raise TemplateError("options of no driver: give volume_driver too", key=f"{service.key}.volume_opts")

        def place(v):
            owner = unit(service.name, 0 if v["shared"] else context.replica)
            if driver:
                return f"{context.instance}_{owner}_{path_id(v['path'])}"
            return posixpath.join(context.volume_dir, context.instance, owner, path_id(v["path"]))

        mounts = tuple(Mount(place(v), v["path"], v["read_only"], driver or "", tuple(sorted((options or {}).items())))
                       for v in service.options.get("volumes", ()))
        return Fragment(mounts=mounts, host_dirs=tuple(m.source for m in mounts if not m.driver))


plugin = VolumesPlugin()
