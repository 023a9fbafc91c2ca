"""The demo's Ctrl-C: never lost, wherever it lands (jobpoll.demo.Interrupts)."""

from __future__ import annotations

import os
import signal

import pytest

from jobpoll.demo import Interrupts


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_a_ctrl_c_swallowed_on_its_way_up_still_ends_the_demo_at_its_next_step() -> None:
    with Interrupts().installed() as interrupts:
        try:
            _ctrl_c()
            for _ in range(1000):  # bounded: the handler raises at the first check of pending signals
                pass
        except BaseException:
            pass
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()


def test_a_ctrl_c_while_held_is_raised_when_the_hold_ends() -> None:
    reached_the_end_of_the_block = False
    with Interrupts().installed() as interrupts, pytest.raises(KeyboardInterrupt), interrupts.held():
        _ctrl_c()
        reached_the_end_of_the_block = True
    assert reached_the_end_of_the_block


def test_the_previous_sigint_handler_is_back_afterwards() -> None:
    before = signal.getsignal(signal.SIGINT)
    with Interrupts().installed():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before
