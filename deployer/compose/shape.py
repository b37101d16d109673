"""The shape of what the import reads in a compose file: which keys hold a string, a
list or a mapping. A file whose values have other shapes is bad input (compose refuses it
too): one line naming the file and the key, exit code 2, before anything is converted.
Only shapes are checked here; values are the converters' business (they drop, with why,
what deployer cannot take). Keys the import does not read may hold anything.
"""

from voluptuous import Any, Extra, Invalid, MultipleInvalid, Schema

from ..errors import TemplateError

SCALAR = Any(str, int, float, bool, None)
ASSIGNMENTS = Any([SCALAR], {Extra: SCALAR}, None)  # environment, labels, build args
PORT = Any(str, int)

BUILD = Any(str, {"context": str, "dockerfile": str, "args": ASSIGNMENTS, Extra: object})
COMMAND = Any(str, [SCALAR], None)
ENV_FILE = Any(str, [Any(str, {"path": str, "required": bool, "format": str, Extra: object})], None)
SECRET = Any(str, {"source": str, "target": str, Extra: object})
VOLUME = Any(str, {"target": str, "source": str, "type": str, "read_only": bool, Extra: object})
PORTS = [Any(PORT, {"target": PORT, "published": PORT, "host_ip": str, "protocol": str, Extra: object})]
DEPLOY = {"resources": Any({"limits": Any({Extra: object}, None), Extra: object}, None),
          "restart_policy": Any({Extra: object}, None), Extra: object}
NETWORKS = Any([str], {Extra: Any(None, {"aliases": Any([SCALAR], None), Extra: object})}, None)
DEPENDS_ON = Any([str], {Extra: Any(None, {"condition": str, Extra: object})}, None)

SERVICE = Schema({
    "image": Any(str, None),
    "build": Any(BUILD, None),
    "command": COMMAND,
    "entrypoint": COMMAND,
    "environment": ASSIGNMENTS,
    "env_file": ENV_FILE,
    "labels": ASSIGNMENTS,
    "secrets": Any([SECRET], None),
    "volumes": Any([VOLUME], None),
    "ports": Any(PORTS, None),
    "expose": Any([PORT], None),
    "deploy": Any(DEPLOY, None),
    "healthcheck": Any({"test": Any(str, [SCALAR], None), Extra: object}, None),
    "links": Any([str], None),
    "depends_on": DEPENDS_ON,
    "networks": NETWORKS,
    "extends": Any(str, {"service": str, Extra: object}),
    "container_name": Any(str, None),
    Extra: object,
})
TOP = Schema({
    "secrets": Any({Extra: Any(None, {Extra: object})}, None),
    "volumes": Any({Extra: Any(None, {Extra: object})}, None),
    Extra: object,
})


def check(data, path):
    """Raise a TemplateError naming the first key whose value has the wrong shape."""
    _validate(TOP, data, path, "")
    for name, service in data["services"].items():
        _validate(SERVICE, service, path, name)


def _validate(schema, value, path, prefix):
    try:
        schema(value)
    except (Invalid, MultipleInvalid) as e:
        errors = e.errors if isinstance(e, MultipleInvalid) else [e]
        first = min(errors, key=lambda err: [str(p) for p in err.path])
        key = prefix
        for part in first.path[:1] if first.path else []:
            key = f"{key}.{part}" if key else str(part)
        raise TemplateError(f"expected {_expected(schema, first)}", file=path, key=key or None) from None


def _expected(schema, error):
    """What the top key's value should have been, in compose's words."""
    key = error.path[0] if error.path else None
    shapes = {
        "environment": "a mapping or a list of NAME=value", "labels": "a mapping or a list of NAME=value",
        "command": "a string or a list", "entrypoint": "a string or a list", "build": "a path or a mapping",
        "env_file": "a path or a list of them", "extends": "a service's name or {service, file}",
        "networks": "a list or a mapping of networks", "depends_on": "a list or a mapping of services",
        "deploy": "a mapping", "healthcheck": "a mapping", "secrets": "a list (or, at the top level, a mapping)",
        "volumes": "a list (or, at the top level, a mapping)", "ports": "a list of ports",
        "expose": "a list of ports", "links": "a list of services", "image": "a string",
        "container_name": "a string",
    }
    return shapes.get(key, "another shape")
