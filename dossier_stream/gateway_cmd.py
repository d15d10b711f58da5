"""Serve the HTTP ingestion gateway, and manage the agencies' API tokens.

Agency systems without a Kafka client POST their dossier events over HTTPS with their
agency's token; the gateway validates them against the contract, checks that each names
the token's agency, and answers only once the broker acknowledged every event. Tokens are
kept as SHA-256 hashes in DOSSIER_GATEWAY_TOKENS_FILE; `token add` shows a token once.
docs/gateway.md has the API, the formats and the status codes.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from common.errors import EXIT_USAGE, CommandError
from dossier_stream.listen import listening_socket
from gateway import token_file
from gateway.settings import GatewaySettings
from gateway.tokens import TokenBook, issue
from schemas.registry import AgencyRegistry

EXAMPLES = """\
examples:
  dossier-stream gateway token add --agency SO-XD --label "Sở Xây dựng one-stop shop"
  dossier-stream gateway token list
  dossier-stream gateway token revoke 3f9a1c07
  dossier-stream gateway serve                        # http://127.0.0.1:8077/v1/events
  dossier-stream gateway serve --host 0.0.0.0 --port 8443 \\
      --tls-cert /etc/dossier/gateway.crt --tls-key /etc/dossier/gateway.key

  curl -s -X POST http://127.0.0.1:8077/v1/events \\
      -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/x-ndjson' \\
      --data-binary @events.jsonl
"""


def configure(parser: argparse.ArgumentParser) -> None:
    settings = GatewaySettings()
    sub = parser.add_subparsers(dest="gateway_command", metavar="SUBCOMMAND", required=True)
    serve = sub.add_parser(
        "serve",
        help="serve POST /v1/events (uvicorn)",
        description="Serve the gateway until Ctrl-C. Kafka, its credentials and the signer "
        "come from the DOSSIER_* settings (docs/gateway.md).",
        epilog="example:\n  dossier-stream gateway serve --port 8077",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default=settings.gateway_host, help="address to listen on")
    serve.add_argument(
        "--port", type=int, default=settings.gateway_port, help="port to listen on (0: any)"
    )
    serve.add_argument("--topic", default=settings.events_topic, help="topic to publish to")
    serve.add_argument(
        "--tls-cert", type=Path, default=settings.gateway_tls_cert_file, help="PEM certificate"
    )
    serve.add_argument(
        "--tls-key", type=Path, default=settings.gateway_tls_key_file, help="PEM private key"
    )
    serve.add_argument("--registry", type=Path, default=None, help="agency registry JSON file")

    token = sub.add_parser(
        "token",
        help="add, list or revoke agency API tokens",
        description=f"The tokens file: {settings.gateway_tokens_file} "
        "(DOSSIER_GATEWAY_TOKENS_FILE). A running gateway reads it again when it changes.",
        epilog="examples:\n"
        "  dossier-stream gateway token add --agency SO-XD --label 'one-stop shop'\n"
        "  dossier-stream gateway token list\n"
        "  dossier-stream gateway token revoke 3f9a1c07",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        help="issue a token for an agency (printed once)",
        epilog="example:\n  dossier-stream gateway token add --agency 11311 --label 'Phường X'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("--agency", required=True, help="agency code from the agency registry")
    add.add_argument("--label", default="", help="who holds the token (for the administrator)")
    add.add_argument("--registry", type=Path, default=None, help="agency registry JSON file")
    listing = actions.add_parser(
        "list", help="the tokens (ids, agencies, labels; never the tokens)"
    )
    listing.add_argument("--json", action="store_true", help="as a JSON array")
    revoke = actions.add_parser(
        "revoke",
        help="revoke a token by its id",
        epilog="example:\n  dossier-stream gateway token revoke 3f9a1c07",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    revoke.add_argument("id", help="the token id (`token list`; the 8 digits after dsg_)")


def run(args: argparse.Namespace) -> int:
    settings = GatewaySettings()
    if args.gateway_command == "serve":
        return _serve(args, settings)
    path = settings.gateway_tokens_file
    if args.token_command == "list":
        return _list(token_file.load(path), path, as_json=args.json)
    with token_file.locked(path):
        return _change(args, path)


def _list(book: TokenBook, path: Path, *, as_json: bool) -> int:
    rows = [t.shown() for t in book.tokens]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        print(f"no tokens in {path}", file=sys.stderr)
    else:
        print(f"{'ID':<9} {'AGENCY':<10} {'CREATED (UTC)':<26} {'SHA-256':<10} LABEL")
        for r in rows:
            print(
                f"{r['id']:<9} {r['agency']:<10} {r['created_at']:<26} {r['sha256']:<10} "
                f"{r['label']}"
            )
    return 0


def _change(args: argparse.Namespace, path: Path) -> int:
    """`token add` or `token revoke`, under the tokens file's lock."""
    book = token_file.load(path)
    if args.token_command == "add":
        registry = _registry(args.registry)
        agency = registry.get(args.agency)
        if agency is None:
            raise CommandError(
                f"unknown agency code {args.agency!r}: not in the agency registry", EXIT_USAGE
            )
        token, entry = issue(
            agency.code, args.label, datetime.now(UTC), taken=(t.id for t in book.tokens)
        )
        token_file.save(path, book.add(entry))
        print(
            f"token {entry.id} for {agency.code} ({agency.name}) added to {path}; it is shown "
            "only this once, keep it secret:",
            file=sys.stderr,
        )
        print(token, flush=True)
        return 0
    try:
        book = book.revoke(args.id)
    except KeyError:
        raise CommandError(f"no token {args.id!r} in {path}") from None
    token_file.save(path, book)
    print(f"token {args.id} revoked", file=sys.stderr)
    return 0


def _registry(path: Path | None) -> AgencyRegistry:
    return AgencyRegistry.from_file(path) if path else AgencyRegistry.default()


def _serve(args: argparse.Namespace, settings: GatewaySettings) -> int:
    import uvicorn

    from gateway.app import create_app
    from gateway.sender import KafkaSender
    from gateway.token_file import TokenFile

    settings = settings.model_copy(
        update={
            "gateway_host": args.host,
            "gateway_port": args.port,
            "events_topic": args.topic,
            "gateway_tls_cert_file": args.tls_cert,
            "gateway_tls_key_file": args.tls_key,
        }
    )
    if (args.tls_cert is None) != (args.tls_key is None):
        raise CommandError("--tls-cert and --tls-key go together", EXIT_USAGE)
    registry = _registry(args.registry)
    tokens = TokenFile(settings.gateway_tokens_file)
    sock = listening_socket(args.host, args.port)
    sender = KafkaSender(settings)
    port = sock.getsockname()[1]
    scheme = "https" if args.tls_cert else "http"
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    signer = f"signed as {settings.signer}" if settings.signer_pair else "unsigned"
    print(
        f"gateway on {scheme}://{shown}:{port}/v1/events (Kafka {settings.kafka_bootstrap}, "
        f"topic {settings.events_topic}, {signer}; {len(tokens.book().tokens)} token(s) in "
        f"{settings.gateway_tokens_file}); API {scheme}://{shown}:{port}/docs; Ctrl-C stops it",
        flush=True,
    )
    config = uvicorn.Config(
        create_app(settings, sender, tokens.book, registry=registry),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
        ssl_keyfile=str(args.tls_key) if args.tls_key else None,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
