"""The fixtures gates ask for: the board's profile, the bench, the bring-up session and the stage
each gate needs. Registered by the plugin, so a user's own gate files get them too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.config.bench import Bench
from harness.config.profile import BoardProfile
from harness.errors import ConfigError
from harness.pytest.state import state_of
from harness.rig import bring_up
from harness.session import BringUpSession
from harness.uboot import UBoot


@pytest.fixture(scope="session")
def board_profile(pytestconfig: pytest.Config) -> BoardProfile:
    state = state_of(pytestconfig)
    if state.profile is None:
        # Deliberate: a gate without a board has nothing to judge; the run says so once in its summary.
        pytest.skip(state.needs_board)
    return state.profile


@pytest.fixture(scope="session")
def bench(pytestconfig: pytest.Config, board_profile: BoardProfile) -> Bench:
    state = state_of(pytestconfig)
    if state.bench is None:
        raise ConfigError("a board was given but no bench was loaded")
    return state.bench


@pytest.fixture(scope="session")
def bring_up_session(pytestconfig: pytest.Config, board_profile: BoardProfile,
                     bench: Bench) -> Iterator[BringUpSession]:
    state = state_of(pytestconfig)
    with bring_up(board_profile, bench, state.log_dir, image=state.image, keep_on=state.keep_board_on) as session:
        state.session = session
        yield session


@pytest.fixture(autouse=True)
def _applicable(request: pytest.FixtureRequest) -> None:
    """A gate the board profile declares not applicable is reported so, with the profile's reason."""
    marker = request.node.get_closest_marker("requirement")
    if marker is None or "board_profile" not in request.fixturenames:
        return
    profile: BoardProfile = request.getfixturevalue("board_profile")
    for requirement in marker.args:
        if requirement in profile.not_applicable:
            # The "not applicable" verdict, with the profile's reason; counted apart from skips.
            pytest.skip(f"not applicable to {profile.name}: {profile.not_applicable[requirement]}")


@pytest.fixture
def uboot(bring_up_session: BringUpSession) -> UBoot:
    """The board held at the U-Boot prompt (autoboot interrupted)."""
    return bring_up_session.uboot_prompt()


@pytest.fixture
def booted(bring_up_session: BringUpSession) -> BringUpSession:
    """The board booted into its kernel (continuing from the U-Boot prompt when it is held there)."""
    bring_up_session.reach("kernel")
    return bring_up_session


@pytest.fixture
def unit_ram_mb(bench: Bench) -> int:
    """This unit's RAM: a fact of the bench (the SKU on the desk), not of the board model."""
    if bench.ram_mb is None:
        raise ConfigError(f"bench '{bench.name}' does not say how much RAM this unit has: add ram_mb: "
                          "(4096, 8192, 16384 or 32768 for a NanoPi M6)")
    return bench.ram_mb
