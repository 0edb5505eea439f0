"""`make run`: start the whole local stack on fixed ports and wait for Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time

from devstack.stack import Stack


def main() -> int:
    stack = Stack(fixed_ports=True)
    print("starting local stack (moto, siteverify, DNS, chalice local, web)...", flush=True)
    stack.start(quiet=True)

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started from a script that ignored SIGINT
    print(
        f"\n  shop:         {stack.url}/\n"
        f"  mail viewer:  {stack.url}/_dev/mail\n"
        f"  API:          {stack.url}/api/catalog\n"
        f'  bot check:    the offline "Local test check" (see {stack.url}/config.json)\n'
        f"  local AWS:    {stack.moto_url}  (moto)\n"
        f"  logs:         .devstack/*.log\n\n"
        "Ctrl-C stops everything.",
        flush=True,
    )
    try:
        while True:
            dead = stack.dead()
            if dead:
                print(f"stopped unexpectedly: {', '.join(dead)} (see .devstack/)", flush=True)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
