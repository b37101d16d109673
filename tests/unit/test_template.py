"""The template language: services, their images and cmds, and its errors."""

import textwrap

import pytest

from deployer.model import template
from deployer.errors import EXIT_USAGE

DIGEST = "sha256:" + "0123456789abcdef" * 4


# --- the image as the service key -----------------------------------------------------


@pytest.mark.parametrize(
    "key, service",
    [
        ("redis", "redis"),
        ("redis:7", "redis"),
        ("elsdoerfer/rethinkdb", "rethinkdb"),
        ("ghcr.io/team/app:1.2.3", "app"),
        ("localhost:5000/team/redis:7", "redis"),
        (f"redis@{DIGEST}", "redis"),
        (f"registry.example.com/team/app:2@{DIGEST}", "app"),
    ],
)
def test_a_key_without_image_is_the_image_and_the_service_is_named_after_its_last_part(argv, has_run, key, service):
    args = argv(f"{key}: {{}}")

    assert has_run(args, "--name", f"c1.{service}")
    assert has_run(args, "--label", f"deployer.service={service}")
    assert args[-1] == key


def test_a_service_with_no_value_runs_its_image_with_the_images_own_cmd(argv):
    assert argv("redis:")[-1] == "redis"


def test_an_image_key_names_the_image_and_the_key_is_the_service_name(argv, has_run):
    args = argv("db: {image: 'postgres:16', cmd: postgres -c fsync=off}")

    assert has_run(args, "--name", "c1.db")
    assert args[-4:] == ["postgres:16", "postgres", "-c", "fsync=off"]


def test_services_keep_their_template_order(render):
    specs = render(
        """
        elsdoerfer/rethinkdb: rethinkdb --bind all
        app: {image: team/app}
        cache: {image: redis}
        """
    )

    assert list(specs) == ["rethinkdb", "app", "cache"]


# --- cmd ------------------------------------------------------------------------------


def test_a_string_value_is_the_services_cmd(argv):
    assert argv("elsdoerfer/rethinkdb: rethinkdb --bind all")[-4:] == [
        "elsdoerfer/rethinkdb",
        "rethinkdb",
        "--bind",
        "all",
    ]


def test_a_string_cmd_is_split_like_a_shell_would_but_no_shell_expands_it(argv):
    args = argv("""app: {image: busybox, cmd: echo "$(id)" '`whoami`' "two words" $HOME}""")

    assert args[-5:] == ["echo", "$(id)", "`whoami`", "two words", "$HOME"]


def test_a_list_cmd_is_kept_verbatim(argv):
    args = argv("""app: {image: busybox, cmd: [sh, -c, "echo $HOME && exit 3", "", 10]}""")

    assert args[-6:] == ["busybox", "sh", "-c", "echo $HOME && exit 3", "", "10"]


def test_the_docker_run_defaults_are_visible_in_the_argv(argv, has_run):
    args = argv("redis: {}")

    assert has_run(args, "--restart", "unless-stopped")
    assert "--init" in args


def test_yaml_aliases_can_share_a_value_between_services(argv, values_of):
    text = """
        web: {image: team/app, env: &common {TZ: UTC}}
        worker: {image: team/app, env: *common}
        """

    assert values_of(argv(text, "worker"), "-e") == ["TZ=UTC"]


def test_a_yaml_merge_key_copies_another_services_keys(argv, values_of):
    # `<<: *anchor` is how compose users share settings between services; it is
    # valid YAML, so it must not be reported as "invalid YAML".
    args = argv(
        """
        web: &web {image: team/app, env: {TZ: UTC}, cmd: serve}
        worker: {<<: *web, cmd: work}
        """,
        "worker",
    )

    assert values_of(args, "-e") == ["TZ=UTC"]
    assert args[-2:] == ["team/app", "work"]


@pytest.mark.parametrize(
    "text, flag, expected",
    [
        ("app: {image: team/app, ports: [22:22]}", "-p", "22:22"),
        ("app: {image: team/app, env: {OPENS_AT: 12:30}}", "-e", "OPENS_AT=12:30"),
    ],
    ids=["port", "env value"],
)
def test_a_value_that_looks_like_base_60_stays_as_written(argv, values_of, text, flag, expected):
    # PyYAML's YAML 1.1 resolver reads 22:22 as the integer 1342 (22*60+22); docker
    # compose (YAML 1.2) and every user read it as "22:22".
    assert values_of(argv(text), flag) == [expected]


# --- errors: one TemplateError naming file, key path and what was expected ----------

ERRORS = [
    # wrong types
    ("app: {env: {PORT: [8080]}}", "app.yaml: app.env.PORT: expected a string, number or boolean"),
    ("app: {env: [PORT=8080]}", "app.yaml: app.env: expected a mapping of name: value"),
    ("app: {env: {my-var: x}}", "app.yaml: app.env.my-var: 'my-var' is not a valid environment variable name"),
    ("app: {ports: 8080}", "app.yaml: app.ports: expected a list"),
    ("app: {ports: [nope]}", "app.yaml: app.ports[0]: expected a port such as 8080"),
    ("app: {ports: [8080, '80:0']}", "app.yaml: app.ports[1]: expected a port such as 8080"),
    ("app: {privileged: 'yes'}", "app.yaml: app.privileged: expected true or false, got 'yes'"),
    ("app: {init: 1}", "app.yaml: app.init: expected true or false, got 1"),
    ("app: {memory: lots}", "app.yaml: app.memory: expected a size such as 512m or 2g, got 'lots'"),
    ("app: {cpus: two}", "app.yaml: app.cpus: expected a positive number of CPUs, got 'two'"),
    ("app: {restart: sometimes}", "app.yaml: app.restart: expected no, always, unless-stopped or on-failure[:N]"),
    ("app: {user: [root]}", "app.yaml: app.user: expected a string"),
    ("app: {workdir: srv}", "app.yaml: app.workdir: expected an absolute path, got 'srv'"),
    ("app: {cmd: {run: web}}", "app.yaml: app.cmd: expected a string or a list of strings"),
    ("app: {cmd: ''}", "app.yaml: app.cmd: is empty"),
    ("app: {cmd: 'echo \"open'}", "app.yaml: app.cmd: cannot split 'echo \"open' into words"),
    ("app: {entrypoint: []}", "app.yaml: app.entrypoint: is empty"),
    ("app: {labels: [a]}", "app.yaml: app.labels: expected a mapping of name: value"),
    ("app: 8080", "app.yaml: app: expected a mapping of keys, or a string (the cmd)"),
    ("Env: [TZ=UTC]\napp: {}", "app.yaml: Env: expected a mapping of name: value"),
    ("Env: {TZ: [UTC]}\napp: {}", "app.yaml: Env.TZ: expected a string, number or boolean"),
    # unknown keys
    ("app: {imgae: redis}", "app.yaml: app.imgae: unknown key"),
    ("Environment: {TZ: UTC}\napp: {}", "app.yaml: Environment: unknown template setting (known: Env, Vars, Hooks;"),
    # no image, bad names
    ("web+api: {cmd: serve}", "app.yaml: web+api: no image: the key is not an image reference and there is no 'image:' key"),
    ("'my app': {image: redis}", "app.yaml: my app: 'my app' is not a valid name"),
    ("-app: {image: redis}", "app.yaml: -app: '-app' is not a valid name"),
    (f"{'a' * 64}: {{image: redis}}", f"app.yaml: {'a' * 64}: '{'a' * 64}' is not a valid name"),
    ("1: {image: redis}", "app.yaml: top-level key 1 must be a string"),
    # the file as a whole
    ("", "app.yaml: expected a mapping of services (and capitalised settings)"),
    ("- redis\n- postgres", "app.yaml: expected a mapping of services (and capitalised settings)"),
    ("just words", "app.yaml: expected a mapping of services (and capitalised settings)"),
    ("Env: {TZ: UTC}", "app.yaml: defines no services"),
    # YAML itself
    ("app: {cmd: [a, b}", "app.yaml: line 1, column 17: invalid YAML:"),
    ("app:\n  cmd: a\n cmd: b", "app.yaml: line 3, column 2: invalid YAML: "),
    ("app: {}\napp: {}", "app.yaml: line 2, column 1: invalid YAML: key 'app' is given twice"),
    ("app:\n  env: {A: 1, A: 2}", "app.yaml: line 2, column 15: invalid YAML: key 'A' is given twice"),
    # labels and volumes
    ("app: {labels: {deployer.instance: x}}", "app.yaml: app.labels.deployer.instance: labels starting with 'deployer.' are deployer's own"),
    ("app: {volumes: [data]}", "app.yaml: app.volumes[0]: expected an absolute path, got 'data'"),
    ("app: {volumes: ['/data:rx']}", "app.yaml: app.volumes[0]: expected '/path', '/path:ro' or '/path:rw' (or ':shared', ':ro,shared' for all replicas), got '/data:rx'"),
    ("app: {volumes: [/]}", "app.yaml: app.volumes[0]: cannot mount a volume over the container's root '/'"),
    ("app: {volumes: [/data, /data/]}", "app.yaml: app.volumes: '/data' is listed twice"),
    ("app: {volumes: [/data, '/srv/../data:ro']}", "app.yaml: app.volumes: '/data' is listed twice"),
    # healthcheck
    ("app: {healthcheck: {interval: 5s}}", "app.yaml: app.healthcheck.cmd: required key not provided"),
    ("app: {healthcheck: true}", "app.yaml: app.healthcheck: expected a mapping with 'cmd'"),
    ("app: {healthcheck: {cmd: x, interval: soon}}", "app.yaml: app.healthcheck.interval: expected a duration such as 30s"),
    ("app: {healthcheck: {cmd: x, retries: 0}}", "app.yaml: app.healthcheck.retries: expected a positive whole number, got 0"),
    # not supported yet: named by key
    ("app: {git: {ref: main}}", "app.yaml: app.git.path: required key not provided"),
    ("app: {register: {99999: web}}", "app.yaml: app.register[99999]: expected a container port number, got '99999'"),
    ("app: {register: {8080: 'a b'}}", "app.yaml: app.register[8080]: 'a b' is not a valid name"),
    ("app: {expose: {'db': DB_URL}}", "app.yaml: app.expose.db: expected 'service:endpoint' (or 'instance/service:endpoint'), got 'db'"),
    ("app: {expose: {'db:x': {env: A, format: '{0}'}}}", "app.yaml: app.expose.db:x: format may use {host}, {port} and variables only"),
    ("app: {expose: {'db:x': {env: A, format: 'a{'}}}", "app.yaml: app.expose.db:x: format may use {host}, {port} and variables only"),
    # release commands and hooks
    ("app: {release: ''}", "app.yaml: app.release: is empty"),
    ("Hooks: [check]\napp: {}", "app.yaml: Hooks: expected a mapping of hook: command (pre-deploy, post-deploy)"),
    ("Hooks: {pre-deploy: ' '}\napp: {}", "app.yaml: Hooks.pre-deploy: expected a shell command"),
    ("Hooks: {pre-rollback: x}\napp: {}", "app.yaml: Hooks.pre-rollback: unknown hook; a template's hooks: pre-deploy, "
                                           "post-deploy (a rollback reads no template: set deployer.hooks.pre_rollback"),
    # variables' defaults
    ("Vars: [a]\napp: {}", "app.yaml: Vars: expected a mapping of name: value"),
    ("Vars: {a: [1]}\napp: {}", "app.yaml: Vars.a: expected a string, number or boolean"),
    ("Vars: {'a b': 1}\napp: {}", "app.yaml: Vars.a b: expected a variable name"),
    ("app: {placement: [a]}", "app.yaml: app.placement: expected a mapping with constraints"),
    ("app: {placement: {constraints: ['tier=web']}}",
     "app.yaml: app.placement.constraints[0]: expected a node attribute, == or != and a value"),
    ("app: {placement: {constraints: ['node.labels.tier == ']}}", "app.yaml: app.placement.constraints[0]: expected"),
    ("app: {placement: {spread: zone}}", "app.yaml: app.placement.spread: expected a node label such as"),
    ("app: {placement: {pin: db1}}", "app.yaml: app.placement.pin: "),
]


@pytest.mark.parametrize("text, message", ERRORS, ids=[message for _, message in ERRORS])
def test_a_bad_template_is_one_error_line_naming_file_key_and_expectation(template_error, text, message):
    error = template_error(text)

    assert str(error).startswith(message)
    assert "\n" not in str(error)
    assert error.exit_code == EXIT_USAGE


def test_two_keys_naming_the_same_service_ask_for_an_explicit_name(template_error):
    error = template_error(
        """
        redis: {}
        bitnami/redis: {}
        """
    )

    assert str(error) == (
        "app.yaml: bitnami/redis: 'redis' and 'bitnami/redis' are both the service 'redis': "
        "name one yourself, e.g. 'redis2: {image: bitnami/redis}'"
    )


def test_a_template_with_several_mistakes_reports_only_the_first(template_error):
    error = template_error(
        """
        app: {ports: 8080, memory: lots}
        db: {image: postgres, privileged: 'yes'}
        """
    )

    assert str(error) == "app.yaml: app.memory: expected a size such as 512m or 2g, got 'lots'"


def test_the_origin_example_parses_as_written():
    origin = template.parse(
        textwrap.dedent("""
        elsdoerfer/rethinkdb:
          cmd: rethinkdb --bind all
          volumes: [/rethinkdb]
          register: {28015: "driver", 29015: "cluster", "8080": web}

        app:
          git: .
          cmd: web
          expose: {"rethinkdb:driver": "RETHINKDB_URI"}
        """),
        "app.yaml",
    )

    assert [(s.name, s.image) for s in origin.services] == [("rethinkdb", "elsdoerfer/rethinkdb"), ("app", None)]
    assert origin.services[1].options["git"] == {"path": "."}


def test_a_path_with_a_leading_double_slash_is_the_same_volume(template_error):
    # posixpath.normpath keeps a leading "//" (POSIX leaves it implementation-defined),
    # but in a Linux container //data is /data: docker run would get two -v for one
    # mount point and fail with "Duplicate mount point".
    error = template_error("app: {volumes: [/data, //data]}")

    assert str(error) == "app.yaml: app.volumes: '/data' is listed twice"


@pytest.mark.parametrize(
    "text, key",
    [
        ('"redis\\n": {}', "redis\\n"),  # shown escaped: an error is one line
        ('app: {image: "redis\\n"}', "app.image"),
        ('"app\\n": {image: redis}', "app\\n"),
        ('app: {restart: "always\\n"}', "app.restart"),
    ],
    ids=["image as key", "image key", "service name", "restart"],
)
def test_a_trailing_newline_is_not_part_of_a_valid_name_or_value(template_error, text, key):
    # The schema's regexes end in `$`, which also matches before a final newline.
    error = template_error(text)

    assert str(error).startswith(f"app.yaml: {key}: ")


@pytest.mark.parametrize(
    "text, key",
    [
        ("x: &x {image: a, cmd: *x}", "x.cmd"),
        ("x: {image: a, cmd: &c [run, *c]}", "x.cmd[1]"),
        ("Env: &e {A: *e}\nx: {image: a}", "Env.A"),
    ],
)
def test_an_alias_inside_the_node_it_names_is_one_error_naming_where(template_error, text, key):
    error = template_error(text)

    assert str(error) == f"app.yaml: {key}: a YAML alias refers to a node that contains it (a cycle)"
    assert error.exit_code == EXIT_USAGE


def test_aliases_shared_many_times_over_are_no_cycle():
    text = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nweb: {image: busybox, cmd: [*c, *c]}\n"
    with pytest.raises(Exception) as error:  # refused for its shape (a top-level list), not as a cycle
        template.parse(text, "app.yaml")
    assert "cycle" not in str(error.value)


def test_keys_an_engine_ignores_are_said_once_naming_file_and_keys(parse):
    template = parse("""
        web: {image: w, placement: {spread: node.labels.zone}}
        db: {image: d, placement: {constraints: ['node.hostname == db1']}}
        cache: {image: c}
        """)

    assert template.unheeded(("placement",), "one Docker engine") == (
        "app.yaml: web.placement, db.placement: means nothing to one Docker engine, ignored",)
    assert template.unheeded(("privileged",), "one Docker engine") == ()
