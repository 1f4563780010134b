"""Validate captured v1 responses (JSON on stdin: [{method, url, status, body}]) against this
venv's openai SDK types; prints v1_types' report."""

from __future__ import annotations

import json
import sys

import v1_types

for r in json.load(sys.stdin):
    if r["body"] and r["body"].lstrip().startswith("{"):
        v1_types.check(json.loads(r["body"]), f"{r['method']} {r['url']}")
print(json.dumps(v1_types.report()))  # noqa: T201 (the test reads it)
