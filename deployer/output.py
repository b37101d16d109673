"""Output: every line a task prints goes through here, for people or (``--json``) scripts.

Lines go to the current thread's stream: stdout, or a buffer while the parallel executor
keeps one host's output together. The JSON documents are documented in README.rst; their
keys are stable, and no env value (so no secret) is ever part of them.
"""

import contextlib
import io
import json
import sys
import threading

_local = threading.local()


def emit(line=""):
    if not QUIET.is_set():
        print(line, file=getattr(_local, "stream", None) or sys.stdout)


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


def table(header, rows):
    rows = [tuple(str(cell) for cell in row) for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in [tuple(header), *rows]:
        emit("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def build_progress():
    """``progress(service, line)``: a build's output, each line on stderr as it comes
    (stdout stays the result's), prefixed with the service, and with the host while
    several hosts deploy at once (their lines interleave). Made in the task's thread:
    the lines arrive on another."""
    host = getattr(_local, "host", None)
    prefix = f"{host}: " if host else ""

    def progress(service, line):
        if not QUIET.is_set():
            print(f"{prefix}{service} | {line}", file=sys.stderr, flush=True)

    return progress


def deployed(result, dry_run=False, as_json=False):
    changed = sum(a.kind != "keep" for a in result.actions)
    for note in result.notes:
        print(f"warning: {note}", file=sys.stderr)
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
            }
        )
    timed = {svc: f"{s:.1f}s" for svc, s in result.step_seconds.items() if s is not None}
    table(("ACTION", "SERVICE", "WHY", "TIME"), [(a.kind, a.service, a.reason, timed.get(a.service, "")) for a in result.actions])
    where = f"{result.instance} on {result.host}"
    if dry_run:
        emit(f"dry run: {changed} of {len(result.actions)} services would change on {where}; nothing was changed")
    elif not result.applied:
        emit(f"{where} is up to date (release {result.release}); nothing was changed")
    else:
        emit(f"deployed {where}: release {result.release}, {changed} services changed in {result.seconds:.1f}s")


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
        rows.append((service, svc.container, _drift(svc, container), svc.image, ports, list(svc.volumes)))
    retained = [c for c in canonical.values() if c.name.startswith(f"{result.instance}.{c.service}.")]
    for c in canonical.values():
        if c not in retained:
            rows.append((c.service, c.name, f"{c.status} (not in state)", c.image, list(c.ports), []))
    if as_json:
        keys = ("service", "container", "state", "image", "ports", "volumes")
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
            }
        )
    if state:
        emit(f"{result.instance} on {result.host}: release {state.release}, {state.deployed_at} by {state.deployed_by}, from {state.template}")
    table(
        ("SERVICE", "CONTAINER", "STATE", "IMAGE", "PORTS", "VOLUMES"),
        [(*row[:4], ", ".join(row[4]) or "-", ", ".join(row[5]) or "-") for row in rows],
    )
    if retained:
        emit(f"{len(retained)} retained containers for rollback ({', '.join(c.name for c in retained)}); prune removes them")


def _drift(recorded, container):
    if container is None:
        return "missing (deploy recreates it)"
    if container.config_hash != recorded.config_hash:
        return f"{container.status}, differs from the state (deploy recreates it)"
    return container.status


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
    emit(f"{template.path}: ok ({len(template.services)} services: {names})")


def history(host, instance, releases, as_json=False):
    if as_json:
        keys = ("release", "time", "by", "result", "note", "template", "template_sha256", "changes")
        return document({"host": host, "instance": instance, "releases": [{k: r.get(k) for k in keys} for r in releases]})
    table(
        ("RELEASE", "TIME", "BY", "RESULT", "CHANGES"),
        [
            (
                r["release"],
                r["time"],
                r["by"],
                r["result"],
                "; ".join(filter(None, [r.get("note")] + [f"{svc} {why}" for svc, why in r["changes"].items()])) or "-",
            )
            for r in releases
        ],
    )


def pruned(host, instance, names):
    if names:
        emit(f"pruned {len(names)} retained containers of {instance} on {host}: {', '.join(names)}")
    else:
        emit(f"nothing to prune for {instance} on {host}")


def controlled(host, verb, names):
    emit(f"{verb}: {', '.join(names)} on {host}")


def host_block(outcome):
    """One host's captured output, as soon as it is done."""
    print(f"== {outcome.host}: {'ok' if not outcome.code else 'FAILED'} ({outcome.seconds:.1f}s)")
    if outcome.text:
        print(outcome.text, end="")
    if outcome.message:
        print(outcome.message, file=sys.stderr)


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


def endpoints(host, instance, registered, as_json=False):
    if as_json:
        return document({"host": host, "instance": instance, "endpoints": registered})
    if not registered:
        return emit(f"{instance} on {host} registers no endpoints")
    table(
        ("ENDPOINT", "ADDRESS", "CONTAINER PORT", "PUBLISHED ON"),
        [
            (key, f"{e['address']}:{e['host_port']}", e["port"], "all interfaces" if e["wan"] else "docker bridge")
            for key, e in sorted(registered.items())
        ],
    )
