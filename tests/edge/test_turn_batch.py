"""Micro-batching by loop turn: what is ready together runs together; nothing waits for more."""

from __future__ import annotations

import asyncio

import pytest

from tierwise.edge.turn_batch import TurnBatch


def test_items_submitted_in_one_turn_run_in_one_call_in_order() -> None:
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int | BaseException]:
        calls.append(items)
        return [i * 10 for i in items]

    async def main() -> list[int]:
        batch: TurnBatch[int, int] = TurnBatch(run)
        return list(await asyncio.gather(*(batch.submit(i) for i in range(5))))

    assert asyncio.run(main()) == [0, 10, 20, 30, 40]
    assert calls == [[0, 1, 2, 3, 4]]


def test_a_lone_item_runs_on_the_next_turn_without_waiting_for_company() -> None:
    calls: list[list[str]] = []

    def run(items: list[str]) -> list[str | BaseException]:
        calls.append(items)
        return [s.upper() for s in items]

    async def main() -> None:
        batch: TurnBatch[str, str] = TurnBatch(run)
        assert await batch.submit("a") == "A"
        assert await batch.submit("b") == "B"  # a later turn: a call of its own
        assert batch.largest == 1

    asyncio.run(main())
    assert calls == [["a"], ["b"]]


def test_an_items_own_error_reaches_only_its_caller() -> None:
    def run(items: list[int]) -> list[int | BaseException]:
        return [ValueError(f"bad {i}") if i == 2 else i for i in items]

    async def main() -> list[int | BaseException]:
        batch: TurnBatch[int, int] = TurnBatch(run)
        futures = [batch.submit(i) for i in range(4)]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    outcomes = asyncio.run(main())
    assert outcomes[:2] == [0, 1]
    assert outcomes[3] == 3
    assert isinstance(outcomes[2], ValueError)
    assert str(outcomes[2]) == "bad 2"


def test_a_failing_run_fails_its_whole_batch() -> None:
    def run(items: list[int]) -> list[int | BaseException]:
        raise OSError("disk gone")

    async def main() -> None:
        batch: TurnBatch[int, int] = TurnBatch(run)
        futures = [batch.submit(i) for i in range(3)]
        for future in futures:
            with pytest.raises(OSError, match="disk gone"):
                await future

    asyncio.run(main())


def test_an_item_whose_caller_gave_up_still_runs() -> None:
    ran: list[int] = []

    def run(items: list[int]) -> list[int | BaseException]:
        ran.extend(items)
        return items

    async def main() -> None:
        batch: TurnBatch[int, int] = TurnBatch(run)
        gone = batch.submit(1)
        kept = batch.submit(2)
        gone.cancel()
        assert await kept == 2

    asyncio.run(main())
    assert ran == [1, 2]
