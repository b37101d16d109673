"""``env``: environment variables, the template's ``Env`` first, the service's over it.

A ``{secret: NAME}`` value is looked up in the render context's secrets; a missing one is
a template error, raised before anything changes on a host.
"""

from ..errors import TemplateError
from ..model.schema import ENV
from ..model.variables import SecretRef
from .base import Fragment


class EnvPlugin:
    name = "env"
    keys = {"env": ENV}

    def fragment(self, service, context):
        env = {**context.settings.get("Env", {}), **service.options.get("env", {})}
        secrets = tuple(sorted(k for k, v in env.items() if isinstance(v, SecretRef)))
        for key in secrets:
            name = env[key].name
            if name not in context.secrets:
                raise TemplateError(
                    f"secret {name!r} is not set: give it in the environment or with --secrets FILE",
                    key=f"{service.key}.env.{key}",
                )
            env[key] = context.secrets[name]
        return Fragment(env=env, secrets=secrets)


plugin = EnvPlugin()
