"""Foreground/background turn-taking (runtime/foreground.py), on a hand-moved clock.

Waits inside :class:`Foreground` are real asyncio timeouts computed from the injected clock,
so the parameters are small: a waiter re-checks within milliseconds of real time.
"""

from __future__ import annotations

import asyncio

import pytest

from bobrapet.runtime.foreground import Foreground


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def make(clock: Clock, **kw: float) -> Foreground:
    params: dict[str, float] = {"share": 0.25, "busy_rate": 100.0, "window": 0.01, "max_pause": 0.004}
    params.update(kw)
    return Foreground(now=clock, **params)


def burst(fg: Foreground, blocks: int) -> None:
    for _ in range(blocks):
        with fg.serving():
            pass


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_quiet_foreground_never_holds_background_work() -> None:
    clock = Clock()
    fg = make(clock)
    burst(fg, 1)  # one delivery adds 1/window = 100/s: the threshold, for a moment
    clock.t += 0.05
    assert not fg.busy
    entered = []
    for i in range(3):  # concurrent items all start at once
        async with fg.background():
            entered.append(i)
    assert entered == [0, 1, 2]


async def test_a_burst_makes_the_foreground_busy_and_the_rate_decays() -> None:
    clock = Clock()
    fg = make(clock)
    burst(fg, 5)  # 5 blocks / 10 ms = 500/s
    assert fg.rate() == pytest.approx(500.0)
    assert fg.busy
    clock.t += 0.01 * 2  # two time constants: 500 * e^-2 = 68/s
    assert fg.rate() == pytest.approx(500.0 * 0.1353, rel=1e-3)
    assert not fg.busy


async def test_while_busy_background_items_run_one_at_a_time() -> None:
    clock = Clock()
    fg = make(clock, max_pause=0.0)
    burst(fg, 5)
    release = asyncio.Event()
    order: list[str] = []

    async def item(name: str, hold: bool) -> None:
        async with fg.background():
            order.append(f"{name}+")
            if hold:
                await release.wait()
            order.append(f"{name}-")

    first = asyncio.create_task(item("a", True))
    await settle()
    second = asyncio.create_task(item("b", False))
    await settle()
    assert order == ["a+"]  # b waits while a runs
    burst(fg, 5)  # keep busy
    release.set()
    await asyncio.gather(first, second)
    assert order == ["a+", "a-", "b+", "b-"]


async def test_after_an_item_the_next_waits_its_share_of_pause() -> None:
    clock = Clock()
    fg = make(clock, max_pause=1.0, window=10.0, busy_rate=0.1)  # busy for the whole test
    burst(fg, 5)
    async with fg.background():
        clock.t += 0.002  # the item took 2 ms: the next waits 6 ms (share 1/4)
    entered = asyncio.Event()

    async def second() -> None:
        async with fg.background():
            entered.set()

    task = asyncio.create_task(second())
    await asyncio.sleep(0.01)
    assert not entered.is_set()  # the clock has not moved: still inside the pause
    clock.t += 0.006
    await asyncio.wait_for(task, 1.0)
    assert entered.is_set()


async def test_the_pause_is_capped() -> None:
    clock = Clock()
    fg = make(clock, max_pause=0.004, window=10.0, busy_rate=0.1)
    burst(fg, 5)
    async with fg.background():
        clock.t += 1.0  # a long item would ask for a 3 s pause
    clock.t += 0.004
    await asyncio.wait_for(_enter(fg), 1.0)


async def test_waits_end_when_the_burst_is_over() -> None:
    clock = Clock()
    fg = make(clock, max_pause=1.0)
    burst(fg, 5)
    async with fg.background():
        clock.t += 0.001  # asks for a 3 ms pause
    task = asyncio.create_task(_enter(fg))
    await settle()
    assert not task.done()
    clock.t += 0.05  # the rate decays below busy_rate: no turn-taking any more
    await asyncio.wait_for(task, 1.0)


async def test_no_item_waits_longer_than_max_wait() -> None:
    clock = Clock()
    fg = make(clock, max_wait=0.05, window=10.0, busy_rate=0.1)
    burst(fg, 5)
    release = asyncio.Event()

    held = asyncio.create_task(_hold(fg, release))
    await settle()
    task = asyncio.create_task(_enter(fg))
    await settle()
    assert not task.done()
    await asyncio.wait_for(task, 1.0)  # the safety valve (50 ms), though the holder still runs
    release.set()
    await held


async def test_after_a_burst_the_waiting_items_start_one_per_loop_step() -> None:
    clock = Clock()
    fg = make(clock, max_pause=1.0)
    burst(fg, 5)
    release = asyncio.Event()
    ticks = 0
    entered: list[int] = []

    async def item() -> None:
        async with fg.background():
            entered.append(ticks)

    held = asyncio.create_task(_hold(fg, release))
    await settle()
    waiting = [asyncio.create_task(item()) for _ in range(5)]
    await settle()
    assert fg.waiting == 5 and not entered
    clock.t += 1.0  # the burst is over
    release.set()
    while len(entered) < 5:
        ticks += 1
        await asyncio.sleep(0)
    assert len(set(entered)) == 5, f"several items started in one loop step: {entered}"
    await asyncio.gather(held, *waiting)


async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    clock = Clock()
    fg = make(clock, max_pause=0.0, window=10.0, busy_rate=0.1)
    burst(fg, 5)
    release = asyncio.Event()

    held = asyncio.create_task(_hold(fg, release))
    await settle()
    gone = asyncio.create_task(_enter(fg))
    later = asyncio.create_task(_enter(fg))
    await settle()
    gone.cancel()
    release.set()
    await asyncio.wait_for(later, 1.0)
    await asyncio.gather(held, gone, return_exceptions=True)


async def _hold(fg: Foreground, release: asyncio.Event) -> None:
    """A background item that runs until ``release`` is set."""
    async with fg.background():
        await release.wait()


async def _enter(fg: Foreground) -> None:
    async with fg.background():
        pass


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="share"):
        Foreground(share=0.0)
    with pytest.raises(ValueError, match="positive"):
        Foreground(busy_rate=0.0)
