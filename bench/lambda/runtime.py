"""A minimal AWS Lambda custom runtime for Python: the Runtime API loop, as small as it gets.

Imports the handler named by _HANDLER (module.function), then forever: GET the next event, call
the handler, POST its result (or the error). Keeps one HTTP connection to the Runtime API.
"""
import http.client
import importlib
import json
import os
import sys
import traceback

host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
api = http.client.HTTPConnection(host, int(port or 80))
PREFIX = "/2018-06-01/runtime"


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    api.request(method, PREFIX + path, body=data, headers={"Content-Type": "application/json"})
    response = api.getresponse()
    return response, response.read()


def failure(exc):
    return {"errorType": type(exc).__name__, "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc)}


sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT") or os.path.dirname(os.path.abspath(__file__)))
try:
    module, _, function = os.environ.get("_HANDLER", "handler.handler").rpartition(".")
    handler = getattr(importlib.import_module(module), function)
except Exception as exc:  # reported to Lambda, then the sandbox is discarded
    call("POST", "/init/error", failure(exc))
    sys.exit(1)

while True:
    response, payload = call("GET", "/invocation/next")
    request_id = response.getheader("Lambda-Runtime-Aws-Request-Id")
    context = {"aws_request_id": request_id,
               "deadline_ms": int(response.getheader("Lambda-Runtime-Deadline-Ms") or 0),
               "invoked_function_arn": response.getheader("Lambda-Runtime-Invoked-Function-Arn")}
    try:
        result = handler(json.loads(payload), context)
    except Exception as exc:
        call("POST", f"/invocation/{request_id}/error", failure(exc))
    else:
        call("POST", f"/invocation/{request_id}/response", result)
