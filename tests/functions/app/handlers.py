"""Handlers used by the functions tests (run in real worker processes)."""

import json
import os
import time

INITS = 0
INITS += 1
PID = os.getpid()
print(f"module initialised in {PID}")


def hello(event, context):
    print("hello handler", json.dumps(event))
    return {"hello": event.get("name", "world"), "pid": PID, "inits": INITS}


def boom(event, context):
    raise ValueError("something bad happened")


def sleepy(event, context):
    time.sleep(event.get("seconds", 10))
    return {"slept": event.get("seconds", 10)}


def crash(event, context):
    os._exit(3)


def hog(event, context):
    chunks = []
    for _ in range(event.get("mb", 1024)):
        chunks.append(bytearray(1024 * 1024))
        if event.get("slow"):
            time.sleep(0.002)
    return {"allocated": len(chunks)}


def big_alloc(event, context):
    data = bytearray(event.get("mb", 2048) * 1024 * 1024)
    return {"allocated": len(data)}


def info(event, context):
    identity = context.identity
    client = context.client_context
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "identity": [identity.cognito_identity_id, identity.cognito_identity_pool_id],
        "client_custom": client.custom if client else None,
        "env": {
            key: os.environ.get(key)
            for key in (
                "AWS_LAMBDA_FUNCTION_NAME",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_LAMBDA_FUNCTION_VERSION",
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "AWS_LAMBDA_RUNTIME_API",
                "AWS_REGION",
                "_HANDLER",
                "LAMBDA_TASK_ROOT",
                "STACKYARD_URL",
                "MY_SETTING",
            )
        },
    }


def record(event, context):
    """Append the event to $RECORD_FILE (after ``delay`` s); fail while $FAIL_FILE exists."""
    if isinstance(event, dict) and event.get("delay"):
        time.sleep(event["delay"])
    with open(os.environ["RECORD_FILE"], "a") as handle:
        handle.write(json.dumps(event) + "\n")
    if os.path.exists(os.environ.get("FAIL_FILE", "/nonexistent")):
        raise RuntimeError("failing on purpose")
    return "recorded"


def trace(event, context):
    """What a handler sees of the trace: ``_X_AMZN_TRACE_ID`` and the event's traceparent."""
    headers = event.get("headers") or {} if isinstance(event, dict) else {}
    lowered = {k.lower(): v for k, v in headers.items()}
    return {
        "statusCode": 200,
        "body": json.dumps(
            {
                "xray": os.environ.get("_X_AMZN_TRACE_ID"),
                "traceparent": lowered.get("traceparent"),
                "b3": lowered.get("b3"),
            }
        ),
    }


def huge(event, context):
    """A result of ``mb`` MiB (beyond the runtime's limit when above 16)."""
    return "x" * (event.get("mb", 17) * 1024 * 1024)


def runtime_env(event, context):
    """The channel as the handler sees it: its variable (gone) and the Unix sockets it holds
    besides its stdout and stderr (and copies of them)."""
    import socket
    import stat

    stdio = {os.fstat(fd).st_ino for fd in (1, 2)}
    unix = []
    for fd in range(3, 256):
        try:
            info = os.fstat(fd)
        except OSError:
            continue
        if not stat.S_ISSOCK(info.st_mode) or info.st_ino in stdio:
            continue
        sock = socket.socket(fileno=os.dup(fd))
        if sock.family == socket.AF_UNIX:
            unix.append({"fd": fd, "inheritable": os.get_inheritable(fd)})
        sock.close()
    return {"fd_env": os.environ.get("STACKYARD_RUNTIME_FD"), "unix": unix}


def policy(event, context):
    """The scheduling policy of this worker and of a child process it starts."""
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {"worker": os.sched_getscheduler(0), "child": int(child.stdout)}
