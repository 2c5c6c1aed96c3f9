"""Power backends by registry: the bench schema offers exactly the registered kinds, and the rig builds them.

The fake backend below is installed the way a user's package would install one: a module and a
dist-info with one line in the `talos_harness.power` entry-point group, put on sys.path. Nothing
in the harness is edited or patched for it to appear in the schema and be built by the rig.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from harness.config import power_support
from harness.config.bench import Bench, builtin_bench, load_bench
from harness.config.power_support import ENTRY_POINT_GROUP, power_driver_problem, registered_power_kinds
from harness.errors import BenchError, ConfigError
from harness.power.base import PowerContext
from harness.power.lcus import LcusRelay, LcusSection
from harness.power.qmp import QmpPower, QmpSection
from harness.power.registry import build_power, power_backends
from harness.rig import _hardware_power

FAKE_MODULE = "fake_power_plug"
FAKE_BACKEND = textwrap.dedent('''
    """A network plug, as a user's own package would add one: a section, a switch, a factory."""

    from typing import ClassVar, Literal

    from harness.power.base import PowerBackend, PowerContext, PowerSection


    class PlugSection(PowerSection):
        kind: Literal["fake-plug"]
        host: str

        example: ClassVar[str | None] = "{kind: fake-plug, host: ...}"


    class PlugSwitch:
        def __init__(self, host: str, bench: str) -> None:
            self.host, self.bench = host, bench
            self.description = f"fake plug {host}"
            self.commands: list[bool] = []

        def set(self, on: bool) -> None:
            self.commands.append(on)

        def get(self) -> bool | None:
            return self.commands[-1] if self.commands else None


    def build(section: PlugSection, context: PowerContext) -> PlugSwitch:
        return PlugSwitch(section.host, context.bench)


    BACKEND = PowerBackend(section=PlugSection, build=build)
''')


def _install(site: Path, dist: str, entry_points: str, modules: dict[str, str]) -> None:
    """A package as pip would leave it: modules plus a dist-info naming its entry points."""
    for name, text in modules.items():
        (site / f"{name}.py").write_text(text)
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}\n")


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    """The registry is loaded once per process; each test here starts and ends with it unloaded."""
    registered_power_kinds.cache_clear()
    yield
    registered_power_kinds.cache_clear()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None) -> Iterator[Path]:
    """A directory on sys.path for installed-looking packages; their modules are forgotten afterwards."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = set(sys.modules)
    yield site
    for name in set(sys.modules) - before:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(site)):
            del sys.modules[name]


@pytest.fixture
def fake_plug(site: Path) -> Path:
    _install(site, "fake-power-plug", f"fake-plug = {FAKE_MODULE}:BACKEND", {FAKE_MODULE: FAKE_BACKEND})
    return site


def _bench_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "desk.yaml"
    path.write_text(text)
    return path


def _line(path: Path, fragment: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if fragment in text)


# -- the built-in kinds --------------------------------------------------------------------------
def test_the_registry_lists_lcus_and_qmp_from_our_entry_points(fresh_registry: None) -> None:
    kinds = registered_power_kinds()
    assert {"lcus", "qmp"} <= set(kinds)
    assert kinds["lcus"].section is LcusSection and kinds["qmp"].section is QmpSection
    assert "(talos-sbc-harness)" in kinds["lcus"].origin
    assert power_backends()["lcus"].kind == "lcus"


def test_the_bench_schema_offers_exactly_the_registered_kinds(fresh_registry: None) -> None:
    for field in ("power", "maskrom"):
        [union, null] = Bench.model_json_schema()["properties"][field]["anyOf"]
        assert set(union["discriminator"]["mapping"]) == set(registered_power_kinds())
        assert null == {"type": "null"}


def test_an_unknown_kind_names_the_file_the_kind_line_and_the_registered_kinds(tmp_path: Path) -> None:
    path = _bench_file(tmp_path, "name: desk\nserial: {url: /dev/ttyUSB0}\npower:\n  port: /dev/ttyACM0\n"
                                 "  kind: carrier-pigeon\n")
    with pytest.raises(ConfigError) as err:
        load_bench(str(path), tmp_path)
    assert (f"{path}:{_line(path, 'kind: carrier-pigeon')}: key 'power.kind': power kind 'carrier-pigeon' has no "
            "driver in this version; registered kinds: ") in str(err.value)
    assert "lcus" in str(err.value) and "qmp (qemu benches only)" in str(err.value)


def test_maskrom_takes_the_same_kinds(tmp_path: Path) -> None:
    path = _bench_file(tmp_path, "name: desk\nserial: {url: /dev/ttyUSB0}\npower: {kind: lcus, port: /dev/ttyUSB1}\n"
                                 "maskrom:\n  kind: gpio\n")
    with pytest.raises(ConfigError, match=rf"{path}:5: key 'maskrom.kind': maskrom kind 'gpio' has no driver"):
        load_bench(str(path), tmp_path)
    path.write_text(path.read_text().replace("kind: gpio", "kind: lcus\n  port: /dev/ttyUSB1\n  channel: 2"))
    bench = load_bench(str(path), tmp_path)
    assert isinstance(bench.maskrom, LcusSection) and bench.maskrom.channel == 2


def test_a_section_without_a_kind_says_so_on_its_line_and_lists_the_kinds(tmp_path: Path) -> None:
    path = _bench_file(tmp_path, "name: desk\nserial: {url: /dev/ttyUSB0}\npower:\n  port: /dev/ttyUSB1\n")
    with pytest.raises(ConfigError) as err:
        load_bench(str(path), tmp_path)
    assert f"{path}:3: key 'power.kind': required key is missing" in str(err.value)
    assert "registered kinds: " in str(err.value) and " lcus," in str(err.value)


def test_a_section_that_is_not_a_mapping_is_refused_with_the_kinds(tmp_path: Path) -> None:
    path = _bench_file(tmp_path, "name: desk\nserial: {url: /dev/ttyUSB0}\npower: lcus\n")
    with pytest.raises(ConfigError, match=rf"{path}:3: key 'power': must be a mapping .* registered kinds: .*lcus"):
        load_bench(str(path), tmp_path)


def test_errors_inside_a_section_name_its_keys_not_the_union_tag(tmp_path: Path) -> None:
    path = _bench_file(tmp_path, "name: desk\nserial: {url: /dev/ttyUSB0}\npower:\n  kind: lcus\n  chanel: 2\n")
    with pytest.raises(ConfigError) as err:
        load_bench(str(path), tmp_path)
    message = str(err.value)
    assert f"{path}:5: key 'power.chanel': unknown key" in message
    assert "power.lcus" not in message


@pytest.mark.parametrize(("text", "where", "message"), [
    ("name: desk\nserial: {url: /dev/ttyUSB0}\npower:\n  kind: qmp\n", "power.kind",
     "power kind 'qmp' switches qemu benches only, not a hardware bench"),
    ("name: vm\nkind: qemu\npower:\n  kind: lcus\n  port: /dev/ttyUSB1\n", "power.kind",
     "power kind 'lcus' switches hardware benches only, not a qemu bench"),
])
def test_a_kind_that_cannot_serve_this_kind_of_bench_is_refused(tmp_path: Path, text: str, where: str,
                                                                 message: str) -> None:
    path = _bench_file(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"{path}:4: key '{where}': {message}"):
        load_bench(str(path), tmp_path)


def test_the_rig_builds_an_lcus_relay_from_the_section() -> None:
    bench = Bench(name="desk", serial={"url": "/dev/ttyUSB0"},
                  power={"kind": "lcus", "port": "/dev/ttyUSB1", "channel": 3, "invert": True})
    relay = _hardware_power(bench)
    assert isinstance(relay, LcusRelay)
    assert (relay.url, relay.channel, relay.invert) == ("/dev/ttyUSB1", 3, True)


def test_a_hardware_bench_without_power_is_refused_before_power_on() -> None:
    bench = Bench(name="desk", serial={"url": "/dev/ttyUSB0"})
    expected = power_driver_problem(bench)
    assert expected is not None and expected.startswith(
        "bench 'desk' has no power section: the harness cannot switch the board; add one, e.g. power: {kind: ")
    assert "lcus" in expected
    with pytest.raises(ConfigError) as err:
        _hardware_power(bench)
    assert str(err.value) == expected
    assert power_driver_problem(builtin_bench("qemu")) is None


# -- the QEMU machine's switch -------------------------------------------------------------------
class _Machine:
    """The QEMU machine as the QMP switch sees it: a QMP client that records commands."""

    qmp_path = Path("/run/qmp.sock")

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.running = False
        self.qmp: Any = self

    def execute(self, command: str, **arguments: Any) -> Any:
        self.commands.append(command)
        self.running = {"cont": True, "stop": False}.get(command, self.running)
        return {"running": self.running} if command == "query-status" else {}


def test_qmp_is_built_from_the_context_machine_and_resets_on_each_later_power_on() -> None:
    machine = _Machine()
    switch = build_power(QmpSection(), PowerContext(bench="qemu", qemu=machine))
    assert isinstance(switch, QmpPower) and switch.machine is machine
    switch.set(True)
    assert switch.get() is True
    switch.set(False)
    assert switch.get() is False
    switch.set(True)
    assert machine.commands == ["cont", "query-status", "stop", "query-status", "system_reset", "cont"]
    machine.qmp = None
    with pytest.raises(BenchError, match="QEMU is not running"):
        switch.set(False)


def test_qmp_without_a_machine_is_refused_naming_the_bench() -> None:
    with pytest.raises(ConfigError, match="bench 'desk': power kind 'qmp' switches the QEMU board"):
        build_power(QmpSection(), PowerContext(bench="desk"))


# -- a backend from another package --------------------------------------------------------------
def test_a_backend_installed_by_another_package_is_in_the_schema_and_built_by_the_rig(
        fake_plug: Path, tmp_path: Path) -> None:
    assert "fake-plug" in registered_power_kinds()
    assert "(fake-power-plug)" in registered_power_kinds()["fake-plug"].origin
    [union, _] = Bench.model_json_schema()["properties"]["power"]["anyOf"]
    assert "fake-plug" in union["discriminator"]["mapping"]

    path = _bench_file(tmp_path, "name: desk\nserial: {url: /dev/ttyUSB0}\npower:\n  kind: fake-plug\n"
                                 "  host: plug.lab\n  off_time_s: 5\n")
    bench = load_bench(str(path), tmp_path)
    assert type(bench.power).__name__ == "PlugSection" and bench.power.off_time_s == 5
    switch = _hardware_power(bench)
    assert (type(switch).__name__, switch.description, switch.bench) == ("PlugSwitch", "fake plug plug.lab", "desk")
    switch.set(True)
    assert switch.get() is True

    # Its own keys are its own schema: a typo is an unknown key on its line, like any other.
    path.write_text(path.read_text().replace("host:", "hots:"))
    with pytest.raises(ConfigError) as err:
        load_bench(str(path), tmp_path)
    assert f"{path}:5: key 'power.hots': unknown key" in str(err.value)
    assert f"{path}:3: key 'power.host': required key is missing" in str(err.value)


def test_a_bench_without_power_is_offered_an_example_and_every_hardware_kind(fake_plug: Path) -> None:
    problem = power_driver_problem(Bench(name="desk", serial={"url": "/dev/ttyUSB0"}))
    assert problem is not None and "add one, e.g. power: {kind: lcus, port: ..., channel: N} (kinds: " in problem
    kinds = problem.rsplit("(kinds: ", 1)[1].rstrip(")").split(", ")
    assert "fake-plug" in kinds and "lcus" in kinds and "qmp" not in kinds, "qmp serves only the QEMU bench"


def test_the_kinds_are_read_once_per_process(fake_plug: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registered_power_kinds()
    monkeypatch.setattr(power_support, "_entry_points", lambda: pytest.fail("entry points read again"))
    assert "fake-plug" in registered_power_kinds()


def _entry(name: str, value: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


@pytest.mark.parametrize(("entries", "message"), [
    ([_entry("plug", f"{FAKE_MODULE}:BACKEND")],
     f"'plug = {FAKE_MODULE}:BACKEND' (unknown distribution): its section's kind is 'fake-plug'; "
     f"the entry point must be named after it (fake-plug = {FAKE_MODULE}:BACKEND)"),
    ([_entry("fake-plug", f"{FAKE_MODULE}:PlugSwitch")], "the entry point must name a PowerBackend"),
    ([_entry("broken", "no_such_power_module:BACKEND")],
     "'broken = no_such_power_module:BACKEND' (unknown distribution) in entry-point group talos_harness.power "
     "failed to load: ModuleNotFoundError"),
    ([_entry("fake-plug", f"{FAKE_MODULE}:BACKEND"), _entry("fake-plug", f"{FAKE_MODULE}:BACKEND")],
     "power kind 'fake-plug' is registered twice"),
])
def test_a_broken_registration_is_a_config_error_naming_the_entry_point(
        fake_plug: Path, monkeypatch: pytest.MonkeyPatch, entries: list[metadata.EntryPoint], message: str) -> None:
    monkeypatch.setattr(power_support, "_entry_points", lambda: entries)
    with pytest.raises(ConfigError) as err:
        registered_power_kinds()
    assert message in str(err.value)


def test_a_section_without_a_single_literal_kind_is_refused(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(site, "loose-kind", "loose = loose_kind:BACKEND", {"loose_kind": textwrap.dedent('''
        from harness.power.base import PowerBackend, PowerSection

        class LooseSection(PowerSection):
            pass  # kind stays `str`: any kind would match it

        BACKEND = PowerBackend(section=LooseSection, build=lambda section, context: None)
    ''')})
    with pytest.raises(ConfigError, match=r"power section LooseSection must declare kind: Literal\['<its kind>'\]"):
        registered_power_kinds()


def test_the_power_layer_refuses_a_lookalike_that_is_not_a_power_backend(site: Path) -> None:
    _install(site, "lookalike", "look = lookalike:BACKEND", {"lookalike": textwrap.dedent('''
        from types import SimpleNamespace
        from typing import Literal

        from harness.power.base import PowerSection

        class LookSection(PowerSection):
            kind: Literal["look"]

        BACKEND = SimpleNamespace(section=LookSection, build=lambda section, context: None)
    ''')})
    assert "look" in registered_power_kinds()  # config reads only the section
    with pytest.raises(ConfigError, match=r"'look = lookalike:BACKEND' \(lookalike\) is a SimpleNamespace, not a "):
        power_backends()
