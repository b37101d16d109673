"""``expose``: an endpoint another service registered, as an env var (``ADDRESS:PORT``,
or the ``format`` given); of a replicated service, every replica's, comma-separated in replica
order, the format applied to each. discovery.dependencies has checked every reference.

On this host an endpoint is its service's alias and container port, on the networks the
container joins: its own instance's, and for another instance's endpoint that service's
network (network.py), so the consumer reaches that service and nothing else of it. An
endpoint on another host (etcd) is its published address and host port."""

from ..model.schema import EXPOSE, LABEL_EXPOSED
from .base import Fragment


class ExposePlugin:
    name = "expose"
    keys = {"expose": EXPOSE}

    def fragment(self, service, context):
        env, labels, networks = {}, {}, []
        for ref, exposure in service.options.get("expose", {}).items():
            endpoint = context.endpoints[ref]
            env[exposure["env"]] = ",".join(exposure["format"].format(host=host, port=port)
                                            for host, port in endpoint.addresses)
            labels[LABEL_EXPOSED + exposure["env"]] = ref
            if "/" in ref and endpoint.network:
                networks.append((endpoint.network, ""))
        return Fragment(env=env, labels=labels, networks=tuple(networks))


plugin = ExposePlugin()
