"""``deployer import``: a docker-compose.yml as a deployer template, and what did not fit.

The import is a pure translation from one file (and the env files it names) to template
text; it never contacts a host or Docker. In order:

1. read.py reads the YAML as compose does and merges ``extends`` of the same file;
2. interpolate.py turns ``${VAR}`` into template variables (``{VAR}``) or defaults;
3. convert.py (with build.py, storage.py) maps each service key to template keys;
4. network.py turns service-name addresses and ``depends_on`` into endpoints;
5. emit.py writes the template, with comments where a translation is not word for word.

Everything not carried is in the report (report.py), each item with why: an unknown or
unsupported key is never passed over in silence (unsupported.py holds the reasons).
"""

from dataclasses import dataclass

from . import convert, emit, network, read, storage, unsupported
from .interpolate import Interpolation
from .report import Report
from .service import Context

KNOWN_TOP_LEVEL = {"services", "version", "name", "volumes", "secrets"}


@dataclass(frozen=True)
class Imported:
    """A compose file's template and its report: what ``deployer import`` prints."""

    source: str  # the compose file's path
    template: str  # the template's text
    dropped: tuple  # report.Dropped
    notes: tuple  # report.Note
    variables: dict  # template variable -> the compose key that first asks for it
    secrets: dict  # deployer secret name -> where compose had it from

    def report_lines(self):
        """What stderr shows: notes first, then what was dropped (the part to act on)."""
        return [n.line() for n in self.notes] + [d.line() for d in self.dropped]

    @property
    def complete(self):
        """Whether everything was carried (``--check``)."""
        return not self.dropped

    def to_dict(self):
        return {
            "source": self.source,
            "template": self.template,
            "dropped": [{"service": d.service, "key": d.key, "why": d.why} for d in self.dropped],
            "notes": [{"service": n.service, "key": n.key, "note": n.note} for n in self.notes],
            "variables": sorted(self.variables),
            "secrets": sorted(self.secrets),
        }


def imported(path):
    """Import the compose file at ``path``; a file that is not a compose file (or not
    YAML, or a service with nothing to run) is a TemplateError naming file and key."""
    project, report = read.Project(path), Report()
    data = read.load(path)
    interpolation = Interpolation(project.dotenv(), str(path))
    ctx = Context(report, project, interpolation, {k: interpolation.value(v, k) for k, v in data.items()
                                                   if k in ("volumes", "secrets")})
    services = {}
    for name, service in read.extended(data["services"], str(path), report).items():
        services[name] = interpolation.value(service, name)
    convert.services(ctx, services)
    storage.secret_file_uses(ctx)
    _take_notes(interpolation, report, services)
    network.connect(ctx, services)
    _top_level(ctx, data, services)
    targets = list(ctx.targets.values())
    header = _header(path, interpolation.needed, ctx.secrets_used, targets, report)
    return Imported(str(path), emit.template(header, targets), tuple(report.dropped), tuple(report.notes),
                    dict(interpolation.needed), dict(ctx.secrets_used))


def _take_notes(interpolation, report, services):
    """The interpolation's notes, each under its service (the longest name its key
    path starts with: names may hold dots) and key."""
    names = sorted(services, key=len, reverse=True)
    for where, note in interpolation.notes:
        service = next((n for n in names if where.startswith(n + ".")), None)
        report.note(service, where[len(service) + 1:] if service else where, note)
    interpolation.notes.clear()


def _top_level(ctx, data, services):
    storage.top_level_volumes(ctx, data.get("volumes"))
    extensions = [k for k in data if str(k).startswith("x-")]
    extensions += [f"{name}.{k}" for name, s in services.items() for k in s if str(k).startswith("x-")]
    if extensions:
        ctx.report.drop(None, ", ".join(extensions), "extension keys are compose's own: where their anchors "
                                                     "were used, the values were carried")
    if "version" in data:
        ctx.report.note(None, "version", "compose reads every version alike and so does the import")
    if data.get("name"):
        ctx.report.note(None, "name", f"the project's name: an instance's name plays its part "
                                      f"(deploy --instance {data['name']})")
    for key in data:
        if key in KNOWN_TOP_LEVEL or str(key).startswith("x-"):
            continue
        why = unsupported.TOP_LEVEL.get(key, "not a top-level key this import knows")
        ctx.report.drop(None, str(key), why)


def _header(path, variables, secrets, targets, report):
    lines = [f"deployer template imported from {path} by `deployer import`."]
    if variables:
        lines.append("Give at deploy time: " + " ".join(f"--var {v}=..." for v in sorted(variables)))
    for name, where in sorted(secrets.items()):
        lines.append(f"Secret {name} ({where}): from the deploying side's environment or --secrets FILE.")
    if any("git" in t.keys for t in targets):
        lines.append("git paths are relative to this file: keep it beside the compose file.")
    if report.dropped:
        lines.append(f"Not carried: {len(report.dropped)} (`deployer import --check` lists them).")
    return lines
