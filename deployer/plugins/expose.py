"""``expose``: an endpoint another service registered, as an env var (``ADDRESS:PORT``,
or the ``format`` given). discovery.dependencies has checked every reference."""

from ..model.schema import EXPOSE
from .base import Fragment

# each exposed env var's label names its endpoint: docker inspect shows where a value came
# from, and a plan says "endpoint db:web moved" rather than only "env.DB_ADDR changed"
LABEL = "deployer.exposed."


class ExposePlugin:
    name = "expose"
    keys = {"expose": EXPOSE}

    def fragment(self, service, context):
        env, labels = {}, {}
        for ref, exposure in service.options.get("expose", {}).items():
            endpoint = context.endpoints[ref]
            env[exposure["env"]] = exposure["format"].format(host=endpoint.address, port=endpoint.host_port)
            labels[LABEL + exposure["env"]] = ref
        return Fragment(env=env, labels=labels)


plugin = ExposePlugin()
