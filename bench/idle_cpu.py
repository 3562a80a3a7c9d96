"""What an idle `leads serve` costs on the embedded servers, per fetch wait: the
consumer asks the broker again each time a wait ends with nothing to give.

    python bench/idle_cpu.py --waits 10,50,100 --seconds 10
"""

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.dev_servers import embedded_servers
from tests.e2e.drivers import ServiceProcess
from tests.servers import isolated_settings

SETTLE_S = 5.0
"""Start-up work (topics, indexes, the group join) left out of the measure."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", default="10,50,100", help="fetch waits to try, in ms")
    parser.add_argument("--seconds", type=float, default=10.0, help="idle time measured")
    args = parser.parse_args()
    with embedded_servers() as servers:
        for wait_ms in (int(text) for text in args.waits.split(",")):
            settings = isolated_settings(servers, "idle").model_copy(
                update={"kafka_fetch_max_wait": timedelta(milliseconds=wait_ms)}
            )
            service = ServiceProcess(settings)
            service.start()
            try:
                time.sleep(SETTLE_S)
                before, started = service.cpu_seconds(), time.monotonic()
                time.sleep(args.seconds)
                used = service.cpu_seconds() - before
                share = 100 * used / (time.monotonic() - started)
                print(f"fetch wait {wait_ms:>4} ms   idle CPU {share:4.1f} % of a core")
            finally:
                service.stop()


if __name__ == "__main__":
    main()
