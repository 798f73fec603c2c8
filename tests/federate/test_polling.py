"""The Flower internals `polling` shortens must still exist (flwr is pinned; this guards bumps)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tierwise.federate.polling import (
    Backoff,
    serverapp_grid_module,
    supernode_module,
    tune_serverapp,
)


def test_flower_still_has_the_waits_we_shorten() -> None:
    import inspect

    supernode = supernode_module()
    source = inspect.getsource(supernode)
    assert "time.sleep(3)" in source
    assert "time.sleep(0.5)" in source
    assert callable(supernode.pull_objects)
    grid = serverapp_grid_module()
    assert "initial_backoff" in inspect.signature(inspect.unwrap(grid.pull_objects)).parameters


def test_the_superexec_still_reads_its_poll_interval_from_the_variable_we_set() -> None:
    import flwr.supercore.superexec.run_superexec as superexec

    from tierwise.federate.deployment import _env
    from tierwise.federate.polling import SUPEREXEC_POLL_ENV, SUPEREXEC_POLL_S

    assert superexec._TASK_POLL_INTERVAL_ENV == SUPEREXEC_POLL_ENV
    env = _env(Path("flwr-home"))
    assert env[SUPEREXEC_POLL_ENV] == str(SUPEREXEC_POLL_S)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SUPEREXEC_POLL_ENV, env[SUPEREXEC_POLL_ENV])
        assert superexec._get_task_poll_interval() == SUPEREXEC_POLL_S


def test_tuning_the_serverapp_is_idempotent() -> None:
    tune_serverapp()
    tune_serverapp()
    pull = serverapp_grid_module().pull_objects
    assert isinstance(pull, functools.partial)
    assert not isinstance(pull.func, functools.partial)
    assert pull.keywords["initial_backoff"] < 0.1


def test_backoff_grows_to_its_cap_and_resets() -> None:
    backoff = Backoff(start=0.01, factor=2.0, cap=0.05)
    assert [backoff.next_delay() for _ in range(5)] == [0.01, 0.02, 0.04, 0.05, 0.05]
    backoff.reset()
    assert backoff.next_delay() == 0.01


def test_the_pacer_naps_through_most_of_a_known_gap_then_backs_off() -> None:
    from tierwise.federate.polling import Pacer

    pacer = Pacer(backoff=Backoff(start=0.01, cap=0.5), early=0.5, history=2)
    now = 0.0
    for gap in (4.0, 2.0):  # two rounds seen: answer sent at `now`, next message after `gap`
        pacer.idle(now)
        assert pacer.next_delay(now) == 0.01  # no history yet: plain backoff
        now += gap
        pacer.work(now)
    pacer.idle(now)
    assert pacer.next_delay(now) == 1.0  # half the shortest gap, in one sleep
    assert pacer.next_delay(now + 1.0) == pacer.after_nap.start  # then quick polls
    assert pacer.next_delay(now + 1.1) > pacer.after_nap.start
    pacer.work(now + 1.2)
    pacer.idle(now + 2.0)
    assert pacer.next_delay(now + 2.0) == pytest.approx(0.6)  # shortest of the last two: 1.2
