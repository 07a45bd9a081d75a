"""The send loop's circuit breaker: the failure window (one outcome at a time or successes in bulk),
failures in a row, and a run where everything failed."""

from __future__ import annotations

import threading

from hypothesis import given, settings, strategies as st

from newsletter.delivery.pacing import CircuitBreaker, FailureWindow


def test_a_full_window_with_too_many_failures_pauses():
    window = FailureWindow(4, 0.5)
    assert [window.add(f) for f in (True, True, True)] == [False, False, False]   # not full yet
    assert window.add(False) is True and window.bad == 3
    assert FailureWindow(0, 0.5).add(True) is False                                # size 0: never


def test_successes_that_fill_the_window_can_pause_it():
    window = FailureWindow(4, 0.4)
    window.add(True)
    window.add(True)
    assert window.add_successes(5) is True and len(window) == 4 and window.bad == 2


@settings(max_examples=300, deadline=None)
@given(size=st.integers(0, 12), ratio=st.sampled_from([0.0, 0.25, 0.5, 0.9]),
       steps=st.lists(st.one_of(st.booleans(), st.integers(1, 30)), max_size=30))
def test_successes_in_bulk_match_one_at_a_time(size, ratio, steps):
    # A step is one outcome (bool) or a run of n successes; the send loop stops adding once paused.
    bulk, single = FailureWindow(size, ratio), FailureWindow(size, ratio)
    for step in steps:
        if isinstance(step, bool):
            paused = bulk.add(step)
            assert single.add(step) is paused
        else:
            paused = bulk.add_successes(step)
            expected = False
            for _ in range(step):
                if single.add(False):
                    expected = True
                    break
            assert paused is expected
        assert (len(bulk), bulk.bad) == (len(single), single.bad)
        if paused:
            break


def test_the_breaker_trips_on_failures_in_a_row_and_the_first_reason_sticks():
    breaker = CircuitBreaker(consecutive=3, window=0, ratio=0.5)
    assert breaker.add([True, True, False, True, True]) == ""
    assert breaker.add([True], "451 4.7.1 later") == "3 messages in a row failed (last reply: 451 4.7.1 later)"
    assert breaker.add([False] * 10) == "3 messages in a row failed (last reply: 451 4.7.1 later)"


def test_the_breaker_trips_on_a_share_of_its_window():
    breaker = CircuitBreaker(consecutive=0, window=4, ratio=0.5)
    assert breaker.add([True, False, True]) == ""
    assert breaker.add([True], "550") == "3 of the last 4 messages failed (last reply: 550)"


def test_a_run_whose_every_result_failed_stops_at_the_end():
    breaker = CircuitBreaker(consecutive=10, window=50, ratio=0.5)
    breaker.add([True, True], "550 no")
    assert breaker.reason == "" and breaker.final() == "all 2 messages failed (last reply: 550 no)"
    one = CircuitBreaker(consecutive=10, window=50, ratio=0.5)
    one.add([True])
    assert one.final() == ""                       # one refusal of one message is just that
    mixed = CircuitBreaker(consecutive=10, window=50, ratio=0.9)
    mixed.add([True, True, True])
    mixed.add_successes(1)
    assert mixed.final() == ""


def test_the_breaker_takes_results_from_many_threads():
    breaker = CircuitBreaker(consecutive=1000, window=100, ratio=0.5)
    threads = [threading.Thread(target=lambda: [breaker.add([i % 3 == 0]) for i in range(3000)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert breaker.ok + breaker.failed == 12_000 and breaker.failed == 4000 and breaker.reason == ""
