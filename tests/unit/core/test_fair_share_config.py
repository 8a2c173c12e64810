"""The fair-share settings of configs/tiers.toml: a weight or cap of 0 and an unknown tier are refused
with the file's line named; what the worker hands the lease."""

import pytest

from enchant_worker.errors import ConfigurationError
from enchant_worker.intake.tiers import check_overrides, load_tiers
from enchant_worker.queue.fairness import FairShare
from enchant_worker.worker.runner import _fair_share

GOOD = """# comment
[tiers.free]
fair_share_weight = 1
max_running_jobs = 4

[tiers.pro]
priority_floor = 3
fair_share_weight = 5
"""


def _write(tmp_path, text):
    path = tmp_path / "tiers.toml"
    path.write_text(text)
    load_tiers.cache_clear()
    return path


def test_the_repository_file_and_a_good_file_load(tmp_path):
    tiers = load_tiers(_write(tmp_path, GOOD))
    assert tiers["free"].max_running_jobs == 4 and tiers["pro"].fair_share_weight == 5
    assert tiers["enterprise"].max_running_jobs is None  # not set: no cap
    assert "max_running_jobs" not in tiers["enterprise"].limits()
    share = FairShare.from_tiers(tiers)
    assert share.params()["tier_names"] == ["enterprise", "free", "pro"]
    assert share.params()["tier_caps"] == [None, 4, None]


@pytest.mark.parametrize("key", ["fair_share_weight", "max_running_jobs"])
def test_a_zero_weight_or_cap_is_refused_naming_the_line(tmp_path, key):
    text = GOOD + f"[tiers.enterprise]\npriority_floor = 1\n{key} = 0\n"
    assert text.splitlines()[10].startswith(key)  # line 11
    with pytest.raises(ConfigurationError) as err:
        load_tiers(_write(tmp_path, text))
    message = str(err.value)
    assert "tiers.toml:11:" in message and f"{key}: must be at least 1, not 0" in message
    assert "[tiers.enterprise]" in message


def test_an_unknown_tier_is_refused_naming_its_line_and_the_known_ones(tmp_path):
    with pytest.raises(ConfigurationError) as err:
        load_tiers(_write(tmp_path, GOOD + "\n[tiers.platinum]\nfair_share_weight = 2\n"))
    assert "tiers.toml:10: [tiers.platinum]: unknown tier; tiers are free, pro, enterprise" in str(err.value)


def test_a_negative_or_fractional_weight_is_refused(tmp_path):
    with pytest.raises(
        ConfigurationError, match=r"tiers.toml:3: \[tiers.free\] fair_share_weight: must be a whole"
    ):
        load_tiers(_write(tmp_path, "[tiers.free]\n\nfair_share_weight = 1.5\n"))


def test_user_overrides_refuse_a_zero_weight_or_cap():
    with pytest.raises(ValueError, match="fair_share_weight: must be at least 1, not 0"):
        check_overrides({"fair_share_weight": 0})
    with pytest.raises(ValueError, match="max_running_jobs: must be at least 1, not 0"):
        check_overrides({"max_running_jobs": 0})
    assert check_overrides({"max_running_jobs": 2, "images_per_day": 0}) == {
        "max_running_jobs": 2,
        "images_per_day": 0,
    }


def test_the_worker_reads_the_tiers_or_leases_plainly_when_fairness_is_off(tmp_path):
    class Settings:
        queue_fair_share = True
        tiers_path = _write(tmp_path, GOOD)

    assert _fair_share(Settings()).weights["pro"] == 5
    Settings.queue_fair_share = False
    assert _fair_share(Settings()) is None
    Settings.queue_fair_share, Settings.tiers_path = (
        True,
        _write(tmp_path, "[tiers.free]\nmax_running_jobs = 0\n"),
    )
    with pytest.raises(ConfigurationError, match="tiers.toml:2:"):
        _fair_share(Settings())
    with pytest.raises(ValueError, match="at least 1"):
        FairShare({"free": 0})
