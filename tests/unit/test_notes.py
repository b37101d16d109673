"""What a script reports on stderr while it runs: ``note`` records split from plain text."""

import io

import pytest

from deployer.remote.framing import Notes, Watch, elapsed
from deployer.remote.session import Result, Session

B = "@@deployer-0123456789abcdef"


def record(kind, *fields):
    """A record as the shell's ``note`` writes it (dash: lengths in bytes)."""
    header = " ".join([B, kind, str(len(fields)), *(str(len(f.encode())) for f in fields)])
    return b"".join(f"{part}\0".encode() for part in (header, *fields))


HOSTILE = ["it's", 'say "hi"', "$(rm -rf /)", "two\nlines", "", "tab\there", "ünï"]


def test_a_record_keeps_every_field_exactly_and_the_text_around_it():
    notes = Notes(B)

    records = notes.feed(b"docker: oops\n" + record("run", "docker", *HOSTILE) + b"deployer: failed\n")

    assert records == [("run", "docker", *HOSTILE)]
    assert notes.text == "docker: oops\ndeployer: failed\n"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 31])
def test_records_cut_into_chunks_anywhere_arrive_whole_and_in_order(size):
    data = b"a line\n" + record("run", "docker", "ps") + record("put", "/s/state.json", "12") + b"last\n"
    notes = Notes(B)

    records = [r for at in range(0, len(data), size) for r in notes.feed(data[at : at + size])]

    assert records == [("run", "docker", "ps"), ("put", "/s/state.json", "12")]
    assert notes.text == "a line\nlast\n"


def test_output_cutting_into_a_record_garbles_it_whole_and_is_not_shown_either():
    whole = record("run", "docker", "run", "-e", "PW=" + "secret" * 1000, "img")
    cut = whole.index(b"secret") + 300
    notes = Notes(B)

    records = notes.feed(whole[:cut] + b"docker: Error response from daemon\n" + whole[cut:] + b"after\n")

    assert records == [("garbled", "run")]
    assert notes.text == "after\n"


def test_lengths_in_characters_are_fine_too():
    """bash in a UTF-8 locale counts characters."""
    notes = Notes(B)

    assert notes.feed(f"{B} run 2 6 4\0docker\0ünï✓\0".encode()) == [("run", "docker", "ünï✓")]


def test_an_incomplete_record_is_not_reported():
    notes = Notes(B)

    assert notes.feed(record("run", "docker", "ps")[:-1]) == []


def test_the_boundary_without_a_record_header_stays_text():
    notes = Notes(B)

    assert notes.feed(f"{B} is not a header\0\n".encode()) == []
    assert notes.text == f"{B} is not a header\0\n"


def test_another_boundary_is_only_text():
    notes = Notes(B)

    assert notes.feed(record("run", "docker", "ps").replace(B.encode(), b"@@deployer-forged")) == []


def test_step_times_come_from_the_hosts_stamps():
    assert elapsed("100.25", "101.5") == 1.25
    assert elapsed("100.%N", "101.%N") is None


def session(stdout, stderr_chunks, text=None):
    """A Session over canned output (no process): what a watch hears, and the result."""
    heard = []
    chunks = iter([*stderr_chunks, b""])
    watch = Watch(B, lambda *event: heard.append(event), text)
    running = Session("h", lambda data: None, lambda: None, io.BytesIO(stdout), lambda n: next(chunks), lambda: 0, watch)
    return running, heard


def test_a_session_reports_marks_and_notes_and_keeps_the_rest_as_its_result():
    stdout = f"{B} roots\n/s\n{B} ok web 1.0 2.5\n".encode()
    stderr = [b"warn", b"ing: x\n" + record("run", "docker", "ps"), b"error: y"]
    shown = []

    running, heard = session(stdout, stderr, shown.append)
    result = running.finish()

    assert ("roots",) in heard and ("ok", "web", "1.0", "2.5") in heard and ("run", "docker", "ps") in heard
    assert heard[-1] == ("end", "0")
    assert shown == ["warning: x", "error: y"]  # line by line, as it comes: a build's output
    assert result == Result(0, f"{B} roots\n/s\n{B} ok web 1.0 2.5\n", "warning: x\nerror: y")


def test_a_short_line_is_text_at_once_and_only_a_possible_tag_start_waits():
    notes = Notes(B)

    notes.feed(b"compiling step one\n@@dep")

    assert notes.lines() == ["compiling step one"]  # not held back until more arrives
    notes.feed(b"loyer is not a tag\n")
    assert notes.lines() == ["@@deployer is not a tag"]
