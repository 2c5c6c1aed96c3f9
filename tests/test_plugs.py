"""Network plugs (Tasmota, Shelly Gen1, Shelly Gen2+) against loopback doubles speaking each device's HTTP.

Every backend is driven through its registered factory, as the rig does, with credentials from bench
secrets; every fault a plug on a LAN can show (gone, HTTP errors, garbage, a stall, a relay reading
back wrong, refused credentials) must be a BenchError naming the plug with its credentials masked,
within the section's timeout. The digest client is checked against RFC 7616's published example
values and Shelly's documented challenge, not only against our own double.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bench_doubles import hardware_bench, run_bootloader_gates
from sim_support import fast_profile
from support import ROOT

from harness.config.bench import load_bench
from harness.errors import BenchError, ConfigError
from harness.image.synthetic import make_talos_like_image
from harness.power.base import PowerContext, PowerSwitch
from harness.power.control import PowerControl
from harness.power.registry import build_power
from harness.power.shelly_gen1 import ShellyGen1Section
from harness.power.shelly_gen2 import ShellyGen2Section
from harness.power.tasmota import TasmotaSection
from harness.sim.board import VirtualBoard
from harness.sim.plug_doubles import PlugDouble, ShellyGen1Double, ShellyGen2Double, TasmotaDouble
from harness.sim.transcript import load_transcript
from harness.transports.http import (
    DigestAuth,
    digest_authorization,
    digest_response,
    mask_url,
    parse_challenge,
    request,
)

PASSWORD = "Sw0rdf1sh-plug-9"  # grepped for in every message below
USER = "benchuser"
TIMEOUT_S = 0.5
SECRETS = {"plug_user": USER, "plug_password": PASSWORD}


def context(secrets: dict[str, str] | None = None) -> PowerContext:
    values = SECRETS if secrets is None else secrets

    def secret(name: str) -> str:
        if name not in values:
            raise ConfigError(f"secret '{name}' of bench 'desk' is not set")
        return values[name]

    return PowerContext(bench="desk", secret=secret)


def build(section: dict[str, Any], secrets: dict[str, str] | None = None) -> PowerSwitch:
    """The switch for a bench section, through the registry and the bench schema, as the rig builds it."""
    from harness.config.power_support import validate_power_section

    return build_power(validate_power_section(section, role="power", bench_kind="hardware"), context(secrets))


@dataclass
class Kind:
    """One backend with its double: how to make a double with or without a password, and its section."""

    name: str
    double: Callable[..., PlugDouble]
    section: Callable[[PlugDouble], dict[str, Any]]


KINDS = [
    Kind("tasmota", lambda **kw: TasmotaDouble(user=USER, **kw),
         lambda d: {"kind": "tasmota", "url": d.url, "user_secret": "plug_user", "password_secret": "plug_password",
                    "timeout_s": TIMEOUT_S}),
    Kind("shelly-gen1", lambda **kw: ShellyGen1Double(user=USER, **kw),
         lambda d: {"kind": "shelly-gen1", "url": d.url, "user_secret": "plug_user",
                    "password_secret": "plug_password", "timeout_s": TIMEOUT_S}),
    Kind("shelly-gen2", lambda **kw: ShellyGen2Double(**kw),
         lambda d: {"kind": "shelly-gen2", "url": d.url, "password_secret": "plug_password", "timeout_s": TIMEOUT_S}),
]


@pytest.fixture(params=KINDS, ids=[k.name for k in KINDS])
def plug(request: pytest.FixtureRequest) -> Iterator[tuple[PlugDouble, PowerSwitch, list[tuple[int, bool]]]]:
    """A double with a password set, the backend's switch built against it, and the on_change calls seen."""
    kind: Kind = request.param
    changes: list[tuple[int, bool]] = []
    with kind.double(password=PASSWORD, on_change=lambda channel, on: changes.append((channel, on))) as double:
        yield double, build(kind.section(double)), changes


def texts(exc: BaseException) -> str:
    """Everything an exception can show: its message, its repr, and the full traceback with its causes."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


# -- every backend: switching, read-back, credentials ------------------------------------------------
def test_each_backend_switches_and_reads_back_through_power_control(plug: Any) -> None:
    double, switch, changes = plug
    control = PowerControl(switch, off_time_s=0.01)
    control.on()
    assert next(iter(double.states.values())) is True and control.status().state == "on"
    control.off()
    assert next(iter(double.states.values())) is False and control.status().state == "off"
    control.cycle()
    channel = next(iter(double.states))
    assert changes == [(channel, True), (channel, False), (channel, True)], "on_change powers the board"
    assert PASSWORD not in switch.description and double.url.split("//")[1] in switch.description


def test_invert_drives_the_relay_the_other_way_and_reads_back_inverted() -> None:
    with TasmotaDouble() as double:
        switch = build({"kind": "tasmota", "url": double.url, "invert": True})
        switch.set(True)
        assert double.states[1] is False and switch.get() is True
        assert switch.description.endswith("(inverted)")


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_wrong_credentials_are_a_bench_error_naming_the_secrets_and_never_the_password(kind: Kind) -> None:
    with kind.double(password="the-device-password") as double:
        switch = build(kind.section(double))
        with pytest.raises(BenchError) as caught:
            switch.set(True)
        assert "secret" in str(caught.value) and "credentials" in str(caught.value)
        assert PASSWORD not in texts(caught.value)
        assert not any(double.states.values()), "nothing switched"


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_a_device_wanting_credentials_the_bench_lacks_says_so(kind: Kind) -> None:
    with kind.double(password=PASSWORD) as double:
        section = {k: v for k, v in kind.section(double).items() if not k.endswith("_secret")}
        with pytest.raises(BenchError, match="asks for credentials and none are configured"):
            build(section).get()


def test_an_unset_secret_stops_the_build_before_any_request() -> None:
    with ShellyGen2Double(password=PASSWORD) as double:
        with pytest.raises(ConfigError, match="plug_password"):
            build({"kind": "shelly-gen2", "url": double.url, "password_secret": "plug_password"}, secrets={})
        assert double.requests == []


# -- Tasmota ---------------------------------------------------------------------------------------------
def test_tasmota_speaks_the_documented_commands_with_credentials_as_query_parameters() -> None:
    with TasmotaDouble(user=USER, password=PASSWORD) as double:
        switch = build({"kind": "tasmota", "url": double.url, "user_secret": "plug_user",
                        "password_secret": "plug_password"})
        switch.set(True)
        assert switch.get() is True
        assert double.requests == [f"GET /cm?user={USER}&password={PASSWORD}&cmnd=Power%20On",
                                   f"GET /cm?user={USER}&password={PASSWORD}&cmnd=Power"]


def test_tasmota_user_defaults_to_admin() -> None:
    with TasmotaDouble(password=PASSWORD) as double:
        switch = build({"kind": "tasmota", "url": double.url, "password_secret": "plug_password"})
        switch.set(True)
        assert double.states[1] is True and "user=admin&" in double.requests[0]


def test_tasmota_relay_2_of_a_multi_relay_board() -> None:
    with TasmotaDouble(relays=4) as double:
        switch = build({"kind": "tasmota", "url": double.url, "relay": 2})
        switch.set(True)
        assert double.states == {1: False, 2: True, 3: False, 4: False}
        assert switch.get() is True and double.requests[0] == "GET /cm?cmnd=Power2%20On"
        assert switch.description.endswith("relay 2")


def test_tasmota_relay_the_device_lacks_is_a_bench_error() -> None:
    with TasmotaDouble(relays=1) as double, pytest.raises(BenchError, match="does it have relay 3"):
        build({"kind": "tasmota", "url": double.url, "relay": 3}).set(True)


def test_tasmota_missing_credentials_get_its_warning_answer() -> None:
    """Tasmota answers HTTP 200 with a WARNING, not 401: the driver must not read it as a state."""
    with TasmotaDouble(password=PASSWORD) as double, \
            pytest.raises(BenchError, match="Need user=<username>&password=<password>"):
        build({"kind": "tasmota", "url": double.url}).get()


# -- Shelly Gen1 -------------------------------------------------------------------------------------
def test_shelly_gen1_turns_relay_1_with_basic_auth() -> None:
    with ShellyGen1Double(relays=2, user=USER, password=PASSWORD) as double:
        switch = build({"kind": "shelly-gen1", "url": double.url, "relay": 1, "user_secret": "plug_user",
                        "password_secret": "plug_password"})
        switch.set(True)
        assert double.states == {0: False, 1: True} and switch.get() is True
        assert double.requests == ["GET /relay/1?turn=on", "GET /relay/1"]
        assert all(a is not None and a.startswith("Basic ") for a in double.authorizations)


# -- Shelly Gen2 and the digest ---------------------------------------------------------------------
def test_shelly_gen2_answers_the_sha256_digest_challenge_and_calls_switch_set() -> None:
    with ShellyGen2Double(switches=2, password=PASSWORD) as double:
        switch = build({"kind": "shelly-gen2", "url": double.url, "switch": 1, "password_secret": "plug_password"})
        switch.set(True)
        assert double.states == {0: False, 1: True} and switch.get() is True
        assert double.methods == ["Switch.Set", "Switch.GetStatus"]
        # Each call: the unauthenticated request, the 401 challenge, the answer with the digest.
        assert double.authorizations[0] is None and double.authorizations[1] is not None
        assert double.authorizations[1].startswith('Digest username="admin", realm="shellyplus1-')
        assert all(PASSWORD not in (a or "") for a in double.authorizations), "the password never crosses the wire"


def test_shelly_gen2_without_auth_needs_no_challenge() -> None:
    with ShellyGen2Double() as double:
        switch = build({"kind": "shelly-gen2", "url": double.url})
        switch.set(True)
        assert double.states[0] is True and double.authorizations == [None]


def test_shelly_gen2_rpc_error_names_the_switch() -> None:
    with ShellyGen2Double(switches=1) as double, pytest.raises(BenchError, match="does the device have switch 3"):
        build({"kind": "shelly-gen2", "url": double.url, "switch": 3}).set(True)


def test_digest_matches_rfc_7616_published_examples() -> None:
    """RFC 7616 section 3.9.1: the same request answered with SHA-256 and with MD5 (an independent reference)."""
    common = {"user": "Mufasa", "realm": "http-auth@example.org", "password": "Circle of Life", "method": "GET",
              "uri": "/dir/index.html", "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "nc": "00000001",
              "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "qop": "auth"}
    assert digest_response(algorithm="SHA-256", **common) == \
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert digest_response(algorithm="MD5", **common) == "8ca523f5e9506fed4657c9700eebdbec"


def test_digest_reads_shellys_documented_challenge_and_answers_it() -> None:
    """The challenge as Shelly's API docs (and devices) send it; parameters in the device's order."""
    challenge = parse_challenge('Digest qop="auth", realm="shellypro4pm-f008d1d8b8b8", nonce="60dc59c6", '
                                "algorithm=SHA-256")
    assert (challenge.realm, challenge.nonce, challenge.qop, challenge.algorithm) == \
        ("shellypro4pm-f008d1d8b8b8", "60dc59c6", "auth", "SHA-256")
    header = digest_authorization(challenge, user="admin", password="mysecretpassword", method="POST", uri="/rpc",
                                  cnonce="313273957")
    import hashlib

    def h(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    # Shelly's docs: ha1 = SHA256(admin:<realm>:<password>); response per RFC 7616 with qop auth.
    ha1 = h("admin:shellypro4pm-f008d1d8b8b8:mysecretpassword")
    expected = h(f"{ha1}:60dc59c6:00000001:313273957:auth:{h('POST:/rpc')}")
    assert f'response="{expected}"' in header and "algorithm=SHA-256" in header and "nc=00000001" in header
    with pytest.raises(ValueError, match="not a digest"):
        parse_challenge('Basic realm="x"')


def test_digest_client_sends_a_fixed_cnonce_the_double_accepts() -> None:
    with ShellyGen2Double(password=PASSWORD, realm="shellypro4pm-f008d1d8b8b8") as double:
        auth = DigestAuth("admin", PASSWORD, cnonce=lambda: "0a4f113b")
        answer = request("POST", f"{double.url}/rpc", body=b'{"id":1,"method":"Switch.GetStatus","params":{"id":0}}',
                         auth=auth, timeout=TIMEOUT_S)
        assert answer.json()["result"]["output"] is False
        assert 'cnonce="0a4f113b"' in (double.authorizations[1] or "")


# -- faults ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fault", "message"), [
    ("down", "cannot be reached"),
    ("http-500", "answered HTTP 500"),
    ("garbage", "not JSON"),
    ("stall", "did not answer within 0.5 s"),
])
def test_every_fault_is_a_prompt_bench_error_naming_the_plug_with_credentials_masked(
        plug: Any, fault: str, message: str) -> None:
    double, switch, _ = plug
    double.fault = fault
    started = time.monotonic()
    for action in (lambda: switch.set(True), switch.get):
        with pytest.raises(BenchError, match=message) as caught:
            action()
        shown = texts(caught.value)
        assert f"127.0.0.1:{double.port}" in str(caught.value) and PASSWORD not in shown and USER not in shown
    assert time.monotonic() - started < 4 * TIMEOUT_S + 2, "never a hang"
    double.fault = None
    switch.set(True)
    assert switch.get() is True, "the plug works again once the fault is gone"


def test_a_relay_reading_back_wrong_is_caught_by_power_control(plug: Any) -> None:
    double, switch, _ = plug
    double.fault = "wrong-readback"
    with pytest.raises(BenchError, match="was switched on but reads back off") as caught:
        PowerControl(switch).on()
    assert PASSWORD not in texts(caught.value)


def test_credentials_appear_in_no_description_error_or_exception_text() -> None:
    """Grep every text a failing plug produces, for each backend and each fault, for the user and password."""
    seen: list[str] = []
    for kind in KINDS:
        for password in (PASSWORD, "wrong-password-on-device"):
            with kind.double(password=password) as double:
                switch = build(kind.section(double))
                seen += [switch.description, repr(switch)]
                for fault in (None, "down", "http-500", "garbage", "wrong-readback"):
                    double.fault = fault  # type: ignore[assignment]
                    try:
                        PowerControl(switch, off_time_s=0.01).cycle()
                        seen.append(str(PowerControl(switch).status()))
                    except BenchError as exc:
                        seen.append(texts(exc))
    joined = "\n".join(seen)
    assert "reads back" in joined and "cannot be reached" in joined and "refused the credentials" in joined
    assert PASSWORD not in joined and f"user={USER}" not in joined


def test_mask_url_hides_userinfo_and_credential_parameters() -> None:
    assert mask_url(f"http://admin:{PASSWORD}@plug/cm?user=admin&password={PASSWORD}&cmnd=Power%20On") == \
        "http://***@plug/cm?user=***&password=***&cmnd=Power%20On"
    assert mask_url("http://plug-3.lab:8080/rpc") == "http://plug-3.lab:8080/rpc"
    assert mask_url(f"http://plug/cm?PASSWORD={PASSWORD}") == "http://plug/cm?PASSWORD=***"


# -- bench files ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("section", [
    "{kind: tasmota, url: 'http://admin:pw@plug-3.lab'}",
    "{kind: shelly-gen2, url: 'plug-3.lab'}",
    "{kind: shelly-gen1, url: 'http://plug/relay/0'}",
    "{kind: tasmota, url: 'http://plug', relay: 0}",
    "{kind: shelly-gen1, url: 'http://plug', user_secret: u}",
])
def test_a_bad_plug_section_is_refused_in_the_file(tmp_path: Path, section: str) -> None:
    path = tmp_path / "desk.yaml"
    path.write_text(f"name: desk\nkind: hardware\nserial: {{url: /dev/null}}\npower: {section}\n")
    with pytest.raises(ConfigError, match="power"):
        load_bench(str(path), tmp_path)


def test_the_example_benches_pass_hil_check_and_carry_their_off_time(tmp_path: Path) -> None:
    import subprocess
    import sys

    examples = [ROOT / "benches" / "examples" / f"{kind}.yaml" for kind in ("tasmota", "shelly-gen1", "shelly-gen2")]
    done = subprocess.run([sys.executable, "-m", "harness.cli", "check", *map(str, examples)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": ok (bench file)") == 3
    sections = {TasmotaSection, ShellyGen1Section, ShellyGen2Section}
    for example in examples:
        bench = load_bench(str(example), tmp_path)
        assert type(bench.power) in sections and bench.power is not None and bench.power.off_time_s == 3
        assert "Tasmota" not in example.name or "PowerOnState 0" in example.read_text()


# -- a virtual board behind a plug, through a child pytest -------------------------------------------
@contextlib.contextmanager
def board_behind_a_plug(tmp_path: Path) -> Iterator[VirtualBoard]:
    """bench_doubles.virtual_board at a quarter of real time instead of a twentieth.

    The session starts sending U-Boot's interrupt key once power-on has returned, read-back included:
    over HTTP that is two to four loopback exchanges after the board got power (a digest costs one
    more each). At 0.05 the board's 1 s autoboot countdown lasts 50 ms, which a loaded test machine's
    scheduling can eat (seen: 1 run in 5); at 0.25 it lasts 250 ms, still far shorter than a real one.
    """
    board = VirtualBoard(fast_profile("nanopi-m6"), load_transcript("nanopi-m6"), time_scale=0.25,
                         sd_image=make_talos_like_image(tmp_path / "sd.img"))
    try:
        yield board
    finally:
        board.close()


def test_the_bootloader_gates_pass_through_a_tasmota_plug(tmp_path: Path) -> None:
    with board_behind_a_plug(tmp_path) as board, \
            TasmotaDouble(relays=2, password=PASSWORD, on_change=lambda relay, on: relay == 2 and board.power(on)) \
            as plug:
        bench = hardware_bench(tmp_path, board, f"{{kind: tasmota, url: '{plug.url}', relay: 2, "
                                                "password_secret: plug_password, off_time_s: 0.1}",
                               extra="secrets: {plug_password: HIL_TEST_PLUG_PASSWORD}\n")
        done = run_bootloader_gates(bench, tmp_path / "report", env={"HIL_TEST_PLUG_PASSWORD": PASSWORD})
        assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout[-3000:]
        assert plug.states == {1: False, 2: False}, "left off, and only relay 2 was touched"
        assert any("Power2%20On" in r for r in plug.requests)
        assert PASSWORD not in done.stdout + done.stderr
        assert not any(PASSWORD.encode() in p.read_bytes() for p in (tmp_path / "report").rglob("*") if p.is_file())


def test_the_bootloader_gates_pass_through_a_shelly_gen2_with_digest_auth(tmp_path: Path) -> None:
    with board_behind_a_plug(tmp_path) as board, \
            ShellyGen2Double(password=PASSWORD, on_change=lambda _switch, on: board.power(on)) as plug:
        bench = hardware_bench(tmp_path, board, f"{{kind: shelly-gen2, url: '{plug.url}', switch: 0, "
                                                "password_secret: plug_password, off_time_s: 0.1}",
                               extra="secrets: {plug_password: HIL_TEST_PLUG_PASSWORD}\n")
        done = run_bootloader_gates(bench, tmp_path / "report", env={"HIL_TEST_PLUG_PASSWORD": PASSWORD})
        assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout[-3000:]
        assert plug.states == {0: False}, "left off"
        assert "Switch.Set" in plug.methods and all(a is None or a.startswith("Digest ") for a in plug.authorizations)
        assert not any(PASSWORD.encode() in p.read_bytes() for p in (tmp_path / "report").rglob("*") if p.is_file())
