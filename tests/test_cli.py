"""The `hil` command: a person can open the standalone virtual board with a terminal program."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import ROOT

from harness.config.bench import Bench, builtin_bench
from harness.config.power_support import power_driver_problem
from harness.config.profile import boards_dir
from harness.console.console import Console
from harness.power.lcus import LcusRelay

HIL = [sys.executable, "-m", "harness.cli"]
M6_PROFILE = (boards_dir() / "nanopi-m6.yaml").read_text()


def hil(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HIL, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


@dataclass
class Sim:
    child: subprocess.Popen[str]
    lines: list[str]

    def value(self, prefix: str) -> str:
        """The last word of the first announced line starting with `prefix` (a pty or a path)."""
        line = next(line for line in self.lines if line.startswith(prefix))
        return line.split(": ", 1)[1].split(" ")[0].strip()


def start_sim(*extra: str) -> Sim:
    """`hil sim` for the M6 with a stdin the test types into; returns once its announcement is read."""
    child = subprocess.Popen([*HIL, "sim", "--board", "nanopi-m6", "--time-scale", "0.05", *extra], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert child.stdout is not None
    last = "or type on" if {"--image", "--emmc-image"} & set(extra) else "eMMC image:"
    lines: list[str] = []
    while not lines or not lines[-1].startswith(last):
        line = child.stdout.readline()
        assert line, f"hil sim ended early: {lines}"
        lines.append(line.rstrip("\n"))
    return Sim(child, lines)


@pytest.fixture
def sims() -> Iterator[list[Sim]]:
    """Sims a test started; any still running at its end (a failed test) is stopped, never left behind."""
    started: list[Sim] = []
    yield started
    for sim in started:
        sim.child.terminate()  # SIGTERM is how a person stops it: it cleans up after itself
        try:
            sim.child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.child.kill()
            sim.child.wait(timeout=10)
        if sim.child.stdin is not None:
            sim.child.stdin.close()
        if sim.child.stdout is not None:
            sim.child.stdout.close()


@pytest.fixture
def standalone_sim(sims: list[Sim]) -> Sim:
    sims.append(start_sim())
    return sims[-1]


# -- hil sim: power ------------------------------------------------------------------------------
def test_hil_sim_starts_off_and_boots_when_its_relay_switches_on(standalone_sim: Sim, tmp_path: Path) -> None:
    console_pty = standalone_sim.value("virtual nanopi-m6 console")
    relay_pty = standalone_sim.value("relay (LCUS, channel 1)")
    assert console_pty.startswith("/dev/pts/") and relay_pty.startswith("/dev/pts/"), standalone_sim.lines
    assert standalone_sim.lines[2].startswith("open the console with: picocom -b 1500000 ")
    with Console(console_pty, 1500000, tmp_path) as console:
        time.sleep(0.3)
        assert console.bytes_received == 0, "the board is off by default: it must be silent"
        LcusRelay(relay_pty, 1).set(True)
        banner = console.expect(r"^U-Boot (?!SPL)(\S+) \(", 10)
        assert banner.group(1) == "2017.09-g5f5c0b5-dirty"
        console.expect(r"Hit key to stop autoboot", 10)
        console.sendcontrol("c")
        console.expect("=> ", 5)
        console.sendline("version")
        console.expect(r"aarch64-linux-gnu-gcc", 5)


def test_hil_sim_prints_the_exact_relay_frames(standalone_sim: Sim) -> None:
    """The frames a person can send by hand are the driver's own: A0 <channel> <op> <sum>."""
    text = "\n".join(standalone_sim.lines)
    assert "power is off" in text
    assert "A0 01 01 A2 (on)" in text and "A0 01 00 A1 (off)" in text
    assert f"printf '\\xA0\\x01\\x01\\xA2' > {standalone_sim.value('relay (LCUS, channel 1)')}" in text


def test_hil_sim_obeys_on_and_off_typed_on_stdin(standalone_sim: Sim, tmp_path: Path) -> None:
    child = standalone_sim.child
    assert child.stdin is not None
    with Console(standalone_sim.value("virtual nanopi-m6 console"), 1500000, tmp_path) as console:
        child.stdin.write("on\n")
        child.stdin.flush()
        console.expect(r"^U-Boot SPL ", 10)
        child.stdin.write("off\n")
        child.stdin.flush()
        assert child.stdout is not None and child.stdout.readline().strip() == "power on"
        assert child.stdout.readline().strip() == "power off"
        time.sleep(0.3)
        received = console.bytes_received
        time.sleep(0.5)
        assert console.bytes_received == received, "switched off: the board must have gone silent"


def test_hil_sim_on_powers_on_at_start(sims: list[Sim], tmp_path: Path) -> None:
    sims.append(sim := start_sim("--on"))
    assert "power is on" in "\n".join(sim.lines)
    with Console(sim.value("virtual nanopi-m6 console"), 1500000, tmp_path) as console:
        console.expect(r"Hit key to stop autoboot", 10)


@pytest.mark.parametrize("how", ["sigterm", "sigint", "quit"])
def test_hil_sim_removes_its_scratch_image_when_it_exits(sims: list[Sim], how: str) -> None:
    sims.append(sim := start_sim())
    scratch = Path(sim.value("eMMC image")).parent
    assert scratch.is_dir()
    if how == "quit":
        assert sim.child.stdin is not None
        sim.child.stdin.write("quit\n")
        sim.child.stdin.flush()
    else:
        sim.child.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
    assert sim.child.wait(timeout=10) == 0
    assert not scratch.exists(), f"{scratch} left behind after {how}"


@pytest.mark.parametrize(("args", "message"), [
    (["--time-scale", "0"], "--time-scale must be a number above 0"),
    (["--time-scale", "-1"], "--time-scale must be a number above 0"),
    (["--time-scale", "nan"], "--time-scale must be a number above 0"),
    (["--ram-mb", "0"], "--ram-mb must be a positive number of megabytes"),
    (["--image", "no-such.img"], "--image no-such.img: no such file"),
    (["--emmc-image", "harness"], "--emmc-image harness: not a regular file"),
])
def test_hil_sim_refuses_bad_options(args: list[str], message: str) -> None:
    done = hil("sim", "--board", "nanopi-m6", *args)
    assert done.returncode == 2 and done.stderr.startswith(f"hil: {message}"), done.stderr


def test_hil_sim_refuses_an_empty_image(tmp_path: Path) -> None:
    empty = tmp_path / "empty.img"
    empty.touch()
    done = hil("sim", "--board", "nanopi-m6", "--image", str(empty))
    assert done.returncode == 2 and f"--image {empty}: the file is empty" in done.stderr


def test_hil_sim_refuses_a_board_without_a_transcript() -> None:
    done = hil("sim", "--board", "qemu-arm64")
    assert done.returncode == 2 and "cannot play 'qemu-arm64'" in done.stderr
    assert "nanopi-m6, rpi5-cm5" in done.stderr


# -- hil sim: faults -----------------------------------------------------------------------------
def test_hil_sim_lists_faults_with_their_boards_and_rejects_unknown_ones() -> None:
    listed = hil("sim", "--list-faults")
    assert listed.returncode == 0
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert lines["ddr-fail"].endswith("[boards: nanopi-m6]"), "the Pi prints no DDR blob output"
    assert lines["hang:ddr"].endswith("[boards: nanopi-m6]"), "the Pi's transcript has no ddr stage"
    assert lines["kernel-console-other-uart"].endswith("[boards: rpi5-cm5]")
    assert lines["uart-reenumerate"].endswith("[boards: nanopi-m6, rpi5-cm5]")
    bad = hil("sim", "--board", "nanopi-m6", "--fault", "bogus")
    assert bad.returncode == 2 and "unknown virtual board fault 'bogus'" in bad.stderr and "ddr-fail" in bad.stderr


def test_hil_sim_refuses_a_fault_the_board_cannot_have() -> None:
    done = hil("sim", "--board", "nanopi-m6", "--fault", "kernel-console-other-uart")
    assert done.returncode == 2
    assert ("virtual board fault 'kernel-console-other-uart' does not apply to nanopi-m6: its transcript defines "
            "no such fault; faults for nanopi-m6: ddr-fail") in done.stderr


# -- hil check -----------------------------------------------------------------------------------
def test_hil_check_validates_profiles_and_benches(tmp_path: Path) -> None:
    good = hil("check", "harness/boards/nanopi-m6.yaml", "harness/boards/rpi5-cm5.yaml")
    assert good.returncode == 0 and good.stdout.count(": ok (board profile)") == 2
    bench = hil("check", "benches/desk-nanopi-m6.yaml")
    assert bench.returncode == 0 and ": ok (bench file)" in bench.stdout, bench.stderr
    broken = tmp_path / "board.yaml"
    broken.write_text(M6_PROFILE.replace("name: nanopi-m6", "name: Bad Name"))
    bad = hil("check", str(broken))
    assert bad.returncode == 2 and f"{broken}:" in bad.stderr and "key 'name'" in bad.stderr


def test_hil_check_tells_a_bench_from_a_profile_by_its_keys_not_its_directory(tmp_path: Path) -> None:
    """A bench kept in a directory not called benches/, and a profile kept in one that is."""
    (tmp_path / "benches").mkdir()
    profile = tmp_path / "benches" / "m6.yaml"
    profile.write_text(M6_PROFILE)
    bench = tmp_path / "desk.yaml"
    bench.write_text("name: desk\nserial: {url: /dev/ttyUSB0}\npower: {kind: lcus, port: /dev/ttyUSB1, channel: 2}\n")
    done = hil("check", str(profile), str(bench))
    assert done.returncode == 0, done.stderr
    assert f"{profile}: ok (board profile)" in done.stdout and f"{bench}: ok (bench file)" in done.stdout


def test_hil_check_says_when_a_file_is_neither(tmp_path: Path) -> None:
    path = tmp_path / "mystery.yaml"
    path.write_text("name: Bad Name\n")
    done = hil("check", str(path))
    assert done.returncode == 2 and "looks like neither a board profile nor a bench file" in done.stderr
    forced = hil("check", "--bench", str(path))
    assert forced.returncode == 2 and "needs a 'serial' section" in forced.stderr, "--bench still forces the kind"


def test_hil_check_reports_every_file_not_just_the_first_bad_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    done = hil("check", str(empty), "harness/boards/nanopi-m6.yaml")
    assert done.returncode == 2
    assert f"hil: {empty}: the file is empty" in done.stderr and "harness/boards/nanopi-m6.yaml: ok" in done.stdout


@pytest.mark.parametrize(("power", "message"), [
    ("", ": bench 'desk' has no power section: the harness cannot switch the board; "
         "add one, e.g. power: {kind: "),
    ("power: {kind: carrier-pigeon, port: loft}\n",
     ":4: key 'power.kind': power kind 'carrier-pigeon' has no driver in this version; registered kinds: "),
    ("power: {kind: lcus}\n", ":4: key 'power': give exactly one of 'port' (a device path) or 'udev'"),
    ("power: {kind: lcus, port: /dev/ttyUSB1, channel: 0}\n",
     ":4: key 'power.channel': channel 0 does not exist on an LCUS module"),
])
def test_hil_check_refuses_a_hardware_bench_it_cannot_switch(tmp_path: Path, power: str, message: str) -> None:
    """The schema offers only registered power kinds, each with its own keys; no section at all is refused too."""
    path = tmp_path / "desk.yaml"
    path.write_text(f"name: desk\nkind: hardware\nserial: {{url: /dev/ttyUSB0}}\n{power}")
    done = hil("check", str(path))
    assert done.returncode == 2 and f"{path}{message}" in done.stderr, done.stderr


def test_power_driver_problem_judges_only_hardware_benches() -> None:
    assert power_driver_problem(builtin_bench("sim")) is None
    assert power_driver_problem(builtin_bench("qemu")) is None
    lcus = Bench(name="desk", serial={"url": "/dev/ttyUSB0"}, power={"kind": "lcus", "port": "/dev/ttyUSB1"})
    assert power_driver_problem(lcus) is None


def test_hil_check_refuses_a_sim_bench_fault_its_board_cannot_have(tmp_path: Path) -> None:
    path = tmp_path / "pi.yaml"
    path.write_text("name: pi\nkind: sim\nboard: rpi5-cm5\nsim: {faults: [ddr-fail]}\n")
    done = hil("check", str(path))
    assert done.returncode == 2 and "fault 'ddr-fail' does not apply to rpi5-cm5" in done.stderr


# -- hil boards ----------------------------------------------------------------------------------
def test_hil_boards_lists_the_profiles() -> None:
    done = hil("boards")
    assert done.returncode == 0
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["nanopi-m6", "qemu-arm64", "rpi5-cm5"]


def test_hil_boards_flags_a_broken_profile_and_still_lists_the_good_ones(tmp_path: Path) -> None:
    boards = tmp_path / "boards"
    boards.mkdir()
    shutil.copy(boards_dir() / "nanopi-m6.yaml", boards / "nanopi-m6.yaml")
    (boards / "broken-board.yaml").write_text(M6_PROFILE.replace("mhz: 2400", "mhz: fast"))
    (boards / "empty-board.yaml").write_text("")
    done = hil("boards", cwd=tmp_path)
    assert done.returncode == 2
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    # The project's boards/ extends the shipped profiles and overrides the one of the same name.
    assert set(lines) == {"broken-board", "empty-board", "nanopi-m6", "qemu-arm64", "rpi5-cm5"}
    assert "BROKEN" not in lines["nanopi-m6"] and lines["nanopi-m6"].endswith(f"[{boards / 'nanopi-m6.yaml'}]")
    assert lines["rpi5-cm5"].endswith(f"[{boards_dir() / 'rpi5-cm5.yaml'}]")
    assert lines["broken-board"].split(None, 1)[1].startswith("BROKEN: invalid board profile")
    assert "key 'ddr.mhz'" in lines["broken-board"]
    assert "BROKEN: " in lines["empty-board"] and "the file is empty" in lines["empty-board"]
    assert "broken-board, empty-board" in done.stderr

