"""Job ids made a batch at a time are what uuid.uuid4() makes: version 4, the RFC 4122 variant, every
other bit random."""

import uuid

from enchant_worker.queue.jobqueue import random_ids


def test_batch_ids_are_version_4_uuids_with_all_their_random_bits():
    ids = list(random_ids(2000))
    assert len(set(ids)) == 2000
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)
    assert all(uuid.UUID(str(i)) == i for i in ids)
    fixed = (0xF << 76) | (0b11 << 62)  # version and variant
    ones = zeros = 0
    for i in ids:
        ones |= i.int
        zeros |= ~i.int
    random_bits = ((1 << 128) - 1) & ~fixed
    assert ones & random_bits == random_bits and zeros & random_bits == random_bits
    assert list(random_ids(0)) == []
