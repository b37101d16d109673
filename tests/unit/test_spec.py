"""Service + plugins -> ContainerSpec, seen through its ``docker run`` argv and config hash."""

import shlex

import pytest

from deployer import plugins
from deployer.errors import TemplateError
from deployer.model import spec, template

APP = "app: {image: team/app}"


# --- environment ----------------------------------------------------------------------


def test_the_env_setting_applies_to_every_service_and_a_services_env_overrides_it(render, values_of):
    specs = render(
        """
        Env: {TZ: UTC, LOG_LEVEL: info}
        app: {image: team/app, env: {LOG_LEVEL: debug, PORT: 8080}}
        redis: {}
        """
    )

    assert values_of(specs["app"].run_args(), "-e") == ["LOG_LEVEL=debug", "PORT=8080", "TZ=UTC"]
    assert values_of(specs["redis"].run_args(), "-e") == ["LOG_LEVEL=info", "TZ=UTC"]


def test_numbers_and_booleans_in_env_reach_the_container_as_text(argv, values_of):
    args = argv("app: {image: team/app, env: {WORKERS: 4, RATIO: 0.5, DEBUG: true, QUIET: false}}")

    assert values_of(args, "-e") == ["DEBUG=true", "QUIET=false", "RATIO=0.5", "WORKERS=4"]


# --- name and labels ------------------------------------------------------------------


def test_the_container_is_named_instance_dot_service_and_labelled_with_both(render, values_of):
    spec = render("elsdoerfer/rethinkdb: {labels: {team: data, tier: 1}}", instance="customer1")["rethinkdb"]
    args = spec.run_args()

    assert args[:3] == ["-d", "--name", "customer1.rethinkdb"]
    assert values_of(args, "--label") == [
        "deployer.instance=customer1",
        "deployer.service=rethinkdb",
        "team=data",
        "tier=1",
        f"deployer.config-hash={spec.config_hash}",
    ]


def test_the_config_hash_label_is_sixteen_hex_digits(render, values_of):
    (label,) = [v for v in values_of(render(APP)["app"].run_args(), "--label") if v.startswith("deployer.config-hash=")]

    digest = label.removeprefix("deployer.config-hash=")
    assert len(digest) == 16
    assert set(digest) <= set("0123456789abcdef")


# --- volumes and ports ----------------------------------------------------------------


def test_a_volume_is_bind_mounted_from_the_instances_own_service_directory(render, values_of):
    spec = render(
        "elsdoerfer/rethinkdb: {volumes: [/rethinkdb, '/var/lib/my-data:ro', /etc/conf.d/]}",
        instance="customer1",
        volume_dir="/srv/deployer/volumes",
    )["rethinkdb"]

    assert values_of(spec.run_args(), "-v") == [
        "/srv/deployer/volumes/customer1/rethinkdb/rethinkdb:/rethinkdb",
        "/srv/deployer/volumes/customer1/rethinkdb/var-lib-my_2ddata:/var/lib/my-data:ro",
        "/srv/deployer/volumes/customer1/rethinkdb/etc-conf.d:/etc/conf.d",
    ]
    assert spec.host_dirs == (
        "/srv/deployer/volumes/customer1/rethinkdb/rethinkdb",
        "/srv/deployer/volumes/customer1/rethinkdb/var-lib-my_2ddata",
        "/srv/deployer/volumes/customer1/rethinkdb/etc-conf.d",
    )


def test_two_instances_of_one_template_never_share_a_volume_directory(render, values_of):
    text = "redis: {volumes: [/data]}"

    assert values_of(render(text, instance="staging")["redis"].run_args(), "-v") == [
        "/srv/deployer/volumes/staging/redis/data:/data"
    ]
    assert values_of(render(text, instance="customer1")["redis"].run_args(), "-v") == [
        "/srv/deployer/volumes/customer1/redis/data:/data"
    ]


def test_volumes_of_a_volume_driver_are_named_volumes_of_it_with_its_options_and_no_host_directory(
        render, values_of):
    spec = render("db: {image: pg, volumes: [/data, '/etc/x:ro'], volume_driver: local,"
                  " volume_opts: {type: tmpfs, device: tmpfs, o: 'size=1m,uid=1'}}", instance="c1")["db"]

    assert values_of(spec.run_args(), "-v") == [] and spec.host_dirs == ()
    assert values_of(spec.run_args(), "--mount") == [
        "type=volume,source=c1_db_data,target=/data,volume-label=deployer.instance=c1,volume-driver=local,"
        'volume-opt=device=tmpfs,"volume-opt=o=size=1m,uid=1",volume-opt=type=tmpfs',
        "type=volume,source=c1_db_etc-x,target=/etc/x,volume-label=deployer.instance=c1,volume-driver=local,"
        'volume-opt=device=tmpfs,"volume-opt=o=size=1m,uid=1",volume-opt=type=tmpfs,readonly',
    ]
    assert type(spec).from_dict(spec.to_dict()) == spec  # as a release recorded it


def test_a_volume_without_a_driver_is_recorded_and_hashed_as_before_volume_drivers(render):
    spec = render("db: {image: pg, volumes: [/data]}")["db"]

    assert spec.to_dict()["mounts"] == [{"source": "/srv/deployer/volumes/c1/db/data", "target": "/data",
                                         "read_only": False}]


@pytest.mark.parametrize("text, key, message", [
    ("db: {image: pg, volumes: [/data], volume_opts: {a: b}}", "db.volume_opts", "give volume_driver too"),
    ("db: {image: pg, volumes: [/data], volume_driver: 'no such'}", "db.volume_driver", "volume driver's name"),
    ("db: {image: pg, volume_driver: x, volume_opts: {'a=b': c}}", "db.volume_opts", "option name"),
])
def test_a_volume_driver_s_mistakes_name_their_key(render, text, key, message):
    with pytest.raises(TemplateError) as error:
        render(text)

    assert f"{key}" in str(error.value) and message in str(error.value)


def test_ports_are_published_in_docker_runs_own_forms(argv, values_of):
    args = argv("app: {image: team/app, ports: [8080, '80:8080', '127.0.0.1:5353:53/udp', '[::1]:443:8443']}")

    assert values_of(args, "-p") == ["8080", "80:8080", "127.0.0.1:5353:53/udp", "[::1]:443:8443"]


# --- entrypoint, cmd and the image ----------------------------------------------------


@pytest.mark.parametrize(
    "options, tail",
    [
        (
            "entrypoint: [/sbin/tini, --], cmd: [serve, --port, 80]",
            ["--entrypoint", "/sbin/tini", "team/app", "--", "serve", "--port", "80"],
        ),
        (
            "entrypoint: /docker-entrypoint.sh --verbose",
            ["--entrypoint", "/docker-entrypoint.sh", "team/app", "--verbose"],
        ),
        ("entrypoint: [/bin/sh], cmd: -c 'echo hi'", ["--entrypoint", "/bin/sh", "team/app", "-c", "echo hi"]),
        ("cmd: serve", ["--init", "team/app", "serve"]),
    ],
    ids=["list with cmd", "string without cmd", "one word", "no entrypoint"],
)
def test_the_entrypoints_first_word_is_the_flag_and_the_rest_goes_before_the_cmd(argv, options, tail):
    assert argv(f"app: {{image: team/app, {options}}}")[-len(tail) :] == tail


# --- docker run flags -----------------------------------------------------------------


@pytest.mark.parametrize(
    "options, flags",
    [
        ("restart: always", ("--restart", "always")),
        ("restart: 'on-failure:3'", ("--restart", "on-failure:3")),
        ("memory: 512m", ("--memory", "512m")),
        ("memory: 1073741824", ("--memory", "1073741824")),
        ("cpus: 1.5", ("--cpus", "1.5")),
        ("user: 'nobody:nogroup'", ("--user", "nobody:nogroup")),
        ("workdir: /srv/./app/", ("--workdir", "/srv/app")),
        ("privileged: true", ("--privileged",)),
        ("healthcheck: false", ("--no-healthcheck",)),
        (
            "healthcheck: {cmd: curl -f http://localhost/ || exit 1}",
            ("--health-cmd", "curl -f http://localhost/ || exit 1"),
        ),
        (
            "healthcheck: {cmd: [curl, -f, 'http://localhost/a b'], interval: 10, timeout: 5s, retries: 3,"
            " start_period: 1m}",
            (
                "--health-cmd", "curl -f 'http://localhost/a b'",
                "--health-interval", "10s",
                "--health-timeout", "5s",
                "--health-retries", "3",
                "--health-start-period", "1m",
            ),
        ),
    ],
)
def test_a_template_key_becomes_its_docker_run_flag(argv, has_run, options, flags):
    args = argv(f"app: {{image: team/app, {options}}}")

    assert has_run(args, *flags)
    assert args.index(flags[0]) < args.index("team/app")


def test_a_service_that_asks_for_nothing_gets_only_the_defaults(render):
    spec = render(APP)["app"]

    assert spec.run_args() == [
        "-d", "--name", "c1.app",
        "--label", "deployer.instance=c1",
        "--label", "deployer.service=app",
        "--label", f"deployer.config-hash={spec.config_hash}",
        "--network", "deployer-c1", "--network-alias", "app.c1",
        "--restart", "unless-stopped",
        "--init",
        "team/app",
    ]


@pytest.mark.parametrize("options, absent", [("init: false", "--init"), ("privileged: false", "--privileged")])
def test_a_flag_turned_off_is_left_out(argv, options, absent):
    assert absent not in argv(f"app: {{image: team/app, {options}}}")


# --- hostile values stay single, verbatim argv items ----------------------------------

HOSTILE = [
    "it's \"quoted\"",
    "$(rm -rf /)",
    "`reboot`",
    "two words",
    "line one\nline two",
    "; docker rm -f $(docker ps -q)",
    "--privileged",
    "a=b=c",
    "\\'\\\"",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_is_one_verbatim_argv_item(argv, values_of, yaml_str, value):
    health = f"printf %s {shlex.quote(value)}"  # the container's shell runs it: it must parse
    args = argv(
        f"""
        app:
          image: team/app
          env: {{SECRET: {yaml_str(value)}}}
          labels: {{note: {yaml_str(value)}}}
          user: {yaml_str(value)}
          workdir: {yaml_str("/srv/" + value)}
          healthcheck: {{cmd: {yaml_str(health)}}}
          cmd: [echo, {yaml_str(value)}]
        """
    )

    assert values_of(args, "-e") == [f"SECRET={value}"]
    assert f"note={value}" in values_of(args, "--label")
    assert values_of(args, "--user") == [value]
    assert values_of(args, "--workdir") == [f"/srv/{value}"]
    assert values_of(args, "--health-cmd") == [health]
    assert args[-3:] == ["team/app", "echo", value]


# --- config hash ----------------------------------------------------------------------

BASE = """
Env: {TZ: UTC}
app: {image: 'team/app:1', cmd: serve, env: {A: '1', B: '2'}, volumes: [/data], ports: [8080]}
"""

CHANGED = {
    "an env value": BASE.replace("A: '1'", "A: '1 '"),
    "another env value": BASE.replace("B: '2'", "B: '3'"),
    "the Env setting": BASE.replace("TZ: UTC", "TZ: Europe/Berlin"),
    "an added env var": BASE.replace("B: '2'", "B: '2', C: ''"),
    "the image tag": BASE.replace("team/app:1", "team/app:2"),
    "the cmd": BASE.replace("cmd: serve", "cmd: serve --debug"),
    "a volume": BASE.replace("[/data]", "['/data:ro']"),
    "a port": BASE.replace("[8080]", "[8081]"),
    "a flag": BASE.replace("cmd: serve", "cmd: serve, init: false"),
}


def test_the_config_hash_is_equal_for_equal_specs(render):
    same = BASE.replace("env: {A: '1', B: '2'}", "env: {B: '2', A: '1'}")

    assert render(BASE)["app"].config_hash == render(BASE)["app"].config_hash == render(same)["app"].config_hash


@pytest.mark.parametrize("change", CHANGED.values(), ids=list(CHANGED))
def test_the_config_hash_changes_with_the_spec(render, change):
    assert render(change)["app"].config_hash != render(BASE)["app"].config_hash


def test_the_config_hash_differs_per_instance(render):
    assert render(BASE, instance="staging")["app"].config_hash != render(BASE, instance="customer1")["app"].config_hash


def test_secrets_can_leave_the_arguments_for_an_env_file_but_a_line_break_cannot(values_of):
    text = "app: {image: team/app, env: {TZ: UTC, PW: {secret: PW}, KEY: {secret: KEY}}}"
    (app,) = spec.render(template.parse(text, "t.yaml"), "i", "/v", plugins.installed(),
                         {"PW": "it's $(x) ", "KEY": "line\nbreak"})

    assert app.hidden_env() == {"PW": "it's $(x) "}
    hidden = app.run_args(env_file="/dev/fd/5")
    assert values_of(hidden, "-e") == ["KEY=line\nbreak", "TZ=UTC"] and values_of(hidden, "--env-file") == ["/dev/fd/5"]
    assert values_of(app.run_args(), "-e") == ["KEY=line\nbreak", "PW=it's $(x) ", "TZ=UTC"]
    assert "--env-file" not in app.run_args()


def test_a_spec_without_placement_hashes_as_before_the_key_existed_and_a_placement_is_a_change(render):
    spec_changes = spec.changes
    unplaced = render(BASE)["app"]
    placement = "placement: {constraints: ['node.role == worker']}"
    placed = render(BASE.replace("ports: [8080]}", f"ports: [8080], {placement}}}"))["app"]

    assert "placement" not in unplaced.to_dict()
    assert spec.ContainerSpec.from_dict(unplaced.to_dict()).config_hash == unplaced.config_hash  # as recorded before
    assert "node.role" not in " ".join(placed.run_args())  # nothing to docker run
    assert unplaced.config_hash != placed.config_hash
    assert spec_changes(unplaced.to_dict(), placed) == spec_changes(placed.to_dict(), unplaced) == ["placement changed"]
