"""Child process for the process-kill test of the local broker.

`send PATH QUEUE COUNT` sends numbered messages one at a time and prints `ack I SEQ` after each
send returned. `receive PATH QUEUE SECONDS` receives and completes, printing `received ID`
before and `completed ID` after each completion. Both flush every line, so the parent knows
exactly what was acknowledged when it SIGKILLs them.
"""

from __future__ import annotations

import sys
import time

from local.broker import LocalBroker
from shared.messaging.message import OutboundMessage


def send(path: str, queue: str, count: int) -> None:
    broker = LocalBroker(path)
    for i in range(count):
        message = OutboundMessage(body=str(i).encode(), message_id=f"m-{i}")
        [seq] = broker.send(queue, [message])
        print(f"ack {i} {seq}", flush=True)
    print("finished", flush=True)


def receive(path: str, queue: str, seconds: float) -> None:
    broker = LocalBroker(path)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not broker.wait_for_messages(queue, 0.2):
            continue
        for message in broker.receive(queue, max_messages=4):
            assert message.lock_token is not None
            print(f"received {message.message_id}", flush=True)
            broker.complete(queue, message.lock_token)
            print(f"completed {message.message_id}", flush=True)


def main(argv: list[str]) -> None:
    command, path, queue, amount = argv
    if command == "send":
        send(path, queue, int(amount))
    elif command == "receive":
        receive(path, queue, float(amount))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
