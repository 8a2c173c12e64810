import random

from enchant_worker.queue.backoff import retry_delay_s


def test_delay_grows_exponentially_within_jitter_bounds():
    rng = random.Random(1)
    for attempt, cap in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0)]:
        delays = [retry_delay_s(attempt, 2.0, 600.0, rng) for _ in range(200)]
        assert min(delays) >= cap / 2 and max(delays) <= cap
        assert max(delays) - min(delays) > cap / 10  # jittered, not constant


def test_delay_is_capped():
    assert retry_delay_s(30, 2.0, 60.0) <= 60.0
