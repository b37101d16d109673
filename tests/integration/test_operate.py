"""Working with a running instance: one-off runs, exec, logs, stop/start, pull, health."""

import signal

import subprocess

from harness.poll import wait_for
from harness.processes import all_processes
from support import APP, docker, env_of, inspect


def test_run_starts_a_one_off_container_with_the_services_env_and_passes_its_exit_code(
    deployer_cli, app, unique_instance
):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    result = deployer_cli("run", unique_instance, "web", "--", "sh", "-c", 'echo "greeting=$GREETING"; ls /www; exit 7')

    assert result.returncode == 7
    assert "greeting=hello" in result.stdout
    assert docker("ps", "-aq", "--filter", f"label=deployer.one-off={unique_instance}").stdout == ""
    assert deployer_cli("run", unique_instance, "web", "--command", "true").returncode == 0


def test_run_hands_the_services_secrets_over_in_no_process_arguments_and_leaves_no_file(
    deployer_cli, deployer_started, unique_instance, sshd, tmp_path
):
    template = tmp_path / "secret.yaml"
    template.write_text("job:\n  image: local/busybox\n  cmd: sleep 3600\n  env: {TOKEN: {secret: TOKEN}, PLAIN: shown}\n")
    token = "s3cr3t-$(touch /tmp/pwned)-'q\"-\\"
    deployer_cli("deploy", template, "--instance", unique_instance, env={"TOKEN": token}, check=True)
    directory = sshd.state_dir / "instances" / unique_instance
    before = set(directory.iterdir())

    one_off = deployer_started("run", unique_instance, "job", "--", "sh", "-c", 'sleep 2; echo "token=$TOKEN plain=$PLAIN"')
    seen = []
    while one_off.poll() is None:  # every process's arguments, on this host, while it runs
        seen += [" ".join(argv) for _, argv in all_processes().values()]
    out, err = one_off.communicate()

    assert one_off.returncode == 0, err
    assert out == f"token={token} plain=shown\n"
    assert any("PLAIN=shown" in argv for argv in seen)  # the scan saw the one-off's arguments
    assert not any("s3cr3t" in argv for argv in seen)
    assert set(directory.iterdir()) == before  # its env file was removed before it ran


def test_exec_runs_inside_the_running_container(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    docker("exec", f"{unique_instance}.web", "sh", "-c", "echo inside > /www/mark")

    result = deployer_cli("exec", unique_instance, "web", "--", "cat", "/www/mark", check=True)

    assert result.stdout == "inside\n"
    missing = deployer_cli("exec", unique_instance, "nope", "--", "true")
    assert missing.returncode == 1 and "no service 'nope' (services: web, worker)" in missing.stderr


def test_logs_prefix_each_line_with_its_service(deployer_cli, app, unique_instance, tmp_path):
    app.write_text(APP.replace("sh -c 'while true; do sleep 3600; done'", "sh -c 'echo started $QUEUE; exec sleep 3600'")
                   + "  env: {QUEUE: jobs}\n")
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    result = deployer_cli("logs", unique_instance, "--service", "worker", "--tail", "5", check=True)

    assert result.stdout == "worker | started jobs\n"


def test_stop_and_start_one_service(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    deployer_cli("stop", unique_instance, "--service", "worker", check=True)
    assert inspect(f"{unique_instance}.worker", "{{.State.Running}}") == "false"
    assert inspect(f"{unique_instance}.web", "{{.State.Running}}") == "true"
    assert "exited" in deployer_cli("status", unique_instance, check=True).stdout

    deployer_cli("start", unique_instance, check=True)
    assert inspect(f"{unique_instance}.worker", "{{.State.Running}}") == "true"


def test_a_retagged_image_is_detected_and_only_its_services_recreated(deployer_cli, app, unique_instance, tmp_path):
    tag = f"local/retag-{unique_instance}:latest"
    docker("tag", "local/busybox:latest", tag)
    try:
        app.write_text(APP.replace("image: local/busybox\n  cmd: sh", f"image: {tag}\n  cmd: sh"))
        deployer_cli("deploy", app, "--instance", unique_instance, check=True)
        web = inspect(f"{unique_instance}.web", "{{.Id}}")
        build = tmp_path / "Dockerfile"
        build.write_text("FROM local/busybox:latest\nLABEL rebuilt=yes\n")
        assert docker("build", "-q", "-t", tag, str(tmp_path)).returncode == 0

        result = deployer_cli("deploy", app, "--instance", unique_instance, check=True)

        assert f"recreate  worker   image {tag} updated" in result.stdout
        assert inspect(f"{unique_instance}.web", "{{.Id}}") == web
        assert inspect(f"{unique_instance}.worker", "{{.Config.Labels.rebuilt}}") == "yes"
    finally:
        deployer_cli("destroy", unique_instance, check=True)  # frees the image
        docker("rmi", "-f", tag)


def test_pull_from_an_unreachable_registry_fails_before_anything_changes(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    before = inspect(f"{unique_instance}.web", "{{.Id}}")

    result = deployer_cli("deploy", app, "--instance", unique_instance, "--pull", "--force")

    assert result.returncode == 1
    assert result.stderr.startswith("error: host root@127.0.0.1:") and "cannot pull local/busybox" in result.stderr
    assert inspect(f"{unique_instance}.web", "{{.Id}}") == before


def test_an_unhealthy_new_container_is_replaced_by_the_old_one_again(deployer_cli, app, unique_instance):
    healthy = APP + "  healthcheck: {cmd: 'test -f /tmp/ok || touch /tmp/ok', interval: 1s, retries: 1}\n"
    app.write_text(healthy)
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    before = inspect(f"{unique_instance}.worker", "{{.Id}}")
    app.write_text(APP + "  healthcheck: {cmd: 'exit 1', interval: 1s, retries: 1}\n")

    result = deployer_cli("deploy", app, "--instance", unique_instance)

    assert result.returncode == 1
    assert "deploy stopped at service 'worker'" in result.stderr and "unhealthy" in result.stderr
    assert inspect(f"{unique_instance}.worker", "{{.Id}}") == before
    assert inspect(f"{unique_instance}.worker", "{{.State.Running}}") == "true"
    assert "release 1" in deployer_cli("status", unique_instance, check=True).stdout


def test_status_shows_the_health_of_a_container_with_a_healthcheck(deployer_cli, app, unique_instance):
    app.write_text(APP + "  healthcheck: {cmd: 'true', interval: 1s}\n")
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    rows = deployer_cli("status", unique_instance, check=True).stdout.splitlines()

    assert [row.split()[:4] for row in rows if row.startswith(("web ", "worker "))] == [
        ["web", f"{unique_instance}.web", "running", "local/busybox"],
        ["worker", f"{unique_instance}.worker", "running", "(healthy)"]]


def test_a_service_without_volumes_or_fixed_ports_starts_its_replacement_first(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    old = inspect(f"{unique_instance}.worker", "{{.Id}}")
    app.write_text(APP + "  env: {QUEUE: other}\n")

    deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    assert env_of(f"{unique_instance}.worker")["QUEUE"] == "other"
    new_started = inspect(f"{unique_instance}.worker", "{{.State.StartedAt}}")
    old_finished = inspect(old, "{{.State.FinishedAt}}")
    assert inspect(old, "{{.Name}}") == f"/{unique_instance}.worker.r1"
    assert new_started < old_finished  # the new one ran before the old one stopped


def _host_commands(word, instance):
    """The host's processes whose arguments name the instance and the word (docker logs ...)."""
    return [argv for _, argv in all_processes().values() if word in argv and any(instance in a for a in argv)]


def test_one_ctrl_c_ends_logs_follow_at_once_and_leaves_nothing_on_the_host(deployer_cli, deployer_started, app,
                                                                          unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    follow = deployer_started("logs", unique_instance, "--follow")
    wait_for(lambda: _host_commands("logs", unique_instance), "docker logs to start", timeout=20)

    follow.send_signal(signal.SIGINT)

    wait_for(lambda: follow.poll() is not None, "one Ctrl-C to end logs --follow", timeout=5)
    follow.communicate()
    wait_for(lambda: not _host_commands("logs", unique_instance), "docker logs to end on the host", timeout=5)


def test_a_killed_client_takes_its_logs_follow_and_one_off_along_on_the_host(deployer_cli, deployer_started, app,
                                                                           unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    follow = deployer_started("logs", unique_instance, "--follow")
    one_off = deployer_started("run", unique_instance, "worker", "--", "sleep", "300")
    one_offs = lambda: docker("ps", "-q", "--filter", f"label=deployer.one-off={unique_instance}").stdout.split()  # noqa: E731
    wait_for(lambda: _host_commands("logs", unique_instance) and one_offs(), "logs and the one-off to start", timeout=30)

    for proc in (follow, one_off):
        proc.kill()
        proc.communicate()

    wait_for(lambda: not _host_commands("logs", unique_instance), "docker logs to end on the host", timeout=10)
    wait_for(lambda: not one_offs(), "the one-off container to go", timeout=20)


def test_exec_and_run_hand_piped_stdin_to_the_command_whole_and_end_it_at_its_end(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    dump = "".join(f"insert into notes values ({n}, 'note ünïcode {n}');\n" for n in range(60000))  # 3 MiB

    counted = deployer_cli("exec", unique_instance, "web", "--", "sh", "-c", "wc -c; echo done", input=dump)
    one_off = deployer_cli("run", unique_instance, "worker", "--", "sh", "-c", "head -n 1; exit 3", input=dump)

    assert (counted.returncode, counted.stdout.split()) == (0, [str(len(dump.encode())), "done"]), counted.stderr
    assert (one_off.returncode, one_off.stdout) == (3, "insert into notes values (0, 'note ünïcode 0');\n")


def test_exec_reads_a_file_given_as_stdin_and_local_mode_too(deployer_cli, app, unique_instance, tmp_path):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    dump = tmp_path / "dump.sql"
    dump.write_text("select 42;\n")

    with open(dump) as stdin:
        over_ssh = deployer_cli("exec", unique_instance, "web", "--", "cat", stdin=stdin)
    locally = deployer_cli("exec", unique_instance, "web", "--", "cat", input="select 43;\n", host=False)

    assert (over_ssh.returncode, over_ssh.stdout) == (0, "select 42;\n"), over_ssh.stderr
    assert (locally.returncode, locally.stdout) == (0, "select 43;\n"), locally.stderr


def test_exec_without_input_such_as_cis_stdin_gives_the_command_none_to_wait_for(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    result = deployer_cli("exec", unique_instance, "web", "--", "cat", stdin=subprocess.DEVNULL)

    assert (result.returncode, result.stdout) == (0, "")
