"""One cold start, in a fresh interpreter (run by bench/coldstart.py; prints one JSON line).

    python bench/cold_child.py app     # import app, GET /catalog, POST /orders
    python bench/cold_child.py empty DIR   # DIR/empty_app.py: a one-route Chalice app, GET /

Handlers are invoked the way Lambda does: `app(event, context)` with an API Gateway REST
proxy event, so no chalice.local / chalice.test machinery is imported.
"""

import time

T0 = time.perf_counter()

import json  # noqa: E402 - timing starts before any import
import resource  # noqa: E402
import sys  # noqa: E402


class Context:
    aws_request_id = "cold-start-bench"
    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15000


def event(method: str, path: str, body: str | None = None, headers: dict | None = None) -> dict:
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers or {},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": "/api" + path,
            "stage": "api",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def peak_rss_kb() -> int:
    """This process's peak RSS. /proc's VmHWM belongs to the current address space (fresh
    after exec); getrusage's ru_maxrss can carry over the parent's high-water mark."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def ms() -> float:
    return round((time.perf_counter() - T0) * 1000, 2)


def main() -> None:
    mode = sys.argv[1]
    out: dict = {"mode": mode}
    if mode == "empty":
        sys.path.insert(0, sys.argv[2])
        import empty_app  # type: ignore[import-not-found]

        out["import_ms"] = ms()
        r = empty_app.app(event("GET", "/"), Context())
        out["first_response_ms"] = ms()
        out["first_status"] = r["statusCode"]
    else:
        import app

        out["import_ms"] = ms()
        r = app.app(event("GET", "/catalog"), Context())
        out["first_response_ms"] = ms()
        out["first_status"] = r["statusCode"]
        body = json.loads(sys.argv[2])
        headers = {"content-type": "application/json", "idempotency-key": sys.argv[3]}
        r = app.app(event("POST", "/orders", json.dumps(body), headers), Context())
        out["first_order_ms"] = ms()
        out["order_status"] = r["statusCode"]
        if r["statusCode"] != 201:
            out["order_body"] = r["body"][:300]
    out["peak_rss_kb"] = peak_rss_kb()
    out["ru_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stderr.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
