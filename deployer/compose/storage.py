"""Volumes and secrets: what compose puts on a container's filesystem.

A deployer volume is a container path bind-mounted from the instance's own host
directory, ``<volume_dir>/<instance>/<service>/<path-id>``, created empty. So:

- a named volume (``db_data:/var/lib/mysql``) or an anonymous one (``/data``) is a
  deployer volume at the same path, with a note saying where its data now lives (and
  that, unlike Docker's new named volumes, it does not start with the image's files);
- a bind mount of a directory beside the compose file (``./data:/data``) is a deployer
  volume too; if that directory holds files, they are not copied: dropped, with why;
- a bind mount of a file (``./nginx.conf:/etc/nginx/nginx.conf``), or of a host path
  (``/var/run/docker.sock``, ``~/media``, ``${MEDIA}``), cannot be one: dropped, with why;
- tmpfs, and options deployer has no word for (``:z``, ``nocopy``...), are dropped;
- a named volume of a ``driver`` (other than plain ``local``) or with ``driver_opts`` keeps
  them, as the service's ``volume_driver`` and ``volume_opts`` (a named volume of that
  driver wherever the container runs: an NFS share stays one), when every volume of the
  service is a named volume of that same driver; a template gives a service's volumes one
  driver, so otherwise the driver is dropped, with why, and the volume is a directory.

A compose secret is a file in ``/run/secrets``. deployer hands secrets over as env
vars (``{secret: NAME}``, read on the deploying side at deploy time, never written in
the template), so a secret becomes one: when the service's env has ``X_FILE=/run/secrets/
NAME`` (the convention of the official database images), that entry becomes
``X: {secret: NAME}`` and the app is none the wiser; otherwise the env var is the
secret's name in capitals, and the file the app read is dropped, with why.
"""

import re

from voluptuous import Invalid

from ..errors import TemplateError
from ..plugins.volumes import volumes as volume_list
from .interpolate import has_variables
from .service import strings, why_invalid

def volumes(ctx, target, value, data, key):
    """Each compose volume as a deployer volume where it can be one (the module says which),
    of the driver of its named volumes where they all share one (``_driver``)."""
    paths, named = [], {}  # named: key -> the named volume a path is
    for at, item in enumerate(value):
        mount, source = _mount(ctx, target, f"{key}[{at}]", item)
        if mount and mount.split(":")[0] in [p.split(":")[0] for p in paths]:
            ctx.drop(target, f"{key}[{at}]", f"a second volume at {mount.split(':')[0]}")
        elif mount:
            paths.append(mount)
            named[f"{key}[{at}]"] = source
    driver = _driver(ctx, target, named)
    for at, path in zip(named, paths):
        if named[at]:
            _named_volume(ctx, target, at, named[at], path.split(":")[0], driver)
    if paths:
        target.keys["volumes"] = paths
    if driver:
        target.keys["volume_driver"] = driver[0]
        target.keys.update({"volume_opts": dict(driver[1])} if driver[1] else {})


def _driver(ctx, target, named):
    """The (driver, options) of the service's volumes when each is a named volume of that
    one driver (``_driver_of``), else None, dropping the drivers it cannot keep."""
    drivers = {key: _driver_of(ctx, source) for key, source in named.items()}
    if len(set(drivers.values())) == 1 and None not in drivers.values():
        ctx.drivers.update(named.values())
        return next(iter(drivers.values()))
    for key, driver in drivers.items():
        if driver:
            ctx.drop(target, key, f"the volume driver {driver[0]} of {named[key]}: a template gives all of a "
                                  "service's volumes one driver (volume_driver), and this service's other volumes "
                                  "have none or another, so it is a directory of the host")
    return None


def _driver_of(ctx, source):
    """(driver, options as sorted pairs) of a named volume the file defines with a driver
    other than plain ``local`` (Docker's own default, which a host directory stands for), or
    with driver_opts; None for any other."""
    definition = ((ctx.top.get("volumes") or {}).get(source) if source else None) or {}
    driver, options = definition.get("driver") or "local", definition.get("driver_opts") or {}
    if driver == "local" and not options:
        return None
    return str(driver), tuple(sorted((str(k), str(v)) for k, v in options.items()))


def _mount(ctx, target, key, item):
    """The deployer volume (``/path`` or ``/path:ro``) of one compose volume, or None; and
    the named volume it is ("" for any other)."""
    kind, source, path, options = _parse(ctx, target, key, item)
    for option in sorted(options - {"ro", "rw", "read_only"}):
        ctx.drop(target, key, f"the option {option!r}: deployer's volumes are plain bind mounts")
    read_only = ":ro" if options & {"ro", "read_only"} else ""
    if kind not in ("volume", "bind"):
        ctx.drop(target, key, f"a {kind} mount at {path}: deployer's volumes are directories of the host")
        return None, ""
    if has_variables(path) or has_variables(source):
        ctx.drop(target, key, "its paths hold a compose variable: a deployer volume's path is fixed in the template")
        return None, ""
    try:
        volume_list([path + read_only])
    except Invalid as e:
        ctx.drop(target, key, why_invalid(path, e))
        return None, ""
    if kind == "bind" and not _bind_carried(ctx, target, key, source, path):
        return None, ""
    if kind == "volume" and source:
        target.comment("volumes", f"{path}: compose's volume {source}")
        return path + read_only, source
    if kind == "bind":
        target.comment("volumes", f"{path}: compose mounted {source} there")
    else:
        ctx.note(target, key, f"an anonymous volume: its data lives in the host's <volume_dir>/<instance>/"
                              f"{target.name}/ directory for {path}, kept across deploys")
    return path + read_only, ""


def _parse(ctx, target, key, item):
    """(kind: volume|bind|tmpfs|other, source or '', container path, options) of either syntax."""
    if isinstance(item, dict):
        kind, source, path = item.get("type", "volume"), item.get("source") or "", item.get("target")
        options = {"read_only"} if item.get("read_only") else set()
        for extra in item.keys() - {"type", "source", "target", "read_only"}:
            options.add(f"{extra}: {item[extra]!r}")
        if not isinstance(path, str):
            raise TemplateError("a volume needs its target", file=ctx.project.file, key=f"{target.compose}.{key}")
        return kind, source, path, options
    parts = item.split(":")
    if len(parts) == 1:
        return "volume", "", parts[0], set()
    source, path, options = parts[0], parts[1], set(",".join(parts[2:]).split(",")) - {""}
    kind = "bind" if source.startswith((".", "/", "~")) or has_variables(source) else "volume"
    return kind, source, path, options


def _bind_carried(ctx, target, key, source, path):
    """Whether a bind mount can be a deployer volume: a directory beside the compose file
    (its files, if any, are left behind: dropped) or nothing there yet."""
    if not source.startswith(".") or has_variables(source):
        ctx.drop(target, key, f"mounts the host's {source}: deployer mounts its own per-instance directories, "
                              f"never a host path (volumes: [{path}] would keep {path} across deploys, starting empty)")
        return False
    kind = ctx.project.kind(source)
    if kind == "file":
        ctx.drop(target, key, f"mounts the file {source}: a deployer volume is an empty directory; bake the "
                              "file into the image (or build it from git)")
        return False
    where = f"<volume_dir>/<instance>/{target.name}/ on the host"
    if kind == "dir":
        ctx.drop(target, key, f"the files in {source}: {path} is a deployer volume in {where}, which starts "
                              "empty (copy them there, or bake them into the image)")
    else:
        ctx.note(target, key, f"{source} is the deployer volume {path}, in {where}")
    return True


def _named_volume(ctx, target, key, name, path, driver):
    """Where a named volume's data lives now: a host directory, or a volume of ``driver``."""
    if name not in (ctx.top.get("volumes") or {}):
        ctx.note(target, key, f"{name} is not among the file's volumes: taken as a named volume")
    if driver:
        ctx.note(target, key, f"the named volume {name}: a volume <instance>_{target.name}_<path id> of the driver "
                              f"{driver[0]} (volume_driver), made by Docker where the container runs")
        return
    ctx.note(target, key, f"the named volume {name}: its data lives in the host's <volume_dir>/<instance>/"
                          f"{target.name}/ directory for {path} (it starts empty: Docker would have copied the image's "
                          "files into a new named volume)")


def top_level_volumes(ctx, definitions):
    """Options of the file's named volumes: a deployer volume has none of them, but the
    driver and its options of a volume every service using it kept (``_driver``), or of
    Docker's default (plain ``local``, which a directory stands for)."""
    for name, definition in (definitions or {}).items():
        kept = {"name", "driver", "driver_opts"} if name in ctx.drivers or not _driver_of(ctx, name) else {"name"}
        for option in definition or {}:
            if option not in kept and not str(option).startswith("x-"):
                ctx.drop(None, f"volumes.{name}.{option}", "a deployer volume is a directory on the host: "
                                                           "no driver, options, labels or external volume")


# --- secrets ---------------------------------------------------------------------------


def secrets(ctx, target, value, data, key):
    """Each compose secret as an env var holding ``{secret: NAME}`` (the module says how)."""
    for at, item in enumerate(value):
        item = item if isinstance(item, dict) else {"source": item}
        source = item.get("source")
        if not isinstance(source, str):
            raise TemplateError("a secret needs its source", file=ctx.project.file,
                                key=f"{target.compose}.{key}[{at}]")
        file = item.get("target") or source
        file = file if file.startswith("/") else f"/run/secrets/{file}"
        name = _secret_name(ctx, target, f"{key}[{at}]", source)
        if name is not None:
            _secret_env(ctx, target, f"{key}[{at}]", name, file)
        for extra in item.keys() - {"source", "target"}:
            ctx.drop(target, f"{key}[{at}].{extra}", "an env var has no owner or mode")


def _secret_name(ctx, target, key, source):
    """The deployer secret holding a compose secret: the env var compose read it from,
    else the secret's own name (from the deploying side's environment or --secrets)."""
    definitions = ctx.top.get("secrets") or {}
    if source not in definitions:
        raise TemplateError(f"names no secret of the file: {source!r}", file=ctx.project.file,
                            key=f"{target.compose}.{key}")
    definition = definitions[source] or {}
    if "environment" in definition:
        name = str(definition["environment"])
        ctx.secrets_used.setdefault(name, f"compose: the secret {source}, from ${name}")
    elif "file" in definition:
        name = source
        ctx.secrets_used.setdefault(name, f"compose: the secret {source}, from the file {definition['file']}")
    else:
        name = source
        ctx.secrets_used.setdefault(name, f"compose: the secret {source}")
    return name


def _secret_env(ctx, target, key, name, file):
    """The secret as an env var: the one its ``X_FILE`` entry names, else its own name."""
    env = target.env
    pointer = next((k for k, v in env.items() if v == file and k.endswith("_FILE") and len(k) > 5), None)
    if pointer is not None and pointer[:-5] not in env:
        env_name = target.secret_files[file] = pointer[:-5]
        env[env_name] = {"secret": name}
        del env[pointer]
        target.comment("env", f"{env_name}: compose gave the secret's file, {pointer}={file}")
        return
    env_name = target.secret_files[file] = re.sub(r"^(?=[0-9])", "_", re.sub(r"[^A-Za-z0-9_]", "_", name).upper())
    if env_name not in env:
        env[env_name] = {"secret": name}
        target.comment("env", f"{env_name}: the compose secret {name}, a file in compose")
    ctx.drop(target, key, f"the file {file}: deployer hands secrets over as env vars, here {env_name}; "
                          "an app that reads the file needs to read the env var")


COMPOSE_KEYS = {"cmd": "command", "workdir": "working_dir", "env": "environment"}


def secret_file_uses(ctx):
    """Other values that read a secret's file (a healthcheck's ``cat /run/secrets/x``, an
    env var pointing at it): the file is not there any more, so they are listed."""
    for target in ctx.targets.values():
        for file, env_name in target.secret_files.items():
            why = f"reads the secret's file {file}, which deployer does not write: the secret is the env var {env_name}"
            for key, value in target.keys.items():
                items = value.items() if key == "env" else [("", value)]
                for name, text in items:
                    if any(file in s for s in strings(text)):
                        ctx.drop(target, ".".join(filter(None, (COMPOSE_KEYS.get(key, key), name))), why)
