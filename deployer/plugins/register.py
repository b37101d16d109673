"""``register``: name container ports as endpoints.

The allocation is in discovery.py. A service registering endpoints joins its own service
network (network.py), which other instances' consumers join to reach it and nothing else
of its instance. An endpoint with a host port (etcd, ``wan``) also becomes a ``-p`` of the
container, bound to the host's reachable address (etcd), or every interface (``wan``):
never to the Docker bridge's address, which every container on the host reaches. Each
replica of a replicated service publishes its own host port (discovery.allocate).
"""

from ..model.schema import REGISTER
from .base import Fragment


class RegisterPlugin:
    name = "register"
    keys = {"register": REGISTER}

    def fragment(self, service, context):
        ports, networks = [], []
        for reg in service.options.get("register", {}).values():
            endpoint = context.endpoints[f"{service.name}:{reg['name']}"]
            host_port = endpoint.published(context.replica)
            if host_port:
                ports.append(f"{endpoint.bind}:{host_port}:{endpoint.port}")
            networks = [(endpoint.network, endpoint.name)]
        return Fragment(ports=tuple(ports), networks=tuple(networks))


plugin = RegisterPlugin()
