"""The worker runtime: the lease loop, slots, heartbeat, NOTIFY listener, handler registry."""
