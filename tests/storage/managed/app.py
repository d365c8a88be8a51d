"""A service for the managed-resources tests: ``PUT /<value>`` writes the value to the Redis of
``$REDIS_URL`` and the PostgreSQL of ``$DATABASE_URL``; ``GET /`` answers what both hold, and
the URLs it was given, as JSON."""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import redis

REDIS_URL = os.environ["REDIS_URL"]
DATABASE_URL = os.environ["DATABASE_URL"]


def pg(value: str | None) -> str | None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kv (k text PRIMARY KEY, v text)")
        if value is not None:
            conn.execute(
                "INSERT INTO kv VALUES ('key', %s) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                (value,),
            )
        row = conn.execute("SELECT v FROM kv WHERE k = 'key'").fetchone()
        return None if row is None else str(row[0])


class Handler(BaseHTTPRequestHandler):
    def answer(self, value: str | None) -> None:
        client = redis.Redis.from_url(REDIS_URL)
        if value is not None:
            client.set("stackyard-test-key", value)
        cached = client.get("stackyard-test-key")
        body = json.dumps(
            {
                "redis": None if cached is None else cached.decode(),
                "postgres": pg(value),
                "REDIS_URL": REDIS_URL,
                "DATABASE_URL": DATABASE_URL,
                "CACHE_TOO": os.environ.get("CACHE_TOO"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.answer(None)

    def do_PUT(self) -> None:
        self.answer(self.path.strip("/"))


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
