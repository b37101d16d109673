"""``register``: name container ports as endpoints, published on their allocated host port.

The allocation is in discovery.py; here each endpoint becomes a ``-p`` of the container,
bound to the endpoint's address (the Docker bridge's; with etcd, the host's reachable
address) or every interface, with ``wan``.
"""

from ..model.schema import REGISTER
from .base import Fragment


class RegisterPlugin:
    name = "register"
    keys = {"register": REGISTER}

    def fragment(self, service, context):
        ports = []
        for reg in service.options.get("register", {}).values():
            endpoint = context.endpoints[f"{service.name}:{reg['name']}"]
            ports.append(f"{endpoint.bind}:{endpoint.host_port}:{endpoint.port}")
        return Fragment(ports=tuple(ports))


plugin = RegisterPlugin()
