"""Human output: every line a task prints goes through here."""

import sys


def table(header, rows, out=None):
    out = out or sys.stdout
    rows = [tuple(str(cell) for cell in row) for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in [tuple(header), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip(), file=out)


def deployed(result, dry_run=False):
    table(("ACTION", "SERVICE", "WHY"), [(a.kind, a.service, a.reason) for a in result.actions])
    changed = sum(a.kind != "keep" for a in result.actions)
    where = f"{result.instance} on {result.host}"
    if dry_run:
        print(f"dry run: {changed} of {len(result.actions)} services would change on {where}; nothing was changed")
    elif not result.applied:
        print(f"{where} is up to date (release {result.release}); nothing was changed")
    else:
        print(f"deployed {where}: release {result.release}, {changed} services changed in {result.seconds:.1f}s")


def instances(host, states):
    if not states:
        print(f"no instances on {host}")
        return
    table(
        ("INSTANCE", "SERVICES", "RELEASE", "DEPLOYED", "BY", "TEMPLATE"),
        [
            (s.instance, ", ".join(s.services), s.release, s.deployed_at, s.deployed_by, s.template)
            for s in sorted(states, key=lambda s: s.instance)
        ],
    )


def status(result):
    """One row per service the state knows, saying where Docker disagrees (drift), then
    containers Docker has that the state does not know."""
    state = result.state
    canonical = {c.name: c for c in result.containers}
    rows = []
    for service, svc in (state.services.items() if state else ()):
        container = canonical.pop(svc.container, None)
        rows.append((service, svc.container, _drift(svc, container), svc.image,
                     ", ".join(container.ports if container else svc.ports) or "-", ", ".join(svc.volumes) or "-"))
    retained = [c for c in canonical.values() if c.name.startswith(f"{result.instance}.{c.service}.")]
    for container in canonical.values():
        if container not in retained:
            rows.append((container.service, container.name, f"{container.status} (not in state)", container.image,
                         ", ".join(container.ports) or "-", "-"))
    if state:
        print(f"{result.instance} on {result.host}: release {state.release}, {state.deployed_at} by {state.deployed_by}, from {state.template}")
    table(("SERVICE", "CONTAINER", "STATE", "IMAGE", "PORTS", "VOLUMES"), rows)
    if retained:
        print(f"{len(retained)} retained containers for rollback ({', '.join(c.name for c in retained)}); prune removes them")


def _drift(recorded, container):
    if container is None:
        return "missing (deploy recreates it)"
    if container.config_hash != recorded.config_hash:
        return f"{container.status}, differs from the state (deploy recreates it)"
    return container.status


def destroyed(host, instance, volumes):
    kept = "volumes removed" if volumes else "volumes kept (destroy --volumes removes them)"
    print(f"destroyed {instance} on {host}: {kept}")


def valid(template):
    names = ", ".join(s.name for s in template.services)
    print(f"{template.path}: ok ({len(template.services)} services: {names})")


def history(releases):
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
        print(f"pruned {len(names)} retained containers of {instance} on {host}: {', '.join(names)}")
    else:
        print(f"nothing to prune for {instance} on {host}")


def controlled(host, verb, names):
    print(f"{verb}: {', '.join(names)} on {host}")
