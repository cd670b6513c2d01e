"""Validates YAML config files against the config's JSON Schema with an implementation
independent of mcp-perfcheck (Python's jsonschema, installed by scripts/setup-peers.sh).

    .peers/venv/bin/python scripts/validate-config.py schema/perf.schema.json perf.yaml...

Prints one line per file (`ok FILE`, or `invalid FILE: at PATH: MESSAGE` for each error) and
exits 1 when any file is invalid, 2 when one cannot be read.
"""

import json
import sys

import jsonschema
import yaml


def main(schema_path, files):
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    invalid = False
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                document = yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as e:
            print(f"unreadable {path}: {e}")
            return 2
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        if not errors:
            print(f"ok {path}")
        for e in errors:
            invalid = True
            at = "/".join(str(p) for p in e.absolute_path) or "(top)"
            print(f"invalid {path}: at {at}: {e.message}")
    return 1 if invalid else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
