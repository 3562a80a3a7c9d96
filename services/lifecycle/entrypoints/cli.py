"""`leads`: run the service, run it on embedded servers, or write the contract documents."""

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from services.lifecycle import logs
from services.lifecycle.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="leads",
        description="Lead and referral lifecycle service. Settings come from LEADS_* variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
        "them on leads.commands. Run as many replicas as you like: one holds the lease "
        "(LEADS_SCHEDULER_LEASE) and sweeps, another takes over when it dies.",
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
    docs = commands.add_parser(
        "docs",
        help="write the JSON Schemas and the AsyncAPI document",
        description="Write one JSON Schema per topic and the AsyncAPI document generated "
        "from the FastStream app.",
    )
    docs.add_argument("--out", type=Path, default=Path("docs/contract"), help="output folder")

    args = parser.parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    if args.command == "serve":
        return _serve(settings)
    if args.command == "scheduler":
        return _scheduler(settings)
    if args.command == "dev":
        return _dev(settings, demo=args.demo)
    return _docs(settings, args.out)


def _serve(settings: Settings) -> int:
    from services.lifecycle.entrypoints.app import LifecycleApp

    asyncio.run(LifecycleApp(settings).run())
    return 0


def _scheduler(settings: Settings) -> int:
    from services.scheduler.worker import SchedulerWorker

    asyncio.run(SchedulerWorker(settings).run())
    return 0


def _dev(settings: Settings, demo: bool) -> int:
    from services.dev_servers import embedded_servers
    from services.lifecycle.entrypoints.app import LifecycleApp
    from services.lifecycle.entrypoints.demo import DEMO_DEADLINES, run_demo
    from services.scheduler.worker import SchedulerWorker

    with embedded_servers() as servers:
        shortened = {k: v for k, v in DEMO_DEADLINES.items() if k not in settings.model_fields_set}
        settings = Settings.model_validate(
            {
                **settings.model_dump(),
                **(shortened if demo else {}),
                "kafka_bootstrap_servers": servers.kafka_bootstrap_servers,
                "mongodb_uri": servers.mongodb_uri,
            }
        )
        print(
            f"Kafka (Tansu) listens on {servers.kafka_bootstrap_servers}\n"
            f"MongoDB (SecantusDB) listens on {servers.mongodb_uri}\n"
            f"Topics have the prefix {settings.topic_prefix!r}. Ctrl-C stops everything.",
            flush=True,
        )
        service = LifecycleApp(settings)
        worker = SchedulerWorker(settings)
        service.app.after_startup(worker.start)
        service.app.on_shutdown(worker.stop)
        if demo:
            # The demo's own output is the point: keep the service's logs to warnings.
            logging.getLogger().setLevel(logging.WARNING)
            tasks: list[asyncio.Task[None]] = []

            async def start_demo() -> None:
                tasks.append(asyncio.create_task(run_demo(settings)))

            service.app.after_startup(start_demo)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(service.run())
    return 0


def _docs(settings: Settings, out: Path) -> int:
    from services.lifecycle.entrypoints.app import LifecycleApp
    from services.lifecycle.entrypoints.docs import write

    async def build() -> list[Path]:
        return write(LifecycleApp(settings), out)

    for path in asyncio.run(build()):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
