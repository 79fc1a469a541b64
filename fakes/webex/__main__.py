"""``python -m fakes.webex [--port 8090]``: the local Webex API standalone, to try ``bot.py serve`` against it.

It creates a bot, a person (alice@example.com) and a group space with both, prints the settings to export and
the person's token, and delivers signed webhook events to the targets ``bot.py webhooks sync`` registers, as
Webex does (``--no-deliver`` keeps them to itself).
"""

from __future__ import annotations

import argparse
import signal

from fakes.webex.local import LocalWebex


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fakes.webex", description="Loopback Webex API for Rollover.")
    parser.add_argument("--port", type=int, default=8090, help="port on 127.0.0.1 (default 8090; 0 = any free port)")
    parser.add_argument("--no-deliver", dest="deliver", action="store_false",
                        help="do not POST webhook events to the registered targetUrls")
    args = parser.parse_args(argv)
    server = LocalWebex(deliver_events=args.deliver)
    bot, bot_token = server.add_bot()
    alice = server.add_person("alice@example.com", "Alice Admin")
    group = server.add_room("SSO operations", "group", [alice])
    server.start(args.port)
    print(f"Local Webex listening on {server.base_url} (Ctrl+C to stop); bot {bot.display_name} <{bot.email}>, "
          f"person {alice.display_name} <{alice.email}>, group space {group.title!r}")
    exports = {"WEBEX_BASE_URL": server.base_url, "WEBEX_ACCESS_TOKEN": bot_token,
               "ALICE_TOKEN": server.issue_token(alice), "ROOM_ID": group.id, "BOT_ID": bot.id}
    for name, value in exports.items():
        print(f"export {name}={value}", flush=True)
    try:
        signal.pause()      # Ctrl+C; Event().wait() can die on 'release unlocked lock'
    except KeyboardInterrupt:
        print("stopping")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
