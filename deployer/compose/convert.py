"""Compose service keys -> template keys: the mapping of each key, one function per key.

Keys are read after interpolation and ``extends``. Each converter validates what it
writes with deployer's own schema validators, so the output validates; a value the
template language cannot hold is dropped with why, never written wrong. Choices where
compose and deployer differ, made for what a compose user expects:

- ``command``/``entrypoint`` keep their form (a string stays a string; deployer splits
  it into words as compose does, and runs no shell either).
- ``environment`` entries without a value (``- AWS_KEY``) take the deploying side's
  value in compose; in the template they are ``{secret: AWS_KEY}``, which deployer reads
  from its own environment (or ``--secrets FILE``) at deploy time, and never shows.
- ``env_file`` files are read and their values written into ``env`` (compose's
  ``environment`` wins over them, as in compose); a note says so, since the template
  then holds those values.
- ``restart``: compose's default is ``no``, deployer's ``unless-stopped``; only a
  restart compose states is written, so an imported service comes back after a reboot.
- ``init`` is written only where compose states it (deployer's default is ``true``).
- ``stop_grace_period`` is deployer's ``stop_timeout`` in whole seconds, rounded up.
- ``mem_limit``/``cpus`` and ``deploy.resources.limits`` are ``memory``/``cpus``; the
  ``deploy`` section's limits win when both are given (a note says so).
- ``deploy.replicas`` above 1 is dropped: deployer runs one container per service for now.
"""

import math
import re

from voluptuous import Invalid

from ..model import schema
from ..errors import TemplateError
from . import build, storage, unsupported
from .interpolate import has_variables
from .service import Target, assignments, checked, scalar_text, why_invalid

DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
HANDLED_ELSEWHERE = {"links", "depends_on", "expose", "ports", "networks"}  # network.py, once all are known


def services(ctx, compose_services):
    """A Target per compose service, in the file's order."""
    names = template_names(list(compose_services), ctx)
    for compose_name, data in compose_services.items():
        target = Target(compose=compose_name, name=names[compose_name])
        ctx.targets[compose_name] = target
        convert_service(ctx, target, data)
    return ctx.targets


def template_names(compose_names, ctx):
    """Each compose service's name in the template: the same, unless deployer would read
    it otherwise (a capitalised key is a setting, ``.next``/``.rN`` are spare containers)."""
    out, taken = {}, set()
    for name in compose_names:
        wanted = name
        try:
            schema.service_name(name)
            if name[:1].isupper():
                raise Invalid("a capitalised key is a template setting")
        except Invalid as e:
            wanted = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_") or "service"
            ctx.report.note(name, "", f"the service is named {wanted!r} in the template: {e.msg}")
        while wanted in taken:
            wanted += "-2"
        out[name] = wanted
        taken.add(wanted)
    return out


def convert_service(ctx, target, data):
    """Every key of one service: converted in ORDER (env before the secrets that rewrite
    it), the rest reported; network.py does the keys that need every service."""
    if data.get("image") is None and data.get("build") is None:
        raise TemplateError("no image and no build: nothing to run", file=ctx.project.file, key=target.compose)
    for key in ORDER:
        if data.get(key) is not None:  # null: as if not given, as compose reads it
            HANDLERS[key](ctx, target, data[key], data, key)
    for key, value in data.items():
        if key in HANDLERS or key in HANDLED_ELSEWHERE or key.startswith("x-"):
            continue
        why = unsupported.SERVICE.get(key, "not a service key this import knows (is it in the Compose Specification?)")
        ctx.drop(target, key, why)


# --- what runs ---------------------------------------------------------------------


def image(ctx, target, value, data, key):
    """An image deployer cannot read is bad input, not a drop: without it, nothing runs."""
    if not isinstance(value, str):
        raise TemplateError(f"expected an image reference, got {value!r}", file=ctx.project.file,
                            key=f"{target.compose}.image")
    try:
        target.image = checked(schema.image, value)
    except Invalid as e:
        raise TemplateError(why_invalid(value, e), file=ctx.project.file, key=f"{target.compose}.image") from None


def command(ctx, target, value, data, key, template_key="cmd"):
    """``command``/``entrypoint`` in the form compose gave; an empty one (compose's way
    to clear the image's) cannot be written, since a template's has a word at least."""
    if value is None:
        return
    try:
        checked(schema.command, value)
    except Invalid as e:
        ctx.drop(target, key, why_invalid(value, e) + (": compose clears the image's own here, a template "
                                                      "cannot" if value in ("", []) else ""))
        return
    value = value if isinstance(value, str) else [scalar_text(v) for v in value]
    if ctx.writable(target, key, value):
        target.keys[template_key] = value


def entrypoint(ctx, target, value, data, key):
    command(ctx, target, value, data, key, "entrypoint")


# --- env -----------------------------------------------------------------------------


def env_file(ctx, target, value, data, key):
    """Each file read (relative to the compose file) and written into env, in order."""
    files = value if isinstance(value, list) else [value]
    for at, item in enumerate(files):
        item = item if isinstance(item, dict) else {"path": item}
        where = f"{key}[{at}]" if isinstance(value, list) else key
        path = item.get("path")
        if not isinstance(path, str):
            raise TemplateError("expected a file's path", file=ctx.project.file, key=f"{target.compose}.{where}")
        if has_variables(path):
            ctx.drop(target, where, "its path holds a compose variable: an import reads the files it can name")
        elif ctx.project.kind(path) == "missing" and item.get("required") is False:
            ctx.note(target, where, f"{path} does not exist (required: false): nothing read")
        else:
            _env_entries(ctx, target, where, path, raw=item.get("format") == "raw")


def _env_entries(ctx, target, where, path, raw):
    entries = ctx.project.env_file(path)
    for entry in entries:
        text = entry.value
        if entry.interpolated and not raw:
            text = ctx.interpolation.text(text, f"{target.compose}.{where}.{entry.name}")
        _set_env(ctx, target, f"{where}.{entry.name}", entry.name, text)
    ctx.note(target, where, f"{path} was read: its {len(entries)} variables are written into env, values and "
                            "all (move secrets to {secret: NAME})")


def environment(ctx, target, value, data, key):
    """env, over what env files gave; an entry without a value is a secret (module doc)."""
    entries = assignments(value)
    for name, text in entries.items():
        where = f"{key}.{name}"
        if text is None:
            if _env_name(ctx, target, where, name):
                target.env[name] = {"secret": name}
                ctx.secrets_used.setdefault(name, "compose: an environment entry without a value")
                ctx.note(target, where, f"no value in compose (it came from the shell): {{secret: {name}}}, read "
                                      "from the deploying side's environment or --secrets FILE")
            continue
        _set_env(ctx, target, where, name, scalar_text(text))


def _set_env(ctx, target, key, name, text):
    if _env_name(ctx, target, key, name) and ctx.writable(target, key, text):
        target.env[name] = text


def _env_name(ctx, target, key, name):
    try:
        schema.env_name(name)
        return True
    except Invalid as e:
        ctx.drop(target, key, f"{e.msg}: deployer's env takes letters, digits and '_' (not starting with a digit)")
        return False


# --- how it runs -----------------------------------------------------------------------


def simple(template_key, validator, convert=lambda v: v, typed=False):
    """A converter writing one compose key as one template key, validated. ``typed``: the
    template key wants a number or boolean, which a variable (a string) cannot give."""

    def handler(ctx, target, value, data, key):
        if typed and has_variables(value):
            ctx.drop(target, key, f"holds a compose variable, but {template_key} needs a value now: "
                                  "deployer's variables are strings")
            return
        try:
            value = convert(value)
            checked(validator, value)  # written as compose gave it: the template validates it again
        except (Invalid, ValueError) as e:
            ctx.drop(target, key, why_invalid(value, e))
            return
        if ctx.writable(target, key, value):
            target.keys[template_key] = value

    return handler


def restart(ctx, target, value, data, key):
    if _deploy(data, "restart_policy") is not None:
        ctx.note(target, "deploy.restart_policy", "left out: the service's restart is written")
    simple("restart", schema.restart)(ctx, target, value, data, key)


def _deploy(data, *keys):
    """A value under the service's ``deploy`` section, or None."""
    value = data.get("deploy")
    for key in keys:
        value = (value or {}).get(key)
    return value


def _restart_policy(ctx, target, policy):
    """deploy.restart_policy -> restart (when compose's own restart: is not given)."""
    condition = policy.get("condition", "any")
    attempts = policy.get("max_attempts")
    value = {"none": "no", "any": "always", "on-failure": "on-failure"}.get(str(condition))
    if value is None:
        ctx.drop(target, "deploy.restart_policy.condition", f"{condition!r}: expected none, on-failure or any")
        return
    if value == "on-failure" and isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 0:
        value += f":{attempts}"
    elif attempts is not None:
        ctx.drop(target, "deploy.restart_policy.max_attempts", "docker counts restarts for on-failure only")
    for key in policy.keys() - {"condition", "max_attempts"}:
        ctx.drop(target, f"deploy.restart_policy.{key}", "docker restarts at once, with its own back-off")
    target.keys["restart"] = value
    target.comment("restart", f"compose: deploy.restart_policy {condition}")


def stop_grace_period(ctx, target, value, data, key):
    """stop_timeout takes whole seconds: a fraction is rounded up, never cut short."""
    seconds = _seconds(value)
    if seconds is None:
        ctx.drop(target, key, f"{value!r}: expected a duration such as 10s or 1m30s")
        return
    target.keys["stop_timeout"] = math.ceil(seconds)
    if seconds != math.ceil(seconds):
        target.comment("stop_timeout", f"compose: stop_grace_period {value} (rounded up to whole seconds)")


def _seconds(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or not value or has_variables(value):
        return None
    parts = DURATION.findall(value)
    if "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * SECONDS[u] for n, u in parts)


def memory_value(value):
    """Compose's byte values (``2b``, ``1024kb``, ``300m``, ``1gb``, a number of bytes) as
    docker run's ``--memory`` takes them."""
    if isinstance(value, str) and re.fullmatch(r"[0-9.]+[kKmMgG][bB]", value):
        return value[:-1]
    return value


def cpus_value(value):
    if isinstance(value, str) and not has_variables(value):
        return float(value)
    return value


def mem_limit(ctx, target, value, data, key):
    if _deploy(data, "resources", "limits", "memory") is None:
        simple("memory", schema.memory, memory_value)(ctx, target, value, data, key)
    else:
        ctx.note(target, key, "left out: deploy.resources.limits.memory is written")


def cpus(ctx, target, value, data, key):
    if _deploy(data, "resources", "limits", "cpus") is None:
        simple("cpus", schema.cpus, cpus_value, typed=True)(ctx, target, value, data, key)
    else:
        ctx.note(target, key, "left out: deploy.resources.limits.cpus is written")


def deploy(ctx, target, value, data, key):
    """The parts of a swarm deploy section one container has: limits and restart."""
    for name, item in value.items():
        if name == "replicas":
            _replicas(ctx, target, item)
        elif name == "resources":
            _resources(ctx, target, item or {}, data)
        elif name == "restart_policy":
            if data.get("restart") is None:
                _restart_policy(ctx, target, item or {})
        elif not str(name).startswith("x-"):
            ctx.drop(target, f"{key}.{name}", unsupported.DEPLOY.get(name, "not a deploy key this import knows"))


def _replicas(ctx, target, value):
    if value != 1:
        ctx.drop(target, "deploy.replicas", f"{value!r}: deployer runs one container per service for now "
                                            "(replicas: N is a later issue, see DESIGN.md)")


def _resources(ctx, target, value, data):
    for key, item in value.items():
        if key != "limits":
            ctx.drop(target, f"deploy.resources.{key}",
                     unsupported.RESOURCES.get(key, "not a resources key this import knows"))
            continue
        for limit, amount in (item or {}).items():
            where = f"deploy.resources.limits.{limit}"
            if limit == "memory":
                simple("memory", schema.memory, memory_value)(ctx, target, amount, data, where)
            elif limit == "cpus":
                simple("cpus", schema.cpus, cpus_value, typed=True)(ctx, target, amount, data, where)
            else:
                ctx.drop(target, where, "deployer limits memory and cpus only")


def healthcheck(ctx, target, value, data, key):
    """A healthcheck with its test, or false; timings deployer has not are dropped."""
    test = value.get("test")
    if value.get("disable") is True or test in (["NONE"], "NONE"):
        target.keys["healthcheck"] = False
        return
    if test is None:
        ctx.drop(target, "healthcheck", "no test: a template's healthcheck needs its cmd, it cannot tune "
                                        "the image's own")
        return
    health = {"cmd": _health_command(test), **_health_timing(ctx, target, value, key)}
    if health["cmd"] is None:
        ctx.drop(target, "healthcheck.test", f"{test!r}: expected CMD, CMD-SHELL, NONE or a command")
    elif ctx.writable(target, "healthcheck", health):
        target.keys["healthcheck"] = health


def _health_timing(ctx, target, value, key):
    health = {}
    for name in ("interval", "timeout", "start_period", "retries"):
        if name in value:
            validator = schema.positive_int if name == "retries" else schema.duration
            if name == "retries" and has_variables(value[name]):
                ctx.drop(target, f"{key}.retries", "holds a compose variable, but retries needs a number now")
                continue
            try:
                checked(validator, value[name])
                health[name] = value[name]
            except Invalid as e:
                ctx.drop(target, f"{key}.{name}", why_invalid(value[name], e))
    for name in sorted(map(str, value.keys() - {"test", "disable", "interval", "timeout", "start_period", "retries"})):
        ctx.drop(target, f"{key}.{name}", "deployer's healthcheck has cmd, interval, timeout, retries and start_period")
    return health


def _health_command(test):
    """``[CMD, argv...]`` -> a list (deployer joins it for the container's shell);
    ``[CMD-SHELL, line]`` or a string -> the line."""
    if isinstance(test, str):
        return test or None
    if not isinstance(test, list) or len(test) < 2:
        return None
    words = [scalar_text(w) for w in test]
    if words[0] == "CMD":
        return words[1:]
    if words[0] == "CMD-SHELL":
        return " ".join(words[1:])
    return None


def labels(ctx, target, value, data, key):
    """labels, but none of deployer's own (``deployer.*``) nor names docker cannot take."""
    entries = assignments(value)
    out = {}
    for name, text in entries.items():
        try:
            schema.label_key(name)
        except Invalid as e:
            ctx.drop(target, f"labels.{name}", e.msg)
            continue
        if ctx.writable(target, f"labels.{name}", scalar_text(text)):
            out[name] = scalar_text(text)
    if out:
        target.keys["labels"] = out


HANDLERS = {
    "image": image,
    "build": build.build,
    "command": command,
    "entrypoint": entrypoint,
    "env_file": env_file,
    "environment": environment,
    "secrets": storage.secrets,
    "volumes": storage.volumes,
    "restart": restart,
    "init": simple("init", schema.boolean, typed=True),
    "stop_grace_period": stop_grace_period,
    "user": simple("user", schema.text, scalar_text),
    "working_dir": simple("workdir", schema.absolute_path),
    "labels": labels,
    "privileged": simple("privileged", schema.boolean, typed=True),
    "mem_limit": mem_limit,
    "cpus": cpus,
    "deploy": deploy,
    "healthcheck": healthcheck,
}
ORDER = list(HANDLERS)
