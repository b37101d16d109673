"""``expose``: an endpoint another service registered, as an env var (``ADDRESS:PORT``,
or the ``format`` given). discovery.dependencies has checked every reference."""

from ..model.schema import EXPOSE, LABEL_EXPOSED
from .base import Fragment


class ExposePlugin:
    name = "expose"
    keys = {"expose": EXPOSE}

    def fragment(self, service, context):
        env, labels = {}, {}
        for ref, exposure in service.options.get("expose", {}).items():
            endpoint = context.endpoints[ref]
            env[exposure["env"]] = exposure["format"].format(host=endpoint.address, port=endpoint.host_port)
            labels[LABEL_EXPOSED + exposure["env"]] = ref
        return Fragment(env=env, labels=labels)


plugin = ExposePlugin()
