"""Output: every line a task prints goes through here, for people or (``--json``) scripts.

Lines go to the current thread's stream: stdout, or a buffer while the parallel executor
keeps one host's output together. The JSON documents are documented in README.rst; their
keys are stable, and no env value (so no secret) is ever part of them.

Colour only where a person reads: the stream is a terminal and ``NO_COLOR`` is unset.
What a host reports while a script runs (progress, waits, ``-v``'s commands) is shown by
``live.Live``, as it arrives; anything else (a pipe, a file, ``--json``) gets the same lines as
ever, once the task is done.
"""

import contextlib
import io
import json
import os
import re
import shlex
import sys
import threading

from ..errors import plural, printable
from ..model import discovery, network
from ..model.variables import MASK

_local = threading.local()
STYLES = {"done": "32", "failed": "31", "kept": "2"}  # green, red, dim


def emit(line="", style=None):
    if not QUIET.is_set():
        out = stream()
        print(paint(masked(line), style, _coloured(out)), file=out, flush=True)


def stream():
    """The current thread's stream: stdout, or the buffer of one of several hosts."""
    return getattr(_local, "stream", None) or sys.stdout


def _coloured(stream):
    return stream.isatty() and not os.environ.get("NO_COLOR")


def paint(text, style, colour):
    """``text`` in a style's colour (STYLES), or as it is."""
    return f"\033[{STYLES[style]}m{text}\033[0m" if colour and style else text


_secrets = set()  # every secret value this process was told of (conceal)
_secrets_lock = threading.Lock()


def conceal(values):
    """Values no line this process prints may show: the instance's secrets, as a host
    learns them (masking another host's secrets too costs nothing)."""
    with _secrets_lock:
        _secrets.update(value for value in values if value)


def masked(text, secrets=None):
    """``text`` with each secret (default: those concealed), as it is or as a shell, an
    escaped line or a JSON string would show it, replaced by ``***`` (longest first, so no
    part of a longer one is left behind). A secret of one or two characters is masked only
    where it stands alone (between non-alphanumerics): anywhere else it would blank out
    half of every line, and say which characters the secret is."""
    if secrets is None:
        with _secrets_lock:
            secrets = set(_secrets)
    forms = {form for secret in secrets if secret
             for form in (secret, shlex.quote(secret), printable(secret), json.dumps(secret)[1:-1])}
    for form in sorted(forms, key=len, reverse=True):
        if len(form) > 2:
            text = text.replace(form, MASK)
        else:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", MASK, text)
    return text


def command_line(argv, secrets=None):
    """A command as one printable line a shell would read back, secrets masked: each word
    before it is quoted (the client knows the raw values), then the whole line again."""
    return masked(printable(" ".join(shlex.quote(masked(word, secrets)) for word in argv)), secrets)


def traced(kind, fields, secrets=None):
    """A ``-v`` line for what a script noted: a command, or a file written (never its content)."""
    if kind == "run":
        return f"$ {command_line(fields, secrets)}"
    if kind == "garbled":
        return "$ ... (not shown: other output cut into what the host sent)"
    path, size = fields
    return f"$ {kind} {masked(printable(path), secrets)} ({size} bytes)"


QUIET = threading.Event()  # -q: only errors (set once, for the whole run)


@contextlib.contextmanager
def captured(host=None):
    """Collect this thread's output in a buffer (one host of several, named ``host``)."""
    buffer = io.StringIO()
    _local.stream, _local.host = buffer, host
    try:
        yield buffer
    finally:
        _local.stream = _local.host = None


def document(data):
    emit(json.dumps(data, indent=2, sort_keys=True))


def table(header, rows, styles=()):
    """Columns as wide as their widest cell; ``styles``: one per row (None: plain)."""
    sizes = widths(header, rows)
    emit(row_line(header, sizes))
    for row, style in zip(rows, [*styles, *[None] * len(rows)]):
        emit(row_line(row, sizes), style)


def widths(header, rows):
    return [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]


def row_line(row, widths):
    return "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()


DEPLOY_COLUMNS = ("ACTION", "SERVICE", "WHY", "TIME")


def build_progress():
    """``progress(service, line)``: a build's output, each line on stderr as it comes
    (stdout stays the result's), prefixed with the service, and with the host while
    several hosts deploy at once (their lines interleave). Made in the task's thread:
    the lines arrive on another."""
    host = getattr(_local, "host", None)
    prefix = f"{host}: " if host else ""

    def progress(service, line):
        if not QUIET.is_set():
            print(masked(f"{prefix}{service} | {line}"), file=sys.stderr, flush=True)

    return progress


def step_row(action, seconds):
    return (action.kind, action.service, action.reason, "" if seconds is None else f"{seconds:.1f}s")


def deployed(result, dry_run=False, as_json=False, live=None):
    changed = sum(a.kind != "keep" for a in result.actions)
    for note in result.notes:
        print(masked(f"warning: {note}"), file=sys.stderr)
    if as_json:
        return document(
            {
                "host": result.host,
                "instance": result.instance,
                "release": result.release,
                "dry_run": dry_run,
                "applied": result.applied and not dry_run,
                "changed": changed,
                "seconds": round(result.seconds, 3),
                "actions": [
                    {"service": a.service, "action": a.kind, "reason": a.reason, "seconds": result.step_seconds.get(a.service)}
                    for a in result.actions
                ],
                "releases": [r.to_dict() for r in result.releases],
                "hooks": [h.to_dict() for h in result.hooks],
                "routes": list(result.routes),
            }
        )
    if not (live and live.table):  # else each row was printed as its step was done
        rows = [step_row(a, result.step_seconds.get(a.service)) for a in result.actions]
        done = "done" if (result.applied or result.step_seconds) and not dry_run else None
        table(DEPLOY_COLUMNS, rows, ["kept" if a.kind == "keep" else done for a in result.actions])
    for line in ran(result):
        emit(line)
    for change in result.routes:
        emit(f"route {change}")
    where = f"{result.instance} on {result.host}"
    if dry_run:
        total = plural(len(result.actions), "service")
        emit(f"dry run: {changed} of {total} would change on {where}; nothing was changed")
    elif not result.applied and changed:
        emit(f"{where} is up to date (release {result.release}); leftovers of {plural(changed, 'service')} repaired")
    elif not result.applied:
        emit(f"{where} is up to date (release {result.release}); nothing was changed")
    else:
        emit(f"deployed {where}: release {result.release}, {plural(changed, 'service')} changed in {result.seconds:.1f}s")


def ran(result):
    """A line per release command run (or, in a dry run, that would run) and per hook."""
    for r in result.releases:
        if r.exit_code is None:
            yield f"release command of {r.service} would run: {shlex.join(r.command)}"
        else:
            yield f"release command of {r.service}: exit code {r.exit_code}{_took(r.seconds)}"
    for h in result.hooks:
        yield f"hook {h.name}: exit code {h.exit_code}{_took(h.seconds)}"


def _took(seconds):
    return "" if seconds is None else f" in {seconds:.1f}s"


def instances(host, states, as_json=False):
    states = sorted(states, key=lambda s: s.instance)
    if as_json:
        return document(
            {
                "host": host,
                "instances": [
                    {
                        "instance": s.instance,
                        "release": s.release,
                        "deployed_at": s.deployed_at,
                        "deployed_by": s.deployed_by,
                        "template": s.template,
                        "services": list(s.services),
                    }
                    for s in states
                ],
            }
        )
    if not states:
        return emit(f"no instances on {host}")
    table(
        ("INSTANCE", "SERVICES", "RELEASE", "DEPLOYED", "BY", "TEMPLATE"),
        [(s.instance, ", ".join(s.services), s.release, s.deployed_at, s.deployed_by, s.template) for s in states],
    )


def status(result, as_json=False):
    """One row per service the state knows, saying where Docker disagrees (drift), then
    containers Docker has that the state does not know."""
    state = result.state
    canonical = {c.name: c for c in result.containers}
    rows = []
    for service, svc in (state.services.items() if state else ()):
        container = canonical.pop(svc.container, None)
        ports = list(container.ports if container else svc.ports)
        rows.append((service, svc.container, _drift(svc, container), svc.image, ports, list(svc.volumes),
                     _health(container)))
    for service, extra in result.leftovers.items():
        for names, drift in ((extra.stop, "a retained container running (deploy stops it)"),
                             (extra.clear, "left by a cut-off deploy (deploy removes it)"),
                             (extra.prune, "retained beyond deployer.retain (deploy removes it)")):
            for c in (canonical.pop(name) for name in names):
                rows.append((service, c.name, f"{c.status}, {drift}", c.image, list(c.ports), [], _health(c)))
    retained = [c for c in canonical.values() if c.name.startswith(f"{result.instance}.{c.unit}.")]
    for c in canonical.values():
        if c not in retained:
            rows.append((c.service, c.name, f"{c.condition} (not in state)", c.image, list(c.ports), [], _health(c)))
    if as_json:
        keys = ("service", "container", "state", "image", "ports", "volumes", "health")
        return document(
            {
                "host": result.host,
                "instance": result.instance,
                "release": state.release if state else None,
                "deployed_at": state.deployed_at if state else None,
                "deployed_by": state.deployed_by if state else None,
                "template": state.template if state else None,
                "services": [dict(zip(keys, row)) for row in rows],
                "retained": [c.name for c in retained],
                "routes": state.routes if state else {},
            }
        )
    if state:
        emit(f"{result.instance} on {result.host}: release {state.release}, {state.deployed_at} by {state.deployed_by}, from {state.template}")
    table(
        ("SERVICE", "CONTAINER", "STATE", "IMAGE", "PORTS", "VOLUMES"),
        [(*row[:4], ", ".join(row[4]) or "-", ", ".join(row[5]) or "-") for row in rows],
    )
    for service, given in (state.routes.items() if state else ()):
        emit(f"{service} is served at {', '.join(given['domains'])} (port {given['port']})")
    if retained:
        names = ", ".join(c.name for c in retained)
        emit(f"{plural(len(retained), 'retained container')} for rollback ({names}); prune removes them")


def _drift(recorded, container):
    if container is None:
        return "missing (deploy recreates it)"
    if container.config_hash != recorded.config_hash:
        return f"{container.condition}, differs from the state (deploy recreates it)"
    return container.condition


def _health(container):
    """A running container's healthcheck verdict for --json (None: no healthcheck, or not running)."""
    return (container.health or None) if container is not None and container.running else None


_asking = threading.Lock()  # several hosts at once: one question at a time


def confirmed(question):
    """Ask a person on the terminal (stderr, then a line of stdin): whether the answer is yes."""
    with _asking:
        print(masked(question), end=" [y/N] ", file=sys.stderr, flush=True)
        answer = sys.stdin.readline()
        if not answer.endswith("\n"):
            print(file=sys.stderr)  # Ctrl-D: the next line starts on a line of its own
    return answer.strip().lower() in ("y", "yes")


def destroy_question(status, volumes):
    """What destroy is about to remove, as the question before it."""
    state, where = status.state, f"{status.instance} on {status.host}"
    if state is None and not status.containers:
        return f"destroy the volumes of {where} (it has no containers or state)?"
    if state:
        about = f"release {state.release}: {', '.join(state.services)}"
    else:
        about = plural(len(status.containers), "container")
    what = ", state and volumes" if volumes else " and state (volumes are kept)"
    return f"destroy {where} ({about}): its containers, built images{what}?"


def destroyed(host, instance, volumes):
    kept = "volumes removed" if volumes else "volumes kept (destroy --volumes removes them)"
    emit(f"destroyed {instance} on {host}: {kept}")


def valid(template, as_json=False):
    if as_json:
        return document(
            {
                "template": template.path,
                "valid": True,
                "services": [{"service": s.name, "image": s.image} for s in template.services],
            }
        )
    names = ", ".join(s.name for s in template.services)
    emit(f"{template.path}: ok ({plural(len(template.services), 'service')}: {names})")


def history(host, instance, releases, as_json=False):
    if as_json:
        keys = ("release", "time", "by", "result", "note", "template", "template_sha256", "changes", "releases")
        return document({"host": host, "instance": instance, "releases": [{k: r.get(k) for k in keys} for r in releases]})
    table(
        ("RELEASE", "TIME", "BY", "RESULT", "CHANGES"),
        [
            (
                r["release"] or "-",  # 0: a first deploy that changed nothing, no release
                r["time"],
                r["by"],
                r["result"],
                "; ".join(filter(None, [r.get("note")] + [f"{svc} {why}" for svc, why in r["changes"].items()]
                                 + [f"{x['service']} release command: exit code {x['exit_code']}"
                                    for x in r.get("releases", ())])) or "-",
            )
            for r in releases
        ],
    )


def pruned(host, instance, names, images=()):
    if names:
        emit(f"pruned {plural(len(names), 'retained container')} of {instance} on {host}: {', '.join(names)}")
    if images:
        emit(f"pruned {plural(len(images), 'image')} built for {instance} on {host}: {', '.join(images)}")
    if not names and not images:
        emit(f"nothing to prune for {instance} on {host}")


def controlled(host, verb, names):
    emit(f"{verb}: {', '.join(names)} on {host}")


def interrupted():
    """Ctrl-C: what it left behind (even with -q: it is an error)."""
    sys.stdout.flush()
    print("error: interrupted: a deploy whose plan had reached its host runs to its end there "
          "(`status` shows it); one still waiting for the lock or planning changed nothing",
          file=sys.stderr, flush=True)


def host_block(outcome):
    """One host's captured output, as soon as it is done."""
    print(f"== {outcome.host}: {'ok' if not outcome.code else 'FAILED'} ({outcome.seconds:.1f}s)")
    if outcome.text:
        print(outcome.text, end="")
    if outcome.message:
        print(masked(outcome.message), file=sys.stderr)


def summary(outcomes):
    rows = []
    for o in outcomes:
        result = o.result
        rows.append(
            (
                o.host,
                getattr(result, "instance", "-"),
                "ok" if not o.code else f"failed ({o.code})",
                sum(a.kind != "keep" for a in result.actions) if hasattr(result, "actions") else "-",
                f"{o.seconds:.1f}",
            )
        )
    print()
    table(("HOST", "INSTANCE", "RESULT", "CHANGED", "SECONDS"), rows)


def hosts_json(outcomes):
    """Every host's ``--json`` document in one: ``{"hosts": [{"host", "ok", "exit_code", "error", "result"}]}``."""
    document(
        {
            "hosts": [
                {
                    "host": o.host,
                    "ok": not o.code,
                    "exit_code": o.code,
                    "error": o.message or None,
                    "seconds": round(o.seconds, 3),
                    "result": json.loads(o.text) if o.text.strip() else None,
                }
                for o in outcomes
            ]
        }
    )


def endpoints(host, instance, registered, as_json=False, etcd=False):
    """``etcd``: the host publishes endpoints on its own reachable address. Without it an
    endpoint has no host port (``wan`` aside): it is its service's alias on the networks."""
    if as_json:
        return document({"host": host, "instance": instance, "endpoints": registered})
    if not registered:
        return emit(f"{instance} on {host} registers no endpoints")
    table(
        ("ENDPOINT", "ADDRESS", "CONTAINER PORT", "PUBLISHED ON"),
        [
            (key, ", ".join(f"{e['address']}:{port}" for port in discovery.host_ports(e))
             or f"{network.alias(instance, key.split(':')[0])}:{e['port']}", e["port"],
             "all interfaces" if e["wan"] else "host address (etcd)" if etcd else "none (instance network)")
            for key, e in sorted(registered.items())
        ],
    )


ROUTE_KEYS = ("domain", "instance", "service", "container", "state", "upstream", "health")


def routes(host, held, states=None, as_json=False):
    """The host's route table: a row a domain, with its containers' states (``states``: by
    name; one not there is ``missing``), comma-separated for replicas, and its health check
    (a path, or a TCP connect)."""
    states = states or {}
    rows = [(r.domain, r.instance, r.service, ", ".join(r.containers),
             ", ".join(states.get(c, "missing") for c in r.containers), ", ".join(r.upstreams),
             f"GET {r.health}" if r.health else "tcp connect") for r in held]
    if as_json:
        return document({"host": host, "routes": [dict(zip(ROUTE_KEYS, row)) for row in rows]})
    if not rows:
        return emit(f"no routes on {host}")
    table(tuple(key.upper() for key in ROUTE_KEYS), rows)


def router_status(host, found, held, as_json=False):
    """The router's container (``found``: docker inspect's description, None: there is none)
    and what it serves."""
    state = (found or {}).get("State", {})
    ports = sorted({f"{b['HostIp'] or '0.0.0.0'}:{b['HostPort']}" for binds in
                    ((found or {}).get("NetworkSettings", {}).get("Ports") or {}).values() for b in binds or ()})
    info = {"host": host, "container": found["Name"].lstrip("/") if found else None,
            "state": state.get("Status", "missing"), "image": found["Config"]["Image"] if found else None,
            "started_at": state.get("StartedAt"), "ports": ports, "domains": len(held),
            "instances": sorted({r.instance for r in held})}
    if as_json:
        return document(info)
    if not found:
        return emit(f"no router on {host} (a deploy with a route starts it; "
                    f"{plural(len(held), 'domain')} in its table)")
    emit(f"router {info['container']} on {host}: {info['state']} since {info['started_at']}, {info['image']}, "
         f"on {', '.join(ports) or 'no port'}; {plural(len(held), 'domain')} of "
         f"{plural(len(info['instances']), 'instance')}")


def router_restarted(host, held):
    emit(f"router on {host} restarted: {plural(len(held), 'domain')} served")


def text(value):
    """A document as it is (a certificate), on stdout."""
    if not QUIET.is_set():
        stream().write(value)
