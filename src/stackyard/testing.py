"""Test helpers shipped with Stackyard: run a real node as a subprocess and talk to it.

    with NodeProcess(Path("examples/shop"), data_dir=tmp_path) as node:
        node.wait_ready()
        urllib.request.urlopen(node.gateway_url + "/orders")

The node runs ``python -m stackyard up`` with free loopback ports, in its own process group,
and is stopped with SIGTERM (then SIGKILL) on exit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from .serving import free_port

__all__ = ["NodeProcess", "free_port", "free_udp_port", "wait_until"]


def free_udp_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, timeout: float, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class NodeProcess:
    """A ``stackyard up`` subprocess on free ports; use as a context manager."""

    def __init__(
        self,
        stack: Path,
        *,
        data_dir: Path,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.stack = stack
        self.data_dir = data_dir
        self.gateway_port = free_port()
        self.control_port = free_port()
        self.dns_port = free_udp_port()
        self.env = {**os.environ, **(env or {})}
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.output_path = data_dir.parent / f"{data_dir.name}-node.out"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def start(self) -> NodeProcess:
        args = [
            sys.executable, "-m", "stackyard", "up", str(self.stack),
            "--port", str(self.gateway_port),
            "--control-port", str(self.control_port),
            "--dns-port", str(self.dns_port),
            "--data-dir", str(self.data_dir),
            *self.extra_args,
        ]  # fmt: skip
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        with self.output_path.open("wb") as out:
            self.process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        return self

    def output(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def health(self) -> tuple[int, Any]:
        return self.get_json(self.control_url + "/_stackyard/health")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the node's health answers 200. A node that could not listen because
        another process took one of its free ports in the meantime is started again on new
        ones (at most twice)."""
        retries = 2

        def ready() -> bool:
            nonlocal retries
            if self.process is not None and self.process.poll() is not None:
                output = self.output()
                if retries and "cannot listen on" in output:
                    retries -= 1
                    self.gateway_port, self.control_port = free_port(), free_port()
                    self.dns_port = free_udp_port()
                    self.start()
                    return False
                raise RuntimeError(f"node exited with {self.process.returncode}:\n{output}")
            try:
                return self.health()[0] == 200
            except OSError:
                return False

        try:
            wait_until(ready, timeout, interval=0.1, what="the node to be ready")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\nnode output:\n{self.output()}") from exc

    def status(self) -> Any:
        return self.get_json(self.control_url + "/_stackyard/status")[1]

    def instances(self, service: str) -> list[dict[str, Any]]:
        for entry in self.status()["services"]:
            if entry["name"] == service:
                return list(entry["instances"])
        raise KeyError(service)

    def aws_client(self, service: str, read_timeout: float = 10.0) -> Any:
        """A boto3 client (``s3``, ``dynamodb``, ``lambda``) of the node's control port, with
        the node's dummy credentials and no retries (boto3 is a test dependency)."""
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        config = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=read_timeout)
        return boto3.client(
            service,
            endpoint_url=self.control_url,
            aws_access_key_id="stackyard",
            aws_secret_access_key="stackyard",
            region_name="us-east-1",
            config=config,
        )

    @staticmethod
    def get_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Signal the node and wait; kill its whole process group if it does not exit in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
