"""HTTP for remote providers (standard library only): timeouts, retries with backoff on 429 and 5xx,
a bounded read (a 10 GB answer is refused after `max_bytes`), cancellation between and during tries,
and errors that say what came back (an HTML page, something that is not JSON) without the secret."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from enchant_worker.errors import EnchantError, JobCancelled

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CHUNK = 1 << 16


class ProviderError(EnchantError):
    """A remote provider failed or answered something unusable (the message says which and why)."""


class ProviderTimeout(ProviderError):
    """The provider did not answer in time (the remote job, if any, is interrupted)."""


@dataclass(frozen=True)
class HttpPolicy:
    timeout_s: float = 120.0
    retries: int = 2  # tries after the first, on 429, 5xx and refused connections
    backoff_s: float = 0.5  # doubled each time; a Retry-After header wins when shorter than 60 s
    max_bytes: int = 64 * 2**20


def request_json(
    name: str,
    method: str,
    url: str,
    body: Any | None,
    headers: dict[str, str],
    policy: HttpPolicy,
    is_cancelled: Callable[[], bool] | None = None,
    on_cancel: Callable[[], None] | None = None,
) -> Any:
    """The JSON answer of `url`; ProviderError naming the provider otherwise; JobCancelled when
    `is_cancelled` turns true (then `on_cancel` is called, e.g. to interrupt the remote job)."""
    data = json.dumps(body).encode() if body is not None else None
    attempt = 0
    while True:
        if is_cancelled is not None and is_cancelled():
            raise JobCancelled()
        try:
            status, ctype, raw, retry_after = _send_cancellable(
                name, method, url, data, headers, policy, is_cancelled, on_cancel
            )
        except ProviderTimeout:
            if on_cancel is not None:  # the remote server may still be working on it: stop it
                try:
                    on_cancel()
                except Exception:
                    pass
            raise
        if status in RETRY_STATUSES and attempt < policy.retries:
            attempt += 1
            delay = policy.backoff_s * 2 ** (attempt - 1)
            if retry_after is not None and retry_after < 60:
                delay = max(delay, retry_after)
            time.sleep(delay)
            continue
        return _decode(name, url, status, ctype, raw)


def _send_cancellable(name, method, url, data, headers, policy, is_cancelled, on_cancel):
    """One try, in a thread, so that a cancel is seen within 0.1 s even while the server is working."""
    if is_cancelled is None:
        return _send(name, method, url, data, headers, policy)
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["ok"] = _send(name, method, url, data, headers, policy)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True, name=f"provider-{name}")
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        if thread.is_alive() and is_cancelled():
            if on_cancel is not None:
                try:
                    on_cancel()
                except Exception:  # the remote job may have ended; the cancel stands
                    pass
            raise JobCancelled()
    if "error" in box:
        raise box["error"]
    return box["ok"]


def _send(name, method, url, data, headers, policy) -> tuple[int, str, bytes, float | None]:
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
    )
    try:
        response = urllib.request.urlopen(req, timeout=policy.timeout_s)
    except urllib.error.HTTPError as exc:
        response = exc
    except TimeoutError:
        raise ProviderTimeout(
            f"provider {name}: no answer from {url} within {policy.timeout_s:g} s "
            "(timeout_s in configs/providers.toml)"
        ) from None
    except (urllib.error.URLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise ProviderTimeout(
                f"provider {name}: no answer from {url} within {policy.timeout_s:g} s "
                "(timeout_s in configs/providers.toml)"
            ) from None
        return 599, "", f"cannot connect: {reason}".encode(), None  # retried like a 5xx
    with response:
        status = response.status if hasattr(response, "status") else response.code
        ctype = response.headers.get("Content-Type", "") or ""
        retry_after = _seconds(response.headers.get("Retry-After"))
        chunks, size = [], 0
        try:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > policy.max_bytes:
                    raise ProviderError(
                        f"provider {name}: the answer from {url} is larger than "
                        f"{policy.max_bytes} bytes (max_response_bytes); refused"
                    )
                chunks.append(chunk)
        except TimeoutError:
            raise ProviderTimeout(
                f"provider {name}: the answer from {url} stalled for {policy.timeout_s:g} s"
            ) from None
    return status, ctype, b"".join(chunks), retry_after


def _decode(name: str, url: str, status: int, ctype: str, raw: bytes) -> Any:
    if status == 599:
        raise ProviderError(f"provider {name}: {raw.decode(errors='replace')} ({url})")
    if "html" in ctype.lower() or raw.lstrip()[:15].lower().startswith((b"<!doctype", b"<html")):
        raise ProviderError(
            f"provider {name}: {url} answered an HTML page (status {status}), not the API's JSON; "
            "is the URL that of the API?"
        )
    try:
        body = json.loads(raw)
    except ValueError:
        raise ProviderError(
            f"provider {name}: {url} answered status {status} with something that is not JSON: {raw[:80]!r}"
        ) from None
    if status >= 400:
        raise ProviderError(f"provider {name}: {url} answered status {status}: {_message(body)}")
    return body


def _message(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])[:500]
        if "detail" in body:
            return str(body["detail"])[:500]
    return json.dumps(body)[:500]


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
