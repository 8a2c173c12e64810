"""Job ids made a batch at a time: UUID version 7, in time order, the rest random."""

import time
import uuid

from enchant_worker.queue.jobqueue import new_ids


def test_batch_ids_are_version_7_uuids_in_time_order_with_random_bits():
    before = time.time_ns() // 1_000_000
    ids = list(new_ids(2000))
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 2000
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert all(uuid.UUID(str(i)) == i for i in ids)
    assert all(before <= i.int >> 80 <= after for i in ids)  # the milliseconds of their making
    assert ids == sorted(ids)  # a batch is added at the index's right edge
    random_bits = (1 << 62) - 1
    ones = zeros = 0
    for i in ids:
        ones |= i.int
        zeros |= ~i.int
    assert ones & random_bits == random_bits and zeros & random_bits == random_bits
    assert list(new_ids(0)) == []
