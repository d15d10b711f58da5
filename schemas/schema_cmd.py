"""Export the event contract's JSON Schema, or check that the committed file is current.

Non-Python agency systems validate their events with this file before sending.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from schemas.events import event_json_schema

SCHEMA_FILE = Path(__file__).resolve().parent / "jsonschema" / "dossier-event.v1.schema.json"

EXAMPLES = """\
examples:
  dossier-stream schema export          # rewrite schemas/jsonschema/dossier-event.v1.schema.json
  dossier-stream schema export --out -         # print it
  dossier-stream schema check                  # exit 1 if the committed file is out of date
"""


def render() -> str:
    return json.dumps(event_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["export", "check"], help="export or check")
    parser.add_argument("--out", default=str(SCHEMA_FILE), help="file to write, or - (export)")


def run(args: argparse.Namespace) -> int:
    text = render()
    if args.action == "check":
        current = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
        if current != text:
            print(
                f"{SCHEMA_FILE} is out of date: run `dossier-stream schema export`", file=sys.stderr
            )
            return 1
        print(f"{SCHEMA_FILE} matches the models")
        return 0
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
