"""The JSON Schema of every message, generated from the models (docs/wire-format.schema.json)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from zonnewijk_wire.gateway import DeviceInfo, GatewayStatus
from zonnewijk_wire.meter import MeterBatch
from zonnewijk_wire.readings import ReadingsBatch


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of every message, generated from the models."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Zonnewijk wire format v1",
        "oneOf": [
            {"$ref": "#/$defs/ReadingsBatch"},
            {"$ref": "#/$defs/MeterBatch"},
            {"$ref": "#/$defs/GatewayStatus"},
            {"$ref": "#/$defs/DeviceInfo"},
        ],
        "$defs": _collect_defs(ReadingsBatch, MeterBatch, GatewayStatus, DeviceInfo),
    }


def _collect_defs(*models: type[BaseModel]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/$defs/{model}", mode="validation")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
    return defs
