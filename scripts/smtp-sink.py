#!/usr/bin/env python3
"""An SMTP sink for the email channel's tests: accepts every message on a loopback port and
stores each one, exactly as received, as a file the tests read.

    smtp-sink.py --host 127.0.0.1 --port 10025 --dir /var/tmp/switchboard-mail/smtp

Each message becomes <dir>/<unix ns>-<seq>.eml, written to a temporary name and renamed,
so a reader never sees half a message. The SMTP envelope is prepended as
`X-Sink-Mail-From:` and `X-Sink-Rcpt-To:` headers (a test checks who it was sent to,
which the message headers alone do not say).

A recipient whose local part starts with `refuse` (refuse@example.com, refuse-1@…) is
refused with `550 5.1.1`, one starting with `defer` with `451 4.3.0`, so tests can check
how a server's permanent and transient refusals are reported.
"""

import argparse
import asyncio
import itertools
import os
import signal
import time

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.seq = itertools.count()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@", 1)[0].lower().startswith("refuse"):
            return f"550 5.1.1 <{address}>: recipient refused by the test sink"
        if address.split("@", 1)[0].lower().startswith("defer"):
            return f"451 4.3.0 <{address}>: try again later (test sink)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}-{next(self.seq):06d}.eml"
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        envelope_headers = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
            f"X-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        with open(tmp, "wb") as f:
            f.write(envelope_headers + content)
        os.chmod(tmp, 0o644)
        os.rename(tmp, os.path.join(self.directory, name))
        return "250 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=10025)
    p.add_argument("--dir", required=True)
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(
        Store(args.dir),
        hostname=args.host,
        port=args.port,
        # Messages up to 32 MiB: the tests send large attachments.
        data_size_limit=32 * 1024 * 1024,
    )
    controller.start()
    print(f"smtp-sink: listening on {args.host}:{args.port}, storing to {args.dir}", flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
