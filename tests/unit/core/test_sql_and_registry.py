import pytest

from enchant_worker.config import Settings
from enchant_worker.errors import ConfigurationError, InvalidJob
from enchant_worker.handlers import default_registry, noop
from enchant_worker.sql import _parse, queries
from enchant_worker.worker.registry import Handler, Registry


def test_named_blocks_parse():
    blocks = _parse("-- one --\n-- says what\nSELECT 1\n\n-- two --\nSELECT 2\n")
    assert blocks == {"one": "-- says what\nSELECT 1", "two": "SELECT 2"}


def test_every_block_says_what_it_does():
    for name, body in queries().items():
        assert body.startswith("-- "), f"SQL block {name} has no description line"


def test_unknown_job_type_is_refused_with_the_known_ones_listed():
    registry = Registry([noop.HANDLER])
    with pytest.raises(ConfigurationError, match="no handler for job type.*paint.*known: noop"):
        registry.select(["paint"])


def test_handlers_module_registers_its_handlers():
    registry = default_registry(plugins=False, module="tests.support.counting_handlers")
    assert "count" in registry and "noop" in registry


def test_bad_handlers_module_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="cannot import handlers module 'no.such.module'"):
        default_registry(plugins=False, module="no.such.module")


def test_registry_refuses_non_handlers():
    with pytest.raises(ConfigurationError):
        Registry().register(object())  # type: ignore[arg-type]
    Registry().register(Handler("x", lambda ctx: None))


@pytest.mark.parametrize("bad", [-1, "3", True, 1e9, None])
def test_noop_validation_names_the_field(bad):
    with pytest.raises(InvalidJob, match="seconds: must be a number between 0 and 3600"):
        noop.validate({"seconds": bad})


def test_settings_refuse_heartbeat_slower_than_lease():
    with pytest.raises(ValueError, match="HEARTBEAT_SECONDS.*must be below.*LEASE_SECONDS"):
        Settings(lease_seconds=5, heartbeat_seconds=10)
