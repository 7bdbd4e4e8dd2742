"""A real SMTP server for the mail tests (aiosmtpd): each message it accepts becomes one JSON
file in DIR, `<n>.json`, written whole (renamed into place) with its envelope, subject and
plain-text body, decoded. Prints "ready" once it listens; runs until killed.

    python smtp_sink.py PORT DIR
"""

import asyncio
import email
import email.policy
import itertools
import json
import os
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder):
        self.folder = folder
        # Numbering goes on from what the folder holds, so a restarted sink never overwrites.
        taken = [int(name.split(".")[0]) for name in os.listdir(folder) if name.endswith(".json")]
        self.numbers = itertools.count(max(taken, default=0) + 1)

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = message.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "body": part.get_content() if part is not None else "",
        }
        path = os.path.join(self.folder, f"{next(self.numbers)}.json")
        with open(path + ".tmp", "w") as out:
            json.dump(record, out)
        os.replace(path + ".tmp", path)
        return "250 OK"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    controller = Controller(Sink(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
