"""``env``: environment variables, the template's ``Env`` first, the service's over it."""

from ..schema import ENV
from .base import Fragment


class EnvPlugin:
    name = "env"
    keys = {"env": ENV}

    def fragment(self, service, context):
        return Fragment(env={**context.settings.get("Env", {}), **service.options.get("env", {})})


plugin = EnvPlugin()
