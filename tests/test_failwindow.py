"""The send loop's pause rule: the failure window, one outcome at a time or successes in bulk."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from newsletter.delivery.pacing import FailureWindow


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
