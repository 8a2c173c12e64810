"""API versions and the features each serves: the seed's `API_VERSIONS` and `validateAPIVersion`.

A route belongs to a feature. Under a version without that feature the route answers 404 naming the
versions that have it; a deprecated version still answers but adds `Deprecation` and `Sunset` headers;
past its sunset date it answers 410; an unknown version answers 404 listing the supported ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any

BASIC_GENERATION = "basic_generation"
SCENE_EXTRACTION = "scene_extraction"
LORA_TRAINING = "lora_training"
COLLABORATION = "collaboration"


@dataclass(frozen=True)
class VersionInfo:
    deprecated: bool = False
    sunset_date: date | None = None
    supported_features: tuple[str, ...] = field(default_factory=tuple)


API_VERSIONS: dict[str, VersionInfo] = {
    "v1": VersionInfo(supported_features=(BASIC_GENERATION, SCENE_EXTRACTION)),
    "v2": VersionInfo(supported_features=(BASIC_GENERATION, SCENE_EXTRACTION, LORA_TRAINING, COLLABORATION)),
}

# Job types that need a feature beyond basic generation (others are basic_generation).
JOB_TYPE_FEATURES = {
    "train_lora": LORA_TRAINING,
    "extract_scenes": SCENE_EXTRACTION,
    "analyze_story": SCENE_EXTRACTION,
}

_VERSION_SEGMENT = re.compile(r"^v\d+$")


def validate_api_version(version: str, versions: Mapping[str, VersionInfo] = API_VERSIONS) -> bool:
    """The seed's validateAPIVersion: the version exists and is not deprecated."""
    info = versions.get(version)
    return info is not None and not info.deprecated


class Versions:
    """The versions one app serves (tests pass their own table to exercise deprecation)."""

    def __init__(self, table: Mapping[str, VersionInfo] = API_VERSIONS):
        self.table = dict(table)

    @property
    def names(self) -> list[str]:
        return sorted(self.table, key=lambda v: int(v[1:]))

    def supports(self, version: str, feature: str) -> bool:
        return feature in self.table[version].supported_features

    def having(self, feature: str) -> list[str]:
        return [v for v in self.names if self.supports(v, feature)]

    def feature_missing_message(self, version: str, feature: str, what: str) -> str:
        having = self.having(feature)
        where = f"use {' or '.join('/' + v for v in having)}" if having else "no version serves it"
        return f"{what} is part of the {feature} feature, which API {version} does not have; {where}"

    def unknown_path_message(self, path: str) -> str:
        first = path.strip("/").split("/", 1)[0]
        if _VERSION_SEGMENT.match(first) and first not in self.table:
            return f"API version {first} does not exist; supported versions: {', '.join(self.names)}"
        return f"no route {path}; see /docs for the routes of each version ({', '.join(self.names)})"

    def headers(self, version: str) -> dict[str, str]:
        """Deprecation and Sunset headers (RFC 9745, RFC 8594) for a deprecated version."""
        info = self.table[version]
        if not info.deprecated:
            return {}
        headers = {"Deprecation": "true"}
        if info.sunset_date:
            sunset = datetime(info.sunset_date.year, info.sunset_date.month, info.sunset_date.day, tzinfo=UTC)
            headers["Sunset"] = format_datetime(sunset, usegmt=True)
        newer = [v for v in self.names if not self.table[v].deprecated]
        if newer:
            headers["Link"] = f'</{newer[-1]}>; rel="successor-version"'
        return headers

    def past_sunset(self, version: str, today: date | None = None) -> bool:
        sunset = self.table[version].sunset_date
        return sunset is not None and (today or datetime.now(UTC).date()) >= sunset

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "version": v,
                "deprecated": i.deprecated,
                "sunset_date": i.sunset_date.isoformat() if i.sunset_date else None,
                "supported_features": list(i.supported_features),
                "valid": validate_api_version(v, self.table),
            }
            for v, i in ((v, self.table[v]) for v in self.names)
        ]
