"""The client address behind proxies: the header counts only from a trusted peer, read right to left."""

from __future__ import annotations

import ipaddress

from enchant_worker.api.client_address import client_address

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32")]


def test_an_untrusted_peer_is_the_client_whatever_its_headers_say():
    assert client_address("203.0.113.9", {"X-Forwarded-For": "1.2.3.4"}, TRUSTED) == "203.0.113.9"
    assert client_address("203.0.113.9", {"X-Forwarded-For": "1.2.3.4"}, []) == "203.0.113.9"


def test_a_trusted_peer_passes_the_right_most_untrusted_hop():
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.0.0.5"}
    assert client_address("10.1.2.3", headers, TRUSTED) == "198.51.100.7"
    assert client_address("10.1.2.3", {"X-Forwarded-For": "10.0.0.9, 10.0.0.5"}, TRUSTED) == "10.0.0.9"
    assert client_address("10.1.2.3", {"X-Real-IP": "198.51.100.8"}, TRUSTED, "X-Real-IP") == "198.51.100.8"
    assert client_address("10.1.2.3", {"X-Forwarded-For": "[2001:db9::1]:443"}, TRUSTED) == "2001:db9::1"
    assert client_address("2001:db8::5", {"X-Forwarded-For": "198.51.100.7:8080"}, TRUSTED) == "198.51.100.7"


def test_malformed_or_missing_headers_leave_the_peer():
    assert client_address("10.1.2.3", {}, TRUSTED) == "10.1.2.3"
    assert client_address("10.1.2.3", {"X-Forwarded-For": "1.2.3.4, unknown"}, TRUSTED) == "10.1.2.3"
    assert client_address("10.1.2.3", {"X-Forwarded-For": " , "}, TRUSTED) == "10.1.2.3"


def test_a_peer_that_is_not_an_ip_is_no_address():
    assert client_address("testclient", {"X-Forwarded-For": "1.2.3.4"}, TRUSTED) is None
    assert client_address(None, {}, TRUSTED) is None
    assert (
        client_address("::ffff:10.1.2.3", {"X-Forwarded-For": "198.51.100.7"}, ["10.0.0.0/8"])
        == "198.51.100.7"
    )


def test_trusted_proxies_are_read_from_the_environment_and_refused_when_wrong(monkeypatch):
    import pytest
    from pydantic import ValidationError

    from enchant_worker.config import Settings

    monkeypatch.setenv("ENCHANT_TRUSTED_PROXIES", '["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"]')
    settings = Settings()
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32"]
    assert (
        client_address("192.0.2.1", {"X-Forwarded-For": "198.51.100.7"}, settings.trusted_proxies)
        == "198.51.100.7"
    )
    for bad in ('["everyone"]', '["10.1.2.3/8"]'):  # a host address with a network's prefix is a typo
        monkeypatch.setenv("ENCHANT_TRUSTED_PROXIES", bad)
        with pytest.raises(ValidationError, match="trusted_proxies"):
            Settings()
    monkeypatch.delenv("ENCHANT_TRUSTED_PROXIES")
    with pytest.raises(ValidationError, match="client_ip_header"):
        Settings(client_ip_header="X-Forwarded-For: 1.2.3.4")
