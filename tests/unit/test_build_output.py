"""A build's output lines as the user sees them on stderr (output.build_progress)."""

import threading

from deployer.cli import output


def test_each_line_is_prefixed_with_its_service_and_goes_to_stderr(capsys):
    output.build_progress()("app", "Step 1/3 : FROM runner")

    captured = capsys.readouterr()
    assert captured.err == "app | Step 1/3 : FROM runner\n" and captured.out == ""


def test_while_several_hosts_deploy_each_line_also_names_its_host_even_from_another_thread(capsys):
    with output.captured("root@web1:22"):
        progress = output.build_progress()
    line = threading.Thread(target=progress, args=("app", "-----> Compiled slug"))
    line.start()
    line.join()

    assert capsys.readouterr().err == "root@web1:22: app | -----> Compiled slug\n"


def test_quiet_prints_no_build_output(capsys):
    output.QUIET.set()
    try:
        output.build_progress()("app", "Step 1/3 : FROM runner")
    finally:
        output.QUIET.clear()

    assert capsys.readouterr().err == ""
