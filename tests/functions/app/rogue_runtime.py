"""A runtime that speaks the node's private channel wrongly on request (channel tests).

Run with the worker's environment (``STACKYARD_RUNTIME_FD``); says ``NEXT``, then for each
invocation does what the event's ``do`` asks: ``echo`` (a correct result), ``big`` (a result
frame beyond the limit, then stays usable), ``kind`` (an unknown frame kind), ``wrong-id``
(a result for another request id), ``truncated`` (a request id longer than its frame),
``close`` (closes its end and keeps running), ``half`` (half a frame, then exits 2).
"""

import json
import os
import socket
import sys
import time

from stackyard.functions import channel

sock = socket.socket(fileno=int(os.environ[channel.FD_ENV]))
buffer = b""


def read() -> tuple[int, bytes]:
    global buffer
    while (
        len(buffer) < channel.HEADER.size
        or len(buffer) < channel.HEADER.size + (channel.HEADER.unpack_from(buffer)[0])
    ):
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit(0)
        buffer += chunk
    length, kind = channel.HEADER.unpack_from(buffer)
    body = buffer[channel.HEADER.size : channel.HEADER.size + length]
    buffer = buffer[channel.HEADER.size + length :]
    return kind, body


sock.sendall(channel.frame(channel.NEXT, b""))
while True:
    kind, body = read()
    request_id, _, _, _, _, _, payload = channel.parse_invoke(body)
    what = json.loads(payload).get("do", "echo")
    if what == "echo":
        sock.sendall(channel.result_frame(channel.RESULT, request_id, payload))
    elif what == "big":
        size = channel.MAX_FRAME + 1
        sock.sendall(channel.HEADER.pack(size, channel.RESULT))
        block = b"x" * 65536
        while size > 0:
            sock.sendall(block[:size])
            size -= len(block)
    elif what == "kind":
        sock.sendall(channel.frame(99, b"?"))
    elif what == "wrong-id":
        sock.sendall(channel.result_frame(channel.RESULT, "not-" + request_id, b"{}"))
    elif what == "truncated":
        sock.sendall(channel.frame(channel.RESULT, channel.ID_HEAD.pack(500) + b"abc"))
    elif what == "close":
        sock.close()
        time.sleep(30)
    elif what == "half":
        sock.sendall(channel.result_frame(channel.RESULT, request_id, payload)[:7])
        os._exit(2)
