"""``volumes``: container paths bind-mounted from the instance's own host directory.

Each path lives at ``<volume_dir>/<instance>/<service>/<path-id>``; a replica's
(``replicas: N``) at ``<volume_dir>/<instance>/<service>.<n>/<path-id>``, its own, unless the
volume is ``shared`` (``/data:shared``: the service's directory, for every replica). The path id must be
injective (``/a-b`` and ``/a/b`` may never share a directory) and must never leave that
directory, so it is an escape of the normalised path rather than a slug: ``/`` becomes
``-`` and every character outside ``[A-Za-z0-9.]`` becomes ``_XX`` (its hex bytes).
"""

import posixpath
import re

from voluptuous import Invalid

from ..model.schema import sequence, unit, volume
from .base import Fragment, Mount

_PLAIN = re.compile(r"[A-Za-z0-9.]")


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


class VolumesPlugin:
    name = "volumes"
    keys = {"volumes": volumes}

    def fragment(self, service, context):
        def base(shared):
            return posixpath.join(context.volume_dir, context.instance,
                                  unit(service.name, 0 if shared else context.replica))

        mounts = tuple(
            Mount(posixpath.join(base(v["shared"]), path_id(v["path"])), v["path"], v["read_only"])
            for v in service.options.get("volumes", ())
        )
        return Fragment(mounts=mounts, host_dirs=tuple(m.source for m in mounts))


plugin = VolumesPlugin()
