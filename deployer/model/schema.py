"""Voluptuous schemas for templates: what each key accepts, and the message when it doesn't.

Validators normalise as they check (an int port becomes ``"8080"``, a string cmd a
list), so everything after the loader sees one shape per key. Messages say what was
expected, in the words of the template language; template.py adds file and key path.
"""

import posixpath
import re
import shlex

from voluptuous import Invalid, Optional, Required, Schema

from .variables import PLACEHOLDER, SecretRef

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?[bkmgBKMG]?")
DURATION = re.compile(r"([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+")
PORT = re.compile(
    r"(?:(?:(?P<ip>[0-9.]+|\[[0-9a-fA-F:]+\]):)?(?P<host>[0-9]{1,5})?:)?"
    r"(?P<container>[0-9]{1,5})(?:/(?P<proto>tcp|udp|sctp))?"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE = re.compile(
    rf"(?:(?P<domain>[a-zA-Z0-9.-]+(?::[0-9]+)?)/)?"
    rf"(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[a-z0-9]+:[0-9a-fA-F]{32,}))?"
)
RESTART = re.compile(r"(no|always|unless-stopped|on-failure(:[0-9]+)?)")
RESERVED_LABEL_PREFIX = "deployer."
# an env var's value is an endpoint's address (its value names the endpoint): docker inspect
# shows where a value came from, and a plan says "endpoint db:web moved" rather than only
# "env.DB_ADDR changed"
LABEL_EXPOSED = "deployer.exposed."


def text(value):
    """A string without NUL (which no argv or env var can carry) that is valid UTF-8
    (YAML escapes can make lone surrogates, which no host can be sent)."""
    if not isinstance(value, str):
        raise Invalid("expected a string")
    if "\0" in value:
        raise Invalid("contains a NUL byte")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"is not valid unicode text: {value!r}") from None
    return value


def scalar(value):
    """A string, number or boolean, as the string a container sees (booleans: true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return text(value)
    raise Invalid("expected a string, number or boolean")


def image(value):
    if not isinstance(value, str) or not IMAGE.fullmatch(value):
        raise Invalid(f"expected an image reference such as 'redis:7' or 'team/app', got {value!r}")
    return value


def name(value):
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise Invalid(
            f"{value!r} is not a valid name: use letters, digits, '_', '.', '-' "
            "(at most 63, starting with a letter or digit)"
        )
    return value


SPARE_SUFFIX = re.compile(r".*\.(next|r?[0-9]+)")


def unit(service, replica):
    """What a plan replaces in one step, and a state records: ``web`` (the service's one
    container: no replica) or ``web.2`` (its replica 2)."""
    return f"{service}.{replica}" if replica else service


def service_name(value):
    """A name, but not one that looks like another service's spare container
    (``web.next`` while ``web`` starts first, ``web.r3`` kept for rollback) or replica
    (``web.2``)."""
    name(value)
    if SPARE_SUFFIX.fullmatch(value):
        raise Invalid(f"{value!r} ends like deployer's spare containers or replicas (.next, .rN, .N): choose another name")
    return value


def command(value):
    """A string is split like a shell would (no shell runs it); a list is the argv as is."""
    if isinstance(value, str):
        text(value)
        try:
            argv = shlex.split(value)
        except ValueError as e:
            raise Invalid(f"cannot split {value!r} into words: {e}") from None
    elif isinstance(value, list):
        argv = [scalar(item) for item in value]
    else:
        raise Invalid("expected a string or a list of strings")
    if not argv:
        raise Invalid("is empty")
    return argv


def absolute_path(value):
    text(value)
    if not value.startswith("/"):
        raise Invalid(f"expected an absolute path, got {value!r}")
    return "/" + posixpath.normpath(value).lstrip("/")  # normpath keeps a leading "//"


def volume(value):
    """``/path``, ``/path:ro`` or ``/path:rw`` inside the container, and ``shared``
    (``/path:shared``, ``/path:ro,shared``): one directory for every replica of the service
    (else each replica has its own); the host side is always deployer's."""
    text(value)
    path, _, mode = value.partition(":")
    modes = mode.split(",") if mode else []
    if len(set(modes)) != len(modes) or not set(modes) <= {"ro", "rw", "shared"} or {"ro", "rw"} <= set(modes):
        raise Invalid(f"expected '/path', '/path:ro' or '/path:rw' (or ':shared', ':ro,shared' for all replicas), got {value!r}")
    path = absolute_path(path)
    if path == "/":
        raise Invalid("cannot mount a volume over the container's root '/'")
    return {"path": path, "read_only": "ro" in modes, "shared": "shared" in modes}


def port(value):
    """The ``-p`` forms of docker run: ``8080``, ``80:8080``, ``127.0.0.1:80:8080``, ``/udp``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    match = PORT.fullmatch(value) if isinstance(value, str) else None
    if not match or not all(
        0 < int(p) < 65536 for p in (match["host"], match["container"]) if p
    ):
        raise Invalid(f"expected a port such as 8080, '80:8080' or '127.0.0.1:80:8080/udp', got {value!r}")
    return value


def env_name(value):
    if not isinstance(value, str) or not ENV_NAME.fullmatch(value):
        raise Invalid(f"{value!r} is not a valid environment variable name")
    return value


def memory(value):
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and MEMORY.fullmatch(value):
        return value
    raise Invalid(f"expected a size such as 512m or 2g, got {value!r}")


def cpus(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return str(value)
    raise Invalid(f"expected a positive number of CPUs, got {value!r}")


def duration(value):
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"{value}s"
    if isinstance(value, str) and DURATION.fullmatch(value):
        return value
    raise Invalid(f"expected a duration such as 30s or 1m30s, got {value!r}")


def restart(value):
    if not isinstance(value, str) or not RESTART.fullmatch(value):
        raise Invalid(f"expected no, always, unless-stopped or on-failure[:N], got {value!r}")
    return value


def label_key(value):
    """What docker run --label can carry as a name: no '=', no space or tab, not blank."""
    text(value)
    if value.startswith(RESERVED_LABEL_PREFIX):
        raise Invalid(f"labels starting with {RESERVED_LABEL_PREFIX!r} are deployer's own")
    if not value.strip() or any(ch in value for ch in "= \t"):
        raise Invalid(f"{value!r} is not a label name: no '=', no spaces, not empty")
    return value


def boolean(value):
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {value!r}")
    return value


def seconds(value):
    """Whole seconds, 0 included (docker's --stop-timeout)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    raise Invalid(f"expected a whole number of seconds, got {value!r}")


def positive_int(value):
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise Invalid(f"expected a positive whole number, got {value!r}")


def mapping(key, value):
    """A mapping validator whose messages say 'mapping' (voluptuous says 'dictionary')."""
    inner = Schema({key: value})

    def validate(data):
        if not isinstance(data, dict):
            raise Invalid("expected a mapping of name: value")
        return inner(data)

    return validate


def sequence(item):
    inner = Schema([item])

    def validate(data):
        if not isinstance(data, list):
            raise Invalid("expected a list")
        return inner(data)

    return validate


def healthcheck(value):
    """``false`` turns off the image's healthcheck; otherwise docker run's --health-* flags."""
    if value is False:
        return False
    if not isinstance(value, dict):
        raise Invalid("expected a mapping with 'cmd' (and interval, timeout, retries, start_period), or false")
    return HEALTHCHECK(value)


def health_command(value):
    """docker runs a healthcheck with the container's shell, so a string stays as written."""
    argv = command(value)
    return value if isinstance(value, str) else shlex.join(argv)


HEALTHCHECK = Schema(
    {
        Required("cmd"): health_command,
        Optional("interval"): duration,
        Optional("timeout"): duration,
        Optional("retries"): positive_int,
        Optional("start_period"): duration,
    }
)

def env_value(value):
    """A scalar, or ``{secret: NAME}``: a value the deploying side supplies."""
    if isinstance(value, dict):
        if set(value) != {"secret"} or not isinstance(value["secret"], str) or not value["secret"]:
            raise Invalid("expected a string, number, boolean or {secret: NAME}")
        return SecretRef(value["secret"])
    return scalar(value)


ENV = mapping(env_name, env_value)

# Service discovery: ``register`` names container ports, ``expose`` turns a registered
# endpoint into an env var (plugins/register.py and expose.py).
ENDPOINT_REF = re.compile(r"(?:(?P<instance>[A-Za-z0-9][A-Za-z0-9_-]*)/)?(?P<service>[^/:\s]+):(?P<endpoint>[^/:\s]+)")


def endpoint_ref(value):
    if not isinstance(value, str) or not ENDPOINT_REF.fullmatch(value):
        raise Invalid(f"expected 'service:endpoint' (or 'instance/service:endpoint'), got {value!r}")
    return value


def registered_port(value):
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isdigit() or not 0 < int(value) < 65536:
        raise Invalid(f"expected a container port number, got {value!r}")
    return value


def git_source(value):
    if isinstance(value, str):
        return {"path": text(value)}
    return GIT(value)


GIT = Schema(
    {
        Required("path"): text,
        Optional("ref"): text,
        Optional("dockerfile"): text,
        Optional("build_args"): mapping(text, scalar),
    }
)

# Where a swarm may run a service's tasks (``placement``): Swarm's own constraint syntax, a
# node attribute compared with == or != (``node.labels.tier == web``), and a label to spread
# tasks evenly over (``node.labels.zone``). One Docker engine has no say in it.
CONSTRAINT = re.compile(r"(?P<attr>node\.(?:id|hostname|role|platform\.os|platform\.arch|labels\.[^\s=!]+)"
                        r"|engine\.labels\.[^\s=!]+)\s*(?P<op>==|!=)\s*(?P<value>\S(?:.*\S)?)")
SPREAD = re.compile(r"(?:node|engine)\.labels\.[^\s=!]+")


def constraint(value):
    text(value)
    if not CONSTRAINT.fullmatch(value.strip()):
        raise Invalid(f"expected a node attribute, == or != and a value, such as 'node.labels.tier == web' or "
                      f"'node.hostname == db1', got {value!r}")
    return value.strip()


def spread(value):
    """A label to spread tasks over, or a list of them (each within the one before)."""
    labels = [value] if isinstance(value, str) else sequence(text)(value)
    for label in labels:
        if not SPREAD.fullmatch(text(label)):
            raise Invalid(f"expected a node label such as 'node.labels.zone', got {label!r}")
    return labels


PLACEMENT = Schema({Optional("constraints"): sequence(constraint), Optional("spread"): spread})


def placement(value):
    if not isinstance(value, dict):
        raise Invalid("expected a mapping with constraints (a list) and spread (a node label)")
    return PLACEMENT(value)


def pinned(constraints):
    """Whether constraints hold a service to the nodes an ``==`` names by hostname, id or
    label: where its volumes are (volumes need the same directory wherever it runs)."""
    matches = [CONSTRAINT.fullmatch(c) for c in constraints]
    return any(m and m["op"] == "==" and not m["attr"].startswith(("node.role", "node.platform")) for m in matches)


# Keys the spec builder handles itself (everything docker run has a flag for).
CORE_KEYS = {
    "image": image,
    "cmd": command,
    "entrypoint": command,
    "privileged": boolean,
    "init": boolean,
    "stop_timeout": seconds,
    "restart": restart,
    "user": text,
    "workdir": absolute_path,
    "labels": mapping(label_key, scalar),
    "memory": memory,
    "cpus": cpus,
    "healthcheck": healthcheck,
    "placement": placement,  # a swarm's: said and ignored on one Docker engine
    "release": command,  # run once before the service's containers are replaced: not part of the spec
    "replicas": positive_int,  # how many containers run the spec (spec.replicas): not part of the spec
}

def registration(value):
    """An endpoint's name, or ``{name: NAME, wan: true}`` to publish it on all interfaces."""
    if isinstance(value, dict):
        return REGISTRATION(value)
    return {"name": name(value), "wan": False}


REGISTRATION = Schema({Required("name"): name, Optional("wan", default=False): boolean})


def exposure(value):
    """An env var's name, or ``{env: NAME, format: "redis://{host}:{port}/{instance}"}``."""
    if isinstance(value, dict):
        data = EXPOSURE(value)
        try:
            data["format"].format_map(_FormatFields(host="h", port=1))
        except (KeyError, IndexError, ValueError, AttributeError) as e:
            raise Invalid(f"format may use {{host}}, {{port}} and variables only: {e}") from None
        return data
    return {"env": env_name(value), "format": "{host}:{port}"}


class _FormatFields(dict):
    """An expose format's fields: the endpoint's, and variables not filled yet (a template
    read without variables keeps its placeholders)."""

    def __missing__(self, key):
        if PLACEHOLDER.fullmatch(f"{{{key}}}"):
            return "x"
        raise KeyError(key)


EXPOSURE = Schema({Required("env"): env_name, Optional("format", default="{host}:{port}"): text})

REGISTER = mapping(registered_port, registration)
EXPOSE = mapping(endpoint_ref, exposure)

# Routes: a service served by the host's router at its domains (model/route.py).
DOMAIN = re.compile(r"(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def domain(value):
    """A host name the router serves, lower-cased; ``*.x`` serves every name one label
    under x. No scheme, path or port: the router's settings say how it is reached.
    (``{instance}`` and other placeholders count as one label: a template read without
    variables keeps them.)"""
    text(value)
    checked = PLACEHOLDER.sub("x", value.lower())
    if len(checked) > 253 or not DOMAIN.fullmatch(checked):
        raise Invalid(f"expected a domain such as 'shop.example' or '*.shop.example' (no scheme, path or port), "
                      f"got {value!r}")
    return value.lower()


def domains(value):
    names = sequence(domain)(value)
    if not names:
        raise Invalid("expected at least one domain")
    return list(dict.fromkeys(names))


def health_path(value):
    """The path deployer GETs before a new container takes a route's requests."""
    text(value)
    if not value.startswith("/") or any(not 32 < ord(ch) < 127 for ch in value):
        raise Invalid(f"expected a path starting with '/' (no spaces), got {value!r}")
    return value


ROUTE = Schema({Required("domains"): domains, Required("port"): registered_port, Optional("health"): health_path})


def route(value):
    if not isinstance(value, dict):
        raise Invalid("expected a mapping with domains, port (and health)")
    return ROUTE(value)


def variable(value):
    """A variable's name, as ``{name}`` writes it."""
    if not isinstance(value, str) or not PLACEHOLDER.fullmatch(f"{{{value}}}"):
        raise Invalid(f"expected a variable name (a letter or _, then letters, digits, _ . -), got {value!r}")
    return value


# The hooks: commands on the deploying machine around a deploy or a rollback (ops/hooks.py),
# and when each runs. A template sets the deploy's; a rollback reads no template, so its
# hooks come from fabric.yaml alone (deployer.hooks.*).
HOOKS = {
    "pre-deploy": "before a deploy contacts the host",
    "post-deploy": "after a deploy, the host's lock still held",
    "pre-rollback": "before a rollback contacts the host",
    "post-rollback": "after a rollback, the host's lock still held",
}
TEMPLATE_HOOKS = ("pre-deploy", "post-deploy")


def hook_command(value):
    """A hook: one shell command line (``sh -c`` runs it), not empty."""
    if not text(value).strip():
        raise Invalid("expected a shell command")
    return value


def hooks(value):
    if not isinstance(value, dict):
        raise Invalid(f"expected a mapping of hook: command ({', '.join(TEMPLATE_HOOKS)})")
    for key in value:
        if key not in TEMPLATE_HOOKS:
            why = (" (a rollback reads no template: set deployer.hooks."
                   f"{str(key).replace('-', '_')} in fabric.yaml)" if key in HOOKS else "")
            raise Invalid(f"unknown hook; a template's hooks: {', '.join(TEMPLATE_HOOKS)}{why}", path=[key])
    return Schema({Optional(key): hook_command for key in TEMPLATE_HOOKS})(value)


# Capitalised top-level keys: settings for the whole template (Vars: variables' defaults).
SETTINGS = Schema({Optional("Env"): ENV, Optional("Vars"): mapping(variable, scalar), Optional("Hooks"): hooks})


def service_schema(plugin_keys):
    """The schema of one service: core keys, and the keys plugins add."""
    keys = {**CORE_KEYS, **plugin_keys}
    return Schema({Optional(key): validator for key, validator in keys.items()})


def image_service_name(ref):
    """The service name an image gives: its last path part without tag or digest."""
    return IMAGE.fullmatch(ref)["path"].rsplit("/", 1)[-1]
