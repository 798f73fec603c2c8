"""The Flower internals `polling` shortens must still exist (flwr is pinned; this guards bumps)."""

from __future__ import annotations

import functools

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
