"""Which daemon a command talks to (deployer/cli/client.py): its socket's path."""

import os
import sys

import pytest

from deployer.cli import client


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return tmp_path


def socket_from(monkeypatch, cwd, path):
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "path", path)
    return client.socket_path()


def test_python_m_in_any_directory_talks_to_one_daemon(runtime, monkeypatch, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rest = ["/opt/lib", "/opt/site-packages"]

    here = socket_from(monkeypatch, tmp_path / "a", [str(tmp_path / "a"), *rest])
    there = socket_from(monkeypatch, tmp_path / "b", [str(tmp_path / "b"), *rest])

    assert here == there and os.path.dirname(here) == str(runtime / "deployer")
    assert oct(os.stat(runtime / "deployer").st_mode & 0o777) == "0o700"


def test_another_search_path_talks_to_another_daemon(runtime, monkeypatch, tmp_path):
    one = socket_from(monkeypatch, tmp_path, ["/usr/bin", "/opt/site-packages"])
    other = socket_from(monkeypatch, tmp_path, ["/usr/bin", "/elsewhere", "/opt/site-packages"])

    assert one != other


def test_a_socket_directory_others_can_enter_means_no_daemon(runtime):
    (runtime / "deployer").mkdir(mode=0o700)
    (runtime / "deployer").chmod(0o755)

    assert client.socket_path() is None


def test_without_xdg_runtime_dir_the_directory_is_the_users_own_in_tmp(monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)

    assert os.path.dirname(client.socket_path()) == f"/tmp/deployer-{os.getuid()}"


def test_a_process_with_other_limits_talks_to_another_daemon(runtime):
    import resource

    usual = client.inherited()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 1, hard))
    try:
        other = client.inherited()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    assert other["rlimits"]["RLIMIT_NOFILE"] == [soft - 1, hard] and usual["rlimits"]["RLIMIT_NOFILE"] == [soft, hard]
    assert client.socket_path(usual) != client.socket_path(other)
    assert client.inherited() == usual
