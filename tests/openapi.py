"""Checks an API answer against the OpenAPI schema: the response the schema declares for its path, method and
status must exist and its JSON must validate (OpenAPI 3.0's `nullable` read as JSON Schema's null type, and
`oneOf` as `anyOf`: drf-spectacular writes a field that may be blank as one of "empty" or its format, and ""
is both to a validator that checks no format such as `uri`)."""

import re

import jsonschema


def _json_schema(node):
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _json_schema(value) for key, value in node.items()}
    if "oneOf" in node:
        node["anyOf"] = node.pop("oneOf")
    if "$ref" in node:
        node["$ref"] = node["$ref"].replace("#/components/schemas/", "#/$defs/")
    if node.pop("nullable", False):
        if "type" in node and "enum" not in node:
            node["type"] = [node["type"], "null"]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


def operation(schema: dict, path: str, method: str) -> dict:
    """The operation of a concrete path (/api/v1/contacts/12/), the templates without a parameter tried first."""
    templates = sorted(schema["paths"], key=lambda template: ("{" in template, template))
    for template in templates:
        if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)), path):
            return schema["paths"][template][method.lower()]
    raise AssertionError(f"{path} is not in the schema")


def answer_problems(schema: dict, method: str, path: str, response) -> list[str]:
    """What in the answer the schema does not say: an undocumented status, or a body that does not validate."""
    responses = operation(schema, path.split("?")[0], method)["responses"]
    declared = responses.get(str(response.status_code))
    if declared is None:
        return [f"{method} {path}: {response.status_code} is not documented (only {', '.join(sorted(responses))})"]
    content = declared.get("content", {}).get("application/json")
    if content is None:
        return [] if not response.content else [f"{method} {path}: {response.status_code} has no JSON documented"]
    validator = jsonschema.Draft202012Validator(
        {"$defs": _json_schema(schema["components"]["schemas"]), **_json_schema(content["schema"])},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    return [
        f"{method} {path} {response.status_code} at /{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}"
        for error in validator.iter_errors(response.json())
    ]
