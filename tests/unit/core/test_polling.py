"""The idle poll: fast while work flows, doubling to the ceiling when idle, jittered."""

import random

from enchant_worker.worker.polling import AdaptivePoll


def test_backs_off_to_the_ceiling_and_snaps_back_when_work_flows():
    poll = AdaptivePoll(0.05, 2.0, rng=random.Random(1))
    waits = [poll.next_wait() for _ in range(10)]
    assert 0.0375 <= waits[0] <= 0.05
    assert all(0.75 * 2.0 <= w <= 2.0 for w in waits[7:])  # 0.05 * 2**6 > 2: at the ceiling
    poll.found_work()
    assert poll.next_wait() <= 0.05


def test_a_fleet_does_not_poll_in_lock_step():
    polls = [AdaptivePoll(0.05, 2.0, rng=random.Random(seed)) for seed in range(50)]
    for p in polls:
        for _ in range(8):
            p.next_wait()
    at_ceiling = sorted(p.next_wait() for p in polls)
    assert at_ceiling[-1] - at_ceiling[0] > 0.3  # spread over the jitter window, not all the same


def test_minimum_above_maximum_is_clamped():
    assert AdaptivePoll(5.0, 1.0).next_wait() <= 1.0
