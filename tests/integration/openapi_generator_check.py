"""tests/integration/openapi_generator_check.py - did openapi-generator take
all of docs/openapi.yaml? test_openapi_client.c runs the generator's
`validate` and its Go client generator on the document, then this with the
document, the generated client's folder and the two logs.

The generator reports what it cannot express by logging and carrying on, so
the check reads its output the way a developer would read the client:

* validate said "No validation issues detected.";
* generate logged no WARN or ERROR line, but for two about the tool itself:
  its OpenAPI 3.1 support being in beta, and "Failed to get the schema
  name: null", which it logs once, naming nothing, when it meets a closed
  inline object (`additionalProperties: false`) inside another schema, as
  valid 3.1 and what the server does (a 12-line document whose one schema
  is an array of such objects draws it too);
* every operationId of the document is a method of an API service
  (`func (a *<Tag>APIService) <OperationId>Execute(`);
* every error answer of every operation (a status that is not 2xx with a
  JSON body) is decoded into a model of its own in that method
  (`StatusCode == <status>` then `var v <Model>`), and that model is a type
  of the client; so are the components/schemas named ...Error.

The lists come from the document itself, so an operation or an error added
there is checked without editing this. Prints one line per failure and
exits 1 when there is any; prints a summary line otherwise.
"""

import pathlib
import re
import sys

import yaml

TOOL_NOTICES = ("OpenAPI 3.1 support is still in beta", "Failed to get the schema name: null")
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def operations(doc):
    """(operationId, {status: response}) for each operation of the document."""
    responses = doc.get("components", {}).get("responses", {})
    for item in doc["paths"].values():
        for method, op in item.items():
            if method not in METHODS:
                continue
            answers = {}
            for status, answer in op["responses"].items():
                if "$ref" in answer:
                    answer = responses[answer["$ref"].rsplit("/", 1)[1]]
                answers[str(status)] = answer
            yield op["operationId"], answers


def error_statuses(answers):
    """The statuses of the operation's error answers that have a JSON body."""
    return sorted(s for s, a in answers.items()
                  if not s.startswith("2") and "application/json" in a.get("content", {}))


def log_failures(validate_log, generate_log):
    failures = []
    if "No validation issues detected." not in validate_log.read_text():
        failures.append(f"validate found issues (log: {validate_log})")
    for line in generate_log.read_text().splitlines():
        if re.search(r"\b(WARN|ERROR)\b", line) and not any(n in line for n in TOOL_NOTICES):
            failures.append(f"generate: {line.strip()}")
    return failures


def method_bodies(client):
    """Each generated API method's name to its source, up to the next func."""
    bodies = {}
    for api in sorted(client.glob("api_*.go")):
        parts = re.split(r"^(?=func )", api.read_text(), flags=re.M)
        for part in parts:
            m = re.match(r"func \(a \*\w+APIService\) (\w+)Execute\(", part)
            if m:
                bodies[m.group(1)] = part
    return bodies


def client_failures(doc, client):
    source = "\n".join(p.read_text() for p in sorted(client.glob("*.go")))
    types = set(re.findall(r"^type (\w+) ", source, flags=re.M))
    bodies = method_bodies(client)
    failures, errors = [], 0
    for op_id, answers in operations(doc):
        name = op_id[0].upper() + op_id[1:]
        body = bodies.get(name)
        if body is None:
            failures.append(f"{op_id}: no method {name} in the client")
            continue
        for status in error_statuses(answers):
            m = re.search(rf"StatusCode == {status} {{\s*var v (\w+)", body)
            if not m:
                failures.append(f"{op_id}: its {status} answer is decoded into no model")
            elif m.group(1) not in types:
                failures.append(f"{op_id}: its {status} model {m.group(1)} is not in the client")
            else:
                errors += 1
    for schema in doc.get("components", {}).get("schemas", {}):
        if schema.endswith("Error") and schema not in types:
            failures.append(f"components/schemas/{schema}: no model in the client")
    return failures, errors


def main():
    spec, client, validate_log, generate_log = map(pathlib.Path, sys.argv[1:5])
    doc = yaml.safe_load(spec.read_text())
    failures = log_failures(validate_log, generate_log)
    more, errors = client_failures(doc, client)
    failures += more
    for failure in failures:
        print(failure)
    if failures:
        sys.exit(1)
    print(f"ok  {sum(1 for _ in operations(doc))} operations, {errors} error answers "
          "with their models")


if __name__ == "__main__":
    main()
