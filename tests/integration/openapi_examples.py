"""openapi_examples.py SPEC - every request example of docs/openapi.yaml is
valid against the schema it illustrates (tests/integration/test_openapi.c).

Schemathesis sends the document's examples as they are, whether or not the
schema allows them, so a schema that refuses what the server accepts (a
reaction, once missing from SendMessageRequest) passes its run unseen. The
examples are requests the server accepts (test_openapi.c stores what they
name and Schemathesis' run holds them to a documented answer); this holds
the schema to them. Prints each example refused, with why, and exits 1 when
there is one.
"""

import sys

import jsonschema_rs
import yaml


def request_examples(spec):
    """(where, schema, value) of every requestBody example in spec."""
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            body = op.get("requestBody", {}) if isinstance(op, dict) else {}
            for media_type, content in body.get("content", {}).items():
                schema = content.get("schema")
                if schema is None:
                    continue
                for name, example in content.get("examples", {}).items():
                    where = f"{method.upper()} {path} {media_type} example {name}"
                    yield where, schema, example.get("value")
                if "example" in content:
                    yield f"{method.upper()} {path} {media_type} example", schema, content["example"]


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    refused = checked = 0
    for where, schema, value in request_examples(spec):
        # the example's schema with the document's components beside it,
        # so that its $refs ("#/components/...") resolve
        validator = jsonschema_rs.Draft202012Validator(
            {"allOf": [schema], "components": spec.get("components", {})})
        errors = [e.message for e in validator.iter_errors(value)]
        checked += 1
        if errors:
            refused += 1
            print(f"{where}: refused by its own schema: {'; '.join(errors)}")
    print(f"openapi_examples: {checked} request examples, {refused} refused by their schema")
    return 1 if refused or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
