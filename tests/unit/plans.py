"""Deploys as the pure core plans them, for the tests of plans and of the scripts they
compile to.

A ``Case`` is a template as it is now and what the host has: the state file and the
containers Docker reports (built as ``docker inspect`` describes them) of the template
deployed before, containers retained by earlier deploys, leftovers. ``Case.actions()``
is what the real ``plan()`` makes of it; the golden tests compile those actions
(test_apply_script.py), and ``deploy_turns`` runs a whole deploy of the case, facts turn
and applied plan, against the stub docker, as a Host does.
"""

import json
from dataclasses import dataclass, field

from deployer import plugins
from deployer.model import discovery, spec, template
from deployer.model.plan import plan, releasing
from deployer.model.state import Container, InstanceState, ServiceState
from deployer.remote.apply import Limits
from deployer.remote.session import LocalRunner

OLD_ID = "sha256:" + "a" * 64
NEW_ID = "sha256:" + "b" * 64
IMAGES = {"team/app": OLD_ID, "postgres": OLD_ID}
VOLUME_DIR = "/srv/deployer/volumes"
LIMITS = Limits(health_timeout=60, min_uptime=1.0, history=5)
RELEASED = dict(template="app.yaml", deployed_at="2024-01-02T00:00:00+00:00", deployed_by="ops@laptop")


def inspected(spec, image_id=OLD_ID, status="running", config_hash=None, name=None, release=1):
    """What ``docker inspect`` says of a container running ``spec`` (as ``name``, by the
    deploy of ``release``)."""
    return {
        "Name": f"/{name or spec.name}",
        "Image": image_id,
        "Created": f"2024-01-0{release}T00:00:00Z",
        "Config": {
            "Image": spec.image,
            "Labels": {
                "deployer.instance": spec.instance,
                "deployer.service": spec.service,
                "deployer.config-hash": config_hash or spec.config_hash,
                "deployer.release": str(release),
                **({"deployer.replica": str(spec.replica)} if spec.replica else {}),
            },
        },
        "State": {"Running": status == "running", "Status": status},
        "NetworkSettings": {"Ports": {}},
    }


def container_of(spec, image_id=OLD_ID, **how):
    """The Container the host reports for a spec it runs (``how``: as in ``inspected``)."""
    return Container.from_inspect(inspected(spec, image_id, **how))


def state_of(specs, images=IMAGES, release=1):
    """The state file of an instance whose release ``release`` started ``specs``."""
    return InstanceState(
        instance="c1",
        template="app.yaml",
        release=release,
        deployed_at="2024-01-01T00:00:00+00:00",
        deployed_by="ops@laptop",
        services={s.unit: ServiceState.of(s, images.get(s.image)) for s in specs},
    )


def rendered(text, secrets=None, volume_dir=VOLUME_DIR):
    """The specs of instance ``c1`` in start order, and their dependencies, as a deploy
    renders them (endpoints allocated on a host with no other instance)."""
    parsed = template.parse(text, "app.yaml")
    endpoints = discovery.allocate(parsed, {}, set(), "", "c1")
    deps = discovery.dependencies(parsed, {})
    specs = spec.render(parsed, "c1", volume_dir, plugins.installed(), secrets or {}, endpoints)
    return discovery.ordered(specs, deps), deps


@dataclass(frozen=True)
class Case:
    template: str  # the template now
    before: str = ""  # the template deployed before (release ``release``); its containers run
    release: int = 1
    retained: tuple = ()  # (template, release): containers earlier deploys kept, stopped
    leftovers: tuple = ()  # other containers' names (a deploy cut off left NAME.next)
    secrets: dict = field(default_factory=dict)
    retain: int = 3
    releases: dict = field(default_factory=dict)  # service -> its release command

    def specs(self, volume_dir=VOLUME_DIR):
        return rendered(self.template, self.secrets, volume_dir)

    def state(self, volume_dir=VOLUME_DIR):
        return state_of(self._before(volume_dir), release=self.release) if self.before else None

    def inspected(self, volume_dir=VOLUME_DIR):
        """What ``docker inspect`` says of the host's containers."""
        current = [inspected(s, release=self.release) for s in self._before(volume_dir)]
        kept = [inspected(s, status="exited", name=f"{s.name}.r{release}", release=release)
                for text, release in self.retained for s in rendered(text, self.secrets, volume_dir)[0]]
        (web,) = rendered("web: {image: team/app}")[0]
        return current + kept + [inspected(web, status="exited", name=name) for name in self.leftovers]

    def _before(self, volume_dir):
        return rendered(self.before, self.secrets, volume_dir)[0] if self.before else ()

    def actions(self, volume_dir=VOLUME_DIR):
        containers = [Container.from_inspect(c) for c in self.inspected(volume_dir)]
        return plan(self.specs(volume_dir)[0], self.state(volume_dir), containers, IMAGES, retain=self.retain)

    def releasing(self, actions, volume_dir=VOLUME_DIR):
        """The release commands the deploy runs (those of services created or changed)."""
        return releasing(actions, self.releases, self.state(volume_dir), IMAGES)

    def applied(self, actions, volume_dir=VOLUME_DIR):
        """The state after the actions, and its line in the history (as a deploy records them)."""
        previous = self.state(volume_dir) or InstanceState("c1", "app.yaml", 0, "", "")
        removed = {a.service for a in actions if a.spec is None}
        final = previous.applied(self.specs(volume_dir)[0], removed, IMAGES, release=previous.release + 1,
                                 secrets=self.secrets, **RELEASED)
        return final, final.record(actions, self.template)


class Recording(LocalRunner):
    """A LocalRunner keeping what it sends: each script, then what is sent to it."""

    def __init__(self):
        self.sent = []

    def start(self, script, watch):
        self.sent.append(script)
        session = super().start(script, watch)
        send = session.send
        session.send = lambda data: (self.sent.append(data), send(data))[-1]
        return session


def deploy_turns(shell, case, verbose=False, discovery=False, held=None):
    """Deploy the case on the stub docker as a Host does: the lock and the facts (with
    ``discovery``, what allocating endpoints needs too), then the plan's script (and
    ``held(ok, done)`` once it ran, the lock still held). The two texts sent, and what
    apply returned (services done, error)."""
    containers = case.inspected(shell.volume_dir)
    for c in containers:
        shell.docker.container(c["Name"][1:], status=c["State"]["Status"])
    shell.docker.answer("ps *", "".join(f"{c['Name'][1:]}\n" for c in containers))
    images = [{"Id": OLD_ID, "RepoTags": [f"{name}:latest"]} for name in IMAGES]
    shell.docker.answer("inspect *", json.dumps(containers + images))
    state = case.state(shell.volume_dir)
    if state:
        shell.instance_dir.mkdir(parents=True)
        (shell.instance_dir / "state.json").write_text(state.to_json())
    runner = Recording()
    host = shell.host(runner, verbose)
    specs, deps = case.specs(shell.volume_dir)
    with host.deploying("c1", [s.image for s in specs], "ops@laptop", 0, discovery=discovery) as deploy:
        actions = plan(specs, deploy.facts.state, deploy.facts.containers, deploy.facts.images, retain=case.retain)
        final, entry = case.applied(actions, shell.volume_dir)
        releases = case.releasing(actions, shell.volume_dir)
        done, error = deploy.apply(actions, final, entry, case.template, deps, releases=releases, held=held)
    return runner.sent, done, error


WEB = "web: {image: team/app, env: {A: '%s'}}\n"
DB = "db: {image: postgres, volumes: [/var/lib/postgresql/data], env: {B: '%s'}}\n"
PROXY = "proxy: {image: team/app, ports: ['8080:80'], env: {C: '%s'}}\n"
SECRET = "%s: {image: team/app, env: {TZ: UTC, PW: {secret: PW}, KEY: {secret: KEY}, A: '%s'}}\n"
WAVES = """
db: {image: postgres, register: {5432: sql}}
cache: {image: team/app, register: {6379: redis}}
app: {image: team/app, register: {8000: http}, expose: {"db:sql": DB, "cache:redis": REDIS}}
web: {image: team/app, expose: {"app:http": APP}}
"""

# name -> the case: one of each kind of step a plan compiles to, and "mixed": a plan with
# most kinds at once (remove, start-first, stop-first, keep, create)
CASES = {
    "create": Case(WEB % 1 + DB % 1),
    "create in waves": Case(WAVES),
    "recreate start-first": Case(WEB % 2, before=WEB % 1),
    "recreate start-first after a deploy was cut off": Case(WEB % 2, before=WEB % 1, leftovers=("c1.web.next",)),
    "repair after a deploy was cut off": Case(WEB % 1, before=WEB % 1, leftovers=("c1.web.next",)),
    "recreate stop-first": Case(DB % 2 + PROXY % 2, before=DB % 1 + PROXY % 1),
    "remove": Case(WEB % 1, before=WEB % 1 + DB % 1),
    "rollback": Case(WEB % 1 + DB % 1, before=WEB % 2 + DB % 2, release=2, retained=((WEB % 1 + DB % 1, 1),)),
    "secrets": Case(SECRET % ("web", 1) + SECRET % ("worker", 2), before=SECRET % ("worker", 1),
                    secrets={"PW": "it's $secret", "KEY": "two\nlines"}),
    "prune": Case(WEB % 3, before=WEB % 2, release=3, retained=((WEB % 1, 1), (WEB % 0, 2)), retain=1),
    "release": Case(WEB % 2 + DB % 1 + SECRET % ("worker", 1), before=WEB % 1 + DB % 1, secrets={"PW": "pw", "KEY": "k"},
                    releases={"web": ["migrate", "--all"], "db": ["check"], "worker": ["warm"]}),
    "mixed": Case(WEB % 2 + DB % 2 + PROXY % 1 + "cache: {image: redis}\n",
                  before=WEB % 1 + DB % 1 + PROXY % 1 + "old: {image: team/app}\n"),
}
