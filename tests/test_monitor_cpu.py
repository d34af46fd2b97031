"""monitor_cpu.sh against a real `streamlit run ERT.py` and real busy processes."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser import streamlit_server

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "monitor_cpu.sh"
BUSY = "while True: pass"

LINE = re.compile(
    r"^\[(?P<time>\d{2}:\d{2}:\d{2})\] (?P<icon>✅ |⚠️  |🔥 )CPU: +(?P<cpu>\d+\.\d)% "
    r"\((?P<status>OPTIMAL|MODÉRÉ|ÉLEVÉ)\) +\| RAM: +(?P<ram>\d+\.\d)% \((?P<mb>\d+) MB\)"
    r"(?P<gpu>( \| GPU\d*: \S+% \(\S+/\S+ MB\))*)$"
)
ICON = {"OPTIMAL": "✅ ", "MODÉRÉ": "⚠️  ", "ÉLEVÉ": "🔥 "}
PAD = {"OPTIMAL": " ", "MODÉRÉ": " ", "ÉLEVÉ": "  "}  # as in the CPU notes


def monitor(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def parse(out: str, count: int, moderate: float = 40, high: float = 70,
          ram: bool = False) -> list[dict]:
    lines = out.splitlines()
    assert lines and lines[0].startswith("Monitoring PID "), out
    assert "child processes" in lines[0] and "VmRSS" in lines[0]  # says what is measured
    data = lines[1:]
    assert len(data) == count, out
    rows = []
    for line in data:
        m = LINE.match(line)
        assert m, f"bad line: {line!r}"
        row = m.groupdict()
        cpu = float(row["cpu"])
        expected = "OPTIMAL" if cpu < moderate else "MODÉRÉ" if cpu < high else "ÉLEVÉ"
        assert row["status"] == expected, line
        assert row["icon"] == ICON[expected], line
        assert f"({expected}){PAD[expected]}|" in line, line
        time.strptime(row["time"], "%H:%M:%S")
        if ram:  # a small process rounds to 0.0 % of the machine's memory
            assert float(row["ram"]) > 0 and int(row["mb"]) > 0, line
        rows.append(row)
    return rows


def header_pid(out: str) -> int:
    m = re.match(r"Monitoring PID (\d+) ", out)
    assert m, out
    return int(m.group(1))


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.fixture
def busy():
    """A `sh` whose only work is a busy Python child: (sh pid, python pid)."""
    proc = subprocess.Popen(["sh", "-c", f'"{sys.executable}" -c "{BUSY}" & wait'])
    try:
        deadline = time.monotonic() + 10
        kids: list[str] = []
        while not kids and time.monotonic() < deadline:
            time.sleep(0.05)
            kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert kids, "the busy child did not start"
        yield proc.pid, int(kids[0])
    finally:
        subprocess.run(["pkill", "-P", str(proc.pid)], check=False)
        proc.kill()
        proc.wait()


def test_against_real_streamlit_app():
    with streamlit_server() as url:
        port = url.rsplit(":", 1)[1]
        # Auto-detection with the default pattern; another ERT may be running
        # on this machine (other tests, `make run`): any of them is right.
        res = monitor("--interval", "0.5", "--count", "3")
        assert res.returncode == 0, res.stderr
        parse(res.stdout, 3, ram=True)
        pid = header_pid(res.stdout)
        assert re.search(r"streamlit run \S*ERT\.py", cmdline(pid)), cmdline(pid)

        # Auto-detection narrowed to this server finds exactly it.
        res = monitor("-i", "0.5", "-n", "2",
                      "--match", rf"streamlit run .*ERT\.py .*--server\.port {port}( |$)")
        assert res.returncode == 0, res.stderr
        parse(res.stdout, 2, ram=True)
        ours = header_pid(res.stdout)
        assert f"--server.port {port}" in cmdline(ours)
        assert "[auto-detected]" in res.stdout.splitlines()[0]

        # The same process given explicitly.
        res = monitor("--pid", str(ours), "--interval", "0.5", "--count", "3")
        assert res.returncode == 0, res.stderr
        parse(res.stdout, 3, ram=True)
        assert header_pid(res.stdout) == ours


def test_dead_pid_is_a_clear_error():
    proc = subprocess.Popen(["true"])
    proc.wait()
    res = monitor("--pid", str(proc.pid), "-i", "0.2", "-n", "1")
    assert res.returncode == 1
    assert "is not running" in res.stderr and "make run" in res.stderr
    assert "Traceback" not in res.stderr and "line " not in res.stderr
    assert res.stdout == ""


def test_no_app_running_is_a_clear_error():
    res = monitor("--match", "no-such-process-zq9xk", "-i", "0.2", "-n", "1")
    assert res.returncode == 1
    assert res.stderr.startswith("ERT (streamlit run ERT.py) is not running — start it with "
                                 "`make run`, or pass --pid PID"), res.stderr
    assert res.stdout == ""


def test_process_ending_while_monitored():
    proc = subprocess.Popen(["sleep", "1"])
    try:
        res = monitor("--pid", str(proc.pid), "--interval", "0.3")
    finally:
        proc.wait()
    assert res.returncode == 1
    assert f"the process {proc.pid} has ended" in res.stderr
    assert len(res.stdout.splitlines()) >= 2  # the header and at least one line


def test_busy_children_count_and_high_threshold(busy):
    sh_pid, py_pid = busy
    # The busy process itself, with a lower ÉLEVÉ threshold.
    res = monitor("--pid", str(py_pid), "-i", "0.5", "-n", "3", "--moderate", "20",
                  "--high", "50")
    assert res.returncode == 0, res.stderr
    rows = parse(res.stdout, 3, moderate=20, high=50)
    assert any(r["status"] == "ÉLEVÉ" for r in rows), res.stdout

    # Its idle parent: the child's time is counted with it, and not without it.
    res = monitor("--pid", str(sh_pid), "-i", "0.5", "-n", "2", "--high", "50")
    assert res.returncode == 0, res.stderr
    assert any(float(r["cpu"]) >= 50 for r in parse(res.stdout, 2, high=50)), res.stdout
    res = monitor("--pid", str(sh_pid), "-i", "0.5", "-n", "2", "--no-children")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "alone" in lines[0]
    for line in lines[1:]:
        m = LINE.match(line)
        assert m and float(m["cpu"]) < 5, line


def test_help_and_usage_errors():
    res = monitor("--help")
    assert res.returncode == 0 and "--interval" in res.stdout and "--pid" in res.stdout
    for bad in (["--interval", "0"], ["--count", "x"], ["--pid", "abc"], ["--bogus"],
                ["--moderate", "80", "--high", "70"], ["--interval"]):
        res = monitor(*bad)
        assert res.returncode == 2, (bad, res.stderr)
        assert "monitor_cpu.sh:" in res.stderr
