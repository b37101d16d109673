"""Plugins turn a service's template keys into fragments of its container spec.

The built-in plugins (volumes, ports, env, register, expose, git, route) always load; third-party plugins load from
the ``deployer.plugins`` entry point group, each entry point naming a Plugin object.
"""

import functools
from importlib.metadata import entry_points

from ..errors import DeployerError
from . import env, expose, git, ports, register, route, volumes

BUILTIN = (volumes.plugin, ports.plugin, env.plugin, register.plugin, expose.plugin, git.plugin, route.plugin)
ENTRY_POINT_GROUP = "deployer.plugins"


@functools.cache
def installed():
    """Built-in plugins, then installed third-party ones, each template key claimed once."""
    plugins = list(BUILTIN)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            plugin = entry.load()
        except Exception as e:  # a broken third-party plugin must not hide which one
            raise DeployerError(f"plugin {entry.name!r} ({entry.value}) failed to load: {e}") from e
        if plugin not in plugins:
            plugins.append(plugin)
    claimed = {}
    for plugin in plugins:
        for key in plugin.keys:
            if key in claimed:
                raise DeployerError(
                    f"plugins {claimed[key]!r} and {plugin.name!r} both claim the template key {key!r}"
                )
            claimed[key] = plugin.name
    return tuple(plugins)
