"""Storing a batch of analytics events: the caller's rights on every id they name, the per-user rate limit,
then one multi-row INSERT. All in one transaction, so a refused batch leaves nothing behind."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from enchant_worker.analytics.events import MAX_USER_AGENT_CHARS, Event
from enchant_worker.errors import QuotaExceeded
from enchant_worker.intake.actor import Actor
from enchant_worker.intake.references import check_reference
from enchant_worker.intake.submit import tier_of
from enchant_worker.sql import q

RATE_WINDOW_S = 60  # the limit is events per minute, over a sliding minute


@dataclass(frozen=True)
class Client:
    """Where a batch came from, as the API determined it (`api.client_address`)."""

    ip_address: str | None
    user_agent: str | None


def record_events(conn, actor: Actor, events: list[Event], client: Client, settings: Any) -> int:
    """Checks and stores `events` for `actor`; returns how many were stored. Raises AccessDenied (403) or
    InvalidJob (422) naming the field of an id the caller may not name, QuotaExceeded (429) past the
    tier's `events_per_minute`."""
    with conn.transaction():
        check_references(conn, actor, events, settings)
        check_rate(conn, actor, len(events), settings)
        conn.execute(
            q("insert_events"),
            {
                "user_id": actor.user_id,
                "ip_address": client.ip_address,
                "user_agent": client.user_agent[:MAX_USER_AGENT_CHARS] if client.user_agent else None,
                "event_type": [e.event_type for e in events],
                "event_data": [json.dumps(e.event_data, ensure_ascii=False) for e in events],
                "session_id": [e.session_id for e in events],
            },
        )
    return len(events)


def check_references(conn, actor: Actor, events: list[Event], settings: Any) -> None:
    """Each distinct id once (a batch of 500 views of one story costs one check); the first field that
    names it is the one an error names."""
    seen: set[tuple[str, str, str]] = set()
    for event in events:
        for ref in event.refs:
            key = (ref.kind, ref.right, str(ref.value))
            if key not in seen:
                seen.add(key)
                check_reference(conn, actor, ref, settings)


def check_rate(conn, actor: Actor, count: int, settings: Any) -> None:
    """Refuses the batch when it would take the user past their tier's events per minute. Admin keys and
    users of a tier without a limit (0) are not limited."""
    tier = tier_of(conn, actor, settings)
    if tier is None or tier.events_per_minute <= 0:
        return
    limit = tier.events_per_minute
    if count > limit:
        raise QuotaExceeded(
            f"events: a batch of {count} events is above the {tier.name} tier's limit of {limit} "
            "events per minute; send smaller batches",
            RATE_WINDOW_S,
        )
    conn.execute(q("lock_user_events"), {"user_id": actor.user_id})
    # The (count + sent - limit)-th oldest recent event is the one whose leaving makes room for the batch.
    row = conn.execute(
        q("recent_user_events"), {"user_id": actor.user_id, "window_s": RATE_WINDOW_S, "nth": 0}
    ).fetchone()
    over = row["events"] + count - limit
    if over <= 0:
        return
    row = conn.execute(
        q("recent_user_events"), {"user_id": actor.user_id, "window_s": RATE_WINDOW_S, "nth": over}
    ).fetchone()
    retry_after = max(1, math.ceil(float(row["frees_in_s"] or RATE_WINDOW_S)))
    raise QuotaExceeded(
        f"events: {row['events']} events in the last minute and {count} more would pass the "
        f"{tier.name} tier's limit of {limit} per minute; retry in {retry_after} s (nothing of "
        "this batch was stored)",
        retry_after,
    )
