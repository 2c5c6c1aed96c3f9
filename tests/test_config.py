"""Board profiles and bench files: valid ones load, and every kind of mistake is named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.bench import load_bench
from harness.config.profile import boards_dir, known_boards, load_profile
from harness.errors import ConfigError
from harness.power.lcus import LcusSection

BOARDS = boards_dir()
M6 = (BOARDS / "nanopi-m6.yaml").read_text()


@pytest.mark.parametrize("name", known_boards(BOARDS))
def test_every_shipped_profile_is_valid(name: str) -> None:
    profile = load_profile(name, BOARDS)
    assert profile.name == name
    assert profile.uboot.autoboot, "a profile must say how its autoboot looks"


def test_nanopi_m6_holds_the_domain_facts() -> None:
    m6 = load_profile("nanopi-m6", BOARDS)
    assert m6.console.firmware.baud == 1500000
    assert m6.console.kernel_arg == "console=ttyS2,1500000n8"
    assert m6.ddr is not None and (m6.ddr.type, m6.ddr.mhz) == ("LPDDR5", 2400)
    assert m6.mmc("sd").controller == "mmc@fe2c0000" and m6.mmc("sd").index == 1
    assert m6.mmc("emmc").controller == "mmc@fe2e0000" and m6.mmc("emmc").index == 0
    assert m6.kernel.model == "FriendlyElec NanoPi M6"
    assert {a.name for a in m6.uboot.autoboot} == {"mainline", "rockchip-vendor", "radxa-vendor"}


def test_rpi5_has_no_ddr_blob_and_its_own_prompt() -> None:
    pi = load_profile("rpi5-cm5", BOARDS)
    assert pi.ddr is None
    assert pi.uboot.prompt == "U-Boot> "
    assert pi.console.firmware.baud == 115200


def test_unknown_board_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        load_profile("nanopi-m7", BOARDS)
    message = str(err.value)
    assert "unknown board 'nanopi-m7'" in message
    assert "nanopi-m6" in message and "rpi5-cm5" in message


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "board.yaml"
    path.write_text(text)
    return path


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, M6.replace("soc: rk3588s", "soc: [rk3588s"))
    with pytest.raises(ConfigError) as err:
        load_profile(str(path), BOARDS)
    message = str(err.value)
    assert str(path) in message and "not valid YAML" in message
    assert f"{path}:" in message


def test_wrong_type_names_line_key_and_expectation(tmp_path: Path) -> None:
    path = _write(tmp_path, M6.replace("mhz: 2400", "mhz: fast"))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "mhz: fast" in text)
    with pytest.raises(ConfigError) as err:
        load_profile(str(path), BOARDS)
    message = str(err.value)
    assert f"{path}:{line}: key 'ddr.mhz'" in message
    assert "integer" in message


def test_unknown_key_is_rejected_not_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path, M6.replace("  mhz: 2400", "  mhz: 2400\n  mhzz: 2736"))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "mhzz" in text)
    with pytest.raises(ConfigError) as err:
        load_profile(str(path), BOARDS)
    assert f"{path}:{line}: key 'ddr.mhzz': unknown key" in str(err.value)


def test_missing_key_and_bad_regex_are_reported_together(tmp_path: Path) -> None:
    text = M6.replace("soc: rk3588s\n", "").replace("'Kernel panic - not syncing'", "'Kernel panic ('")
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_profile(str(path), BOARDS)
    message = str(err.value)
    assert "key 'soc': required key is missing" in message
    assert "key 'bad_patterns.0.pattern'" in message and "regular expression" in message


def test_a_profile_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_profile(str(path), BOARDS)


def test_builtin_sim_bench_needs_no_file(tmp_path: Path) -> None:
    bench = load_bench("sim", tmp_path)
    assert bench.is_virtual and bench.sim is not None and bench.ram_mb == 8192


def test_unknown_bench_lists_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "desk-m6.yaml").write_text("name: desk-m6\nserial: {url: /dev/ttyUSB0}\n")
    with pytest.raises(ConfigError) as err:
        load_bench("lab", tmp_path)
    assert "unknown bench 'lab'" in str(err.value) and "sim, qemu, desk-m6" in str(err.value)


def test_hardware_bench_must_say_where_its_console_is(tmp_path: Path) -> None:
    path = tmp_path / "desk.yaml"
    path.write_text("name: desk\nkind: hardware\nram_mb: 8192\n")
    with pytest.raises(ConfigError, match="needs a 'serial' section"):
        load_bench(str(path), tmp_path)


def test_bench_serial_takes_url_or_udev_not_both(tmp_path: Path) -> None:
    path = tmp_path / "desk.yaml"
    path.write_text("name: desk\nserial:\n  url: /dev/ttyUSB0\n  udev: {ID_PATH: x}\n")
    with pytest.raises(ConfigError) as err:
        load_bench(str(path), tmp_path)
    assert f"{path}:2: key 'serial': give exactly one" in str(err.value) and "exactly one of 'url'" in str(err.value)


def test_example_benches_are_valid() -> None:
    directory = Path(__file__).resolve().parents[1] / "benches"
    for path in sorted(directory.glob("*.yaml")):
        assert load_bench(str(path), directory).name == path.stem


def test_secrets_come_from_the_environment_never_the_file(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "desk.yaml"
    path.write_text("name: desk\nserial: {url: /dev/ttyUSB0}\nsecrets: {omni_join_token: HIL_TEST_TOKEN}\n")
    bench = load_bench(str(path), tmp_path)
    monkeypatch.delenv("HIL_TEST_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="export HIL_TEST_TOKEN"):
        bench.secret("omni_join_token")
    monkeypatch.setenv("HIL_TEST_TOKEN", "s3cret")
    assert bench.secret("omni_join_token") == "s3cret"


@pytest.mark.parametrize("text", ["", "   \n\n", "# a profile comes here\n\n# later\n"],
                         ids=["empty", "whitespace", "comments-only"])
def test_an_empty_profile_says_it_is_empty_and_what_belongs_in_it(tmp_path: Path, text: str) -> None:
    """Not "must be a mapping, got NoneType": nothing was written, and the message must say so."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_profile(str(path), BOARDS)
    message = str(err.value)
    assert message.startswith(f"{path}: the file is empty; a board profile is a YAML mapping with the keys name, ")
    assert "soc" in message and "uboot" in message and "NoneType" not in message


def test_an_empty_bench_file_says_it_is_empty_and_what_belongs_in_it(tmp_path: Path) -> None:
    path = tmp_path / "desk.yaml"
    path.write_text("# TODO\n")
    with pytest.raises(ConfigError) as err:
        load_bench(str(path), tmp_path)
    message = str(err.value)
    assert message.startswith(f"{path}: the file is empty; a bench file is a YAML mapping with the keys name ")
    assert "serial" in message and "power" in message


@pytest.mark.parametrize(("text", "line", "message"), [
    ("sdmux: {kind: usbsdmux, control: /dev/sg0}\n", 4, "key 'sdmux': unknown key"),
    ("power: {kind: carrier-pigeon, port: loft}\n", 4, "key 'power.kind': power kind 'carrier-pigeon' has no driver"),
])
def test_bench_keys_without_a_driver_are_not_in_the_schema(tmp_path: Path, text: str, line: int,
                                                           message: str) -> None:
    """A bench that names something the harness cannot drive is refused in the file, not at power-on."""
    path = tmp_path / "desk.yaml"
    path.write_text(f"name: desk\nkind: hardware\nserial: {{url: /dev/ttyUSB0}}\n{text}")
    with pytest.raises(ConfigError, match=f"{path}:{line}: {message}"):
        load_bench(str(path), tmp_path)


def test_the_example_bench_power_is_its_backends_own_section() -> None:
    directory = Path(__file__).resolve().parents[1] / "benches"
    power = load_bench(str(directory / "desk-nanopi-m6.yaml"), directory).power
    assert isinstance(power, LcusSection)
    assert (power.channel, power.invert, power.off_time_s) == (1, False, 2)
    assert power.port.startswith("/dev/serial/by-path/")
