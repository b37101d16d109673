"""Which stdin is input for ``run``/``exec`` (piped.py): a pipe or a file, never a terminal,
/dev/null or a closed descriptor (CI's), which no command should wait on."""

import os

from deployer.remote.piped import piped


def test_a_pipe_and_a_regular_file_are_input(tmp_path):
    read, write = os.pipe()
    (tmp_path / "dump.sql").write_text("select 1;\n")
    with open(read) as pipe, open(write, "w"), open(tmp_path / "dump.sql") as file:
        assert piped(pipe) and piped(file)


def test_a_terminal_dev_null_and_a_closed_stdin_are_not(tmp_path):
    master, terminal = os.openpty()
    closed = open(tmp_path / "x", "w")
    closed.close()
    with open(terminal) as tty, open(os.devnull) as null:
        assert not piped(tty) and not piped(null) and not piped(closed)
    os.close(master)
