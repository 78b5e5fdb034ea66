"""Every documented GET of API_Central answers what docs/openapi.yaml says (responses validated with jsonschema)."""
from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml

from common import messages as m
from test_central_api import OPENAPI, Api

SAMPLE_PATH_VALUES = {"cp_id": "CP1"}


def to_json_schema(node):
    """OpenAPI 3.0 schema -> JSON Schema: `nullable: true` becomes a null-able type; refs stay as they are."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
        else:  # a $ref or allOf: either that, or null
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="module")
def doc() -> dict:
    return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


def _validator(doc: dict, schema: dict) -> jsonschema.Draft7Validator:
    root = {"components": to_json_schema(copy.deepcopy(doc["components"])), **to_json_schema(schema)}
    return jsonschema.Draft7Validator(root)


def _documented_gets(doc: dict) -> list[str]:
    return [path for path, item in doc["paths"].items() if "get" in item]


def test_there_are_documented_gets_to_check(doc):
    assert {"/api/charging_points", "/api/charging_points/{cp_id}", "/api/supplies"} <= set(_documented_gets(doc))


def test_every_documented_get_answers_its_200_schema(doc):
    api = Api()
    supply_id = api.supply("alice", "CP1")  # a live supply makes the optional parts appear
    api.service.supply_started(m.SupplyStarted(supply_id, "CP1", None))
    checked = []
    for path in _documented_gets(doc):
        url = path.format(**SAMPLE_PATH_VALUES)
        if path == "/api/changes":
            url += "?timeout=0"
        response = api.client.get(url)
        assert response.status_code == 200, (url, response.get_data(as_text=True))
        schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        errors = sorted(_validator(doc, schema).iter_errors(response.get_json()), key=str)
        assert not errors, f"{url}: {errors[0].message} at {list(errors[0].absolute_path)}"
        checked.append(path)
    assert len(checked) == len(_documented_gets(doc))


@pytest.mark.parametrize("method, url, body", [
    ("get", "/api/charging_points/NOPE", None),
    ("get", "/api/supplies?status=bogus", None),
    ("post", "/api/charging_points", {"cp_id": 1}),
    ("delete", "/api/charging_points/NOPE", None),
    ("post", "/api/charging_points/NOPE/stop", None),
    ("get", "/api/changes?timeout=x", None),
])
def test_documented_errors_answer_the_error_schema(doc, method, url, body):
    response = getattr(Api().client, method)(url, json=body)
    assert 400 <= response.status_code < 500
    errors = list(_validator(doc, {"$ref": "#/components/schemas/Error"}).iter_errors(response.get_json()))
    assert not errors, errors[0].message
