"""The floor the pipeline bench compares the service with: a bare aiokafka loop that
consumes records, decodes their JSON and publishes JSON, with the service's own
producer settings, on the same broker. Prints its CPU time as JSON.

    python bench/bare_loop.py --bootstrap HOST:PORT --source T --target T --count N
"""

import argparse
import asyncio
import json
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def loop(bootstrap: str, source: str, target: str, count: int) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", compression_type="lz4", linger_ms=2
    )
    await consumer.start()
    await producer.start()
    try:
        handled, sends = 0, []
        cpu, wall = time.process_time(), time.perf_counter()
        while handled < count:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    value = json.loads(record.value or b"{}")
                    sends.append(
                        await producer.send(target, json.dumps(value).encode(), key=record.key)
                    )
                    handled += 1
        await asyncio.gather(*sends)
        return {
            "count": handled,
            "cpu_s": time.process_time() - cpu,
            "wall_s": time.perf_counter() - wall,
        }
    finally:
        await producer.stop()
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(loop(args.bootstrap, args.source, args.target, args.count))))


if __name__ == "__main__":
    main()
