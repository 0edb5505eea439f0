"""moto's server with each request handled atomically.

`python -m moto.server` handles requests on many threads without a lock around the backend
calls, so two concurrent conditional writes to the same DynamoDB item can both succeed —
something real DynamoDB never allows (conditional writes on one item are serialised). Our
idempotency and outbox leases rely on that guarantee, so the local stack and the tests run
moto behind one lock: still threaded for connections, one backend call at a time.

    python -m devstack.moto_server --port 4566
"""

from __future__ import annotations

import argparse
import threading
from typing import Any


def make_app() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    inner = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        with lock:
            # materialise the body inside the lock: the backend call happens while iterating
            return list(inner(environ, start_response))

    return app


def main() -> None:
    from werkzeug.serving import run_simple

    p = argparse.ArgumentParser()
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=4566)
    a = p.parse_args()
    run_simple(a.host, a.port, make_app(), threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
