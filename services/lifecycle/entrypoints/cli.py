"""`leads`: run the service, run it on embedded servers, or write the contract documents."""

import argparse
import asyncio
import contextlib
import gc
import logging
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeAlias

from pydantic import SecretStr, TypeAdapter, ValidationError

from services.lifecycle import logs
from services.lifecycle.adapters.refusals import Refused
from services.lifecycle.settings import Settings

DEV_JWT_SECRET = "leads-dev-only-secret-never-use-in-production"
DEV_ERASURE_KEY = "leads-dev-only-erasure-key-never-use-in-production"
"""Signs tokens for `leads dev` when LEADS_JWT_SECRET is not set; `leads serve` never accepts it."""


Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as invalid:
        for line in _settings_errors(invalid):
            print(f"leads {args.command}: {line}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        return _run(args, settings)
    except Refused as refusal:
        # One line naming the setting at fault: no traceback to scroll through.
        logging.getLogger("leads").error(f"leads {args.command} cannot start: {refusal}")
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leads",
        description="Lead and referral lifecycle service. Settings come from LEADS_* variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_processes(commands)
    _add_token(commands)
    _add_kept_messages(
        commands,
        "dead-letters",
        help="list or replay messages parked on leads.dead-letter",
        description="Messages that kept failing for a reason no rule foresaw are parked on "
        "leads.dead-letter (and answered internal_error). List them, and replay them to "
        "their source topic once the cause is fixed.",
        listed="show what is parked: ids, places, error classes (never the values)",
        action=("replay", "publish parked messages back to their source topic, untouched"),
        one="replay this parked message (repeatable); default: every one not replayed yet",
    )
    _add_kept_messages(
        commands,
        "outbox",
        help="list or retry committed messages Kafka refused for good (set aside)",
        description="A committed message Kafka refuses for good (larger than the broker or "
        "the topic allows, not allowed by an ACL, against a policy) is set aside, so that "
        "the rest of its batch goes on. List them, and retry them once the cause is fixed: "
        "they go back to the outbox and the relay publishes them.",
        listed="show what is set aside: ids, topics, lead ids, errors (never the values)",
        action=("retry", "put rows set aside back in the outbox, for the relay to publish"),
        one="retry this row (repeatable); default: every row set aside",
    )
    _add_state(commands)
    _add_privacy(commands)
    docs = commands.add_parser(
        "docs",
        help="write the JSON Schemas and the AsyncAPI document",
        description="Write one JSON Schema per topic and the AsyncAPI document generated "
        "from the FastStream app.",
    )
    docs.add_argument("--out", type=Path, default=Path("docs/contract"), help="output folder")
    return parser


def _add_processes(commands: Commands) -> None:
    commands.add_parser(
        "serve",
        help="run the service against the Kafka and MongoDB named in LEADS_* settings",
        description="Run the lifecycle service against LEADS_KAFKA_BOOTSTRAP_SERVERS and "
        "LEADS_MONGODB_URI until interrupted.",
    )
    commands.add_parser(
        "scheduler",
        help="run the deadline worker: emit expiry, reminder and cool-down commands when due",
        description="Sweep MongoDB every LEADS_SWEEP_INTERVAL for due deadlines and publish "
        "them on leads.commands. Run as many replicas as you like (on one host, each with "
        "its own LEADS_SCHEDULER_HTTP_PORT): one holds the lease (LEADS_SCHEDULER_LEASE) "
        "and sweeps, another takes over when it dies.",
    )
    dev = commands.add_parser(
        "dev",
        help="run the service and the deadline worker on embedded Kafka and MongoDB servers",
        description="Start the embedded Kafka-compatible broker (Tansu) and MongoDB-compatible "
        "server (SecantusDB) on free loopback ports, print where they listen and run the "
        "service and the deadline worker on them until interrupted.",
    )
    dev.add_argument(
        "--demo",
        action="store_true",
        help="feed sample leads and partner actions and print what comes out; deadlines "
        "are shortened to seconds (unless set in LEADS_*) so an expiry happens before your eyes",
    )


def _add_token(commands: Commands) -> None:
    token = commands.add_parser(
        "token",
        help="print a bearer token for the read API",
        description="Print a JWT for the read API, signed with LEADS_JWT_SECRET (HS256). "
        "Without LEADS_JWT_SECRET it is signed with the development secret that only "
        "`leads dev` accepts.",
    )
    token.add_argument("--partner", required=True, help="the partner_id the token is for")
    token.add_argument(
        "--role",
        default="referrals_admin",
        help="mpn_partner_admin or referrals_admin (others are refused with 403)",
    )
    token.add_argument(
        "--ttl", help="how long it is valid, ISO 8601 (default LEADS_TOKEN_TTL, PT8H)"
    )


def _add_state(commands: Commands) -> None:
    state = commands.add_parser(
        "state",
        help="publish every stored lead's state on leads.state again",
        description="leads.state holds each lead's latest state (log-compacted). To fill a "
        "new or rebuilt topic, republish puts every stored lead's state in the outbox, page "
        "by page; the running service's relay publishes them. A stopped run resumes where "
        "it left off.",
    )
    actions = state.add_subparsers(dest="state", required=True, metavar="ACTION")
    republish = actions.add_parser("republish", help="every stored lead's state, again")
    republish.add_argument("--partner", help="only this partner's leads")
    republish.add_argument(
        "--restart", action="store_true", help="start over rather than resume a stopped run"
    )


def _add_privacy(commands: Commands) -> None:
    privacy = commands.add_parser(
        "privacy",
        help="a customer's right to erasure",
        description="Sends a customer's erasure request to privacy.requests: the running "
        "service erases their contact data from every lead of every partner (and every "
        "copy it holds), publishes lead.customer_erased per lead and "
        "privacy.erasure_completed once done, and keeps a proof without personal data.",
    )
    actions = privacy.add_subparsers(dest="privacy", required=True, metavar="ACTION")
    erase = actions.add_parser("erase", help="erase a customer, by e-mail, phone or lead")
    erase.add_argument("--email", help="the customer's e-mail (any case)")
    erase.add_argument("--phone", help="the customer's phone, in international form (+...)")
    erase.add_argument("--lead-id", help="a lead of the customer's")
    erase.add_argument("--request-id", help="the request's id (default: a new one)")
    actions.add_parser(
        "backfill",
        help="keys for leads stored before leads kept them (once, after upgrading)",
    )


def _add_kept_messages(
    commands: Commands,
    name: str,
    *,
    help: str,
    description: str,
    listed: str,
    action: tuple[str, str],
    one: str,
) -> None:
    """A command over messages kept aside: `list` them, and act on them (all, or --id)."""
    group = commands.add_parser(name, help=help, description=description)
    actions = group.add_subparsers(dest=name.replace("-", "_"), required=True, metavar="ACTION")
    actions.add_parser("list", help=listed)
    verb, verb_help = action
    actions.add_parser(verb, help=verb_help).add_argument(
        "--id", dest="ids", action="append", help=one
    )


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        return _serve(settings)
    if args.command == "scheduler":
        return _scheduler(settings)
    if args.command == "dev":
        return _dev(settings, demo=args.demo)
    if args.command == "token":
        return _token(settings, args.partner, args.role, args.ttl)
    if args.command == "dead-letters":
        from services.lifecycle.entrypoints import dead_letters

        if args.dead_letters == "list":
            return dead_letters.list_parked(settings)
        return dead_letters.replay(settings, args.ids)
    if args.command == "outbox":
        from services.lifecycle.entrypoints import set_aside

        if args.outbox == "list":
            return set_aside.list_rows(settings)
        return set_aside.retry(settings, args.ids)
    if args.command == "state":
        from services.lifecycle.entrypoints import state

        return state.republish(settings, args.partner, args.restart)
    if args.command == "privacy":
        from services.lifecycle.entrypoints import privacy

        if args.privacy == "backfill":
            return privacy.backfill(settings)
        return privacy.erase(settings, args.email, args.phone, args.lead_id, args.request_id)
    return _docs(settings, args.out)


def _settings_errors(invalid: ValidationError) -> list[str]:
    """Each invalid setting under its LEADS_* name (the value is not quoted: it may be
    a secret)."""
    return [
        (f"LEADS_{'_'.join(map(str, e['loc'])).upper()}: " if e["loc"] else "")
        + e["msg"].removeprefix("Value error, ")
        for e in invalid.errors()
    ]


def _serve(settings: Settings) -> int:
    from services.lifecycle import bootstrap
    from services.lifecycle.adapters.tokens import NoTokenKey
    from services.lifecycle.entrypoints.app import LifecycleApp

    try:
        app = LifecycleApp(settings)
    except NoTokenKey as missing:
        print(f"leads serve: the read API needs a token key: {missing}", file=sys.stderr)
        return 2
    except bootstrap.NoErasureKey as missing:
        print(f"leads serve: {missing}", file=sys.stderr)
        return 2
    _settle_heap()
    asyncio.run(app.run())
    return 0


def _settle_heap() -> None:
    """A long-running process: what start-up built (modules, clients, models) lives as
    long as it does, so it leaves the cycle collector's generations; and young objects
    are collected less often, so a busy consumer does not keep re-scanning a heap that
    holds thousands of recent leads (about a tenth of its CPU with the defaults)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def _token(settings: Settings, partner: str, role: str, ttl: str | None) -> int:
    from services.lifecycle.adapters.tokens import issue

    if settings.jwt_secret is None:
        print("signed with the development secret: only `leads dev` accepts it", file=sys.stderr)
        settings = with_dev_secret(settings)
    lifetime = TypeAdapter(timedelta).validate_python(ttl) if ttl else None
    print(issue(settings, partner, role, datetime.now(UTC), lifetime))
    return 0


def with_dev_secret(settings: Settings) -> Settings:
    """The development token secret and erasure key, where none is set (`leads dev`)."""
    dev = {
        "jwt_secret": settings.jwt_secret or SecretStr(DEV_JWT_SECRET),
        "erasure_key": settings.erasure_key or SecretStr(DEV_ERASURE_KEY),
    }
    return settings.model_copy(update=dev)


def _scheduler(settings: Settings) -> int:
    from services.lifecycle import bootstrap
    from services.lifecycle.entrypoints.scheduler import SchedulerWorker

    try:
        worker = SchedulerWorker(settings)
    except bootstrap.NoErasureKey as missing:
        print(f"leads scheduler: {missing}", file=sys.stderr)
        return 2
    _settle_heap()
    asyncio.run(worker.run())
    return 0


def _dev(settings: Settings, demo: bool) -> int:
    from services.dev_servers import embedded_servers
    from services.lifecycle.entrypoints.app import LifecycleApp
    from services.lifecycle.entrypoints.demo import DEMO_DEADLINES, PARTNER, run_demo, sign_in_link
    from services.lifecycle.entrypoints.scheduler import SchedulerWorker

    with embedded_servers() as servers:
        shortened = {k: v for k, v in DEMO_DEADLINES.items() if k not in settings.model_fields_set}
        embedded = servers.settings()
        if "kafka_fetch_max_wait" in settings.model_fields_set:
            embedded.pop("kafka_fetch_max_wait", None)  # the user's own wait wins
        settings = with_dev_secret(
            Settings.model_validate(
                {**settings.model_dump(), **(shortened if demo else {}), **embedded}
            )
        )
        print(
            f"Kafka (Tansu) listens on {servers.kafka_bootstrap_servers}\n"
            f"MongoDB (SecantusDB) listens on {servers.mongodb_uri}\n"
            f"The read API listens on http://{settings.http_host}:{settings.http_port} "
            "(OpenAPI at /docs); `leads token --partner P` makes a token for it.\n"
            f"The Leads page, signed in as {PARTNER}: {sign_in_link(settings)}\n"
            f"Topics have the prefix {settings.topic_prefix!r}. Ctrl-C stops everything.",
            flush=True,
        )
        service = LifecycleApp(settings)
        worker = SchedulerWorker(settings)
        service.faststream.after_startup(worker.start)
        service.faststream.on_shutdown(worker.stop)
        if demo:
            # The demo's own output is the point: keep the service's logs to warnings.
            logging.getLogger().setLevel(logging.WARNING)
            tasks: list[asyncio.Task[None]] = []

            async def start_demo() -> None:
                tasks.append(asyncio.create_task(run_demo(settings)))

            service.faststream.after_startup(start_demo)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(service.run())
    return 0


def _docs(settings: Settings, out: Path) -> int:
    from services.lifecycle.entrypoints.app import LifecycleApp
    from services.lifecycle.entrypoints.docs import write

    # The documents depend on no key; throwaway ones build the app.
    if settings.jwt_secret is None and settings.jwt_public_key is None:
        settings = settings.model_copy(update={"jwt_secret": SecretStr(secrets.token_hex())})
    if settings.erasure_key is None:
        settings = settings.model_copy(update={"erasure_key": SecretStr(secrets.token_hex())})

    async def build() -> list[Path]:
        return write(LifecycleApp(settings), out)

    for path in asyncio.run(build()):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
