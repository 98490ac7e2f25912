"""What every message of the wire format shares: the version, limits, ids, UTC times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

WIRE_VERSION: Literal[1] = 1
#: Additive changes within ``v`` 1 (docs/wire-format.md, "Revisions"): 2 added the clock
#: flags (``time_restamped``, ``time_guarded``, ``time_unknown``) and status fields.
WIRE_REVISION = 2
TOPIC_ROOT = "zonnewijk/v1"
#: Largest batch a gateway may send; keeps one MQTT message well below broker limits.
MAX_READINGS_PER_BATCH = 2000
#: Largest payload the collector will try to parse [bytes].
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(
            "timestamp must be UTC with an explicit offset (e.g. 2026-11-28T12:00:00Z)"
        )
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class Strict(BaseModel):
    """Base of every wire model: unknown keys refused, values frozen, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
