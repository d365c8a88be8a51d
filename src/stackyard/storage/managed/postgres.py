"""A PostgreSQL server the node runs for a declared database: initdb/postgres from the system
(PATH, then ``/usr/lib/postgresql/<version>/bin``), its cluster in
``<data dir>/databases/<name>/data``, trust authentication on the loopback port kept across
restarts, and a database named after the resource. PostgreSQL refuses to run as root: a node
running as root runs initdb and postgres as the ``postgres`` OS user.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import stat
import sys
from pathlib import Path
from typing import Any

from .errors import ManagedError, MissingBinary
from .processes import ManagedServer, ServerProcess, run, tcp_open

PG_LIB = Path("/usr/lib/postgresql")
START_TIMEOUT = 60.0
SUPERUSER = "postgres"
# drops root for the postgres OS user, then becomes the program (same pid): uvloop's
# subprocess_exec has no user=/group=
_AS_USER = "import os,sys;os.setgroups([]);os.setgid(int(sys.argv[2]));os.setuid(int(sys.argv[1]));os.execv(sys.argv[3],sys.argv[3:])"  # noqa: E501


def find_bin_dir() -> Path:
    """The folder holding initdb and postgres: PATH first, then the newest Debian version."""
    candidates = []
    if found := shutil.which("initdb"):
        candidates.append(Path(found).resolve().parent)
        candidates.append(Path(found).parent)
    versions = sorted(PG_LIB.glob("*/bin"), key=_version, reverse=True)
    for folder in [*candidates, *versions]:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise MissingBinary("PostgreSQL (initdb, postgres)", "postgresql", f"PATH and {PG_LIB}/*/bin")


def _version(folder: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in folder.parent.name.split(".") if p.isdigit())


def _tool(bin_dir: Path, name: str) -> str | None:
    return str(bin_dir / name) if (bin_dir / name).is_file() else shutil.which(name)


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) of the ``postgres`` user when the node is root, else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise ManagedError(
            "PostgreSQL refuses to run as root and there is no 'postgres' user to run it as: "
            "create one (useradd --system postgres) or run the node as another user"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _check_reachable(folder: Path, uid: int, gid: int) -> None:
    for parent in reversed(folder.parents):
        info = parent.stat()
        mode = info.st_mode
        ok = mode & stat.S_IXOTH or (info.st_uid == uid and mode & stat.S_IXUSR)
        if not (ok or (info.st_gid == gid and mode & stat.S_IXGRP)):
            raise ManagedError(
                f"PostgreSQL runs as the 'postgres' user (the node runs as root), which cannot "
                f"enter {parent}: allow it (chmod o+x {parent}) or choose another --data-dir"
            )


class ManagedPostgres(ManagedServer):
    """``databases.<name>`` with no ``url``: one postgres server process."""

    engine = "postgres"

    def __init__(self, name: str, folder: Path, host: str = "127.0.0.1") -> None:
        super().__init__(name, folder, host)
        self.pgdata = folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{self.name}"

    async def start(self) -> None:
        bin_dir = find_bin_dir()
        owner = _run_as()
        await self._prepare(self.pgdata / "postmaster.pid", "postgres", signal.SIGINT)
        if not (self.pgdata / "PG_VERSION").is_file():
            await self._initdb(bin_dir, owner)
        elif owner is not None:
            _check_reachable(self.pgdata, *owner)
        args = [
            str(bin_dir / "postgres"),
            "-D", str(self.pgdata),
            "-p", str(self.port),
            "-c", f"listen_addresses={self.host}",
            "-c", "unix_socket_directories=",
        ]  # fmt: skip
        self.process = await ServerProcess.spawn(
            _as(owner, args), log=self.folder / "postgres.log", what=f"database {self.name!r}",
            cwd=self.folder,
        )  # fmt: skip
        await self.process.wait_ready(lambda: self._ready(bin_dir), START_TIMEOUT)
        await self._create_database(bin_dir)

    async def stop(self) -> None:
        """SIGINT: PostgreSQL's fast shutdown (clients disconnected, a checkpoint written)."""
        if self.process is not None:
            await self.process.stop(signal.SIGINT, 30.0)

    async def _initdb(self, bin_dir: Path, owner: tuple[int, int] | None) -> None:
        if self.pgdata.exists():  # an initdb that did not finish
            await asyncio.to_thread(shutil.rmtree, self.pgdata)
        self.pgdata.mkdir(mode=0o700)
        if owner is not None:
            _check_reachable(self.pgdata, *owner)
            os.chown(self.pgdata, *owner)
        args = [
            str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER,
            "--auth=trust", "--encoding=UTF8", "--locale=C",
        ]  # fmt: skip
        code, output = await run(_as(owner, args), what=f"database {self.name!r}", cwd=self.pgdata)
        if code != 0:
            raise ManagedError(f"database {self.name!r}: initdb failed ({code}):\n{output[-2000:]}")

    async def _ready(self, bin_dir: Path) -> bool:
        isready = _tool(bin_dir, "pg_isready")
        if isready is None:
            return await tcp_open(self.host, self.port)
        args = [isready, "-q", "-h", self.host, "-p", str(self.port), "-U", SUPERUSER]
        code, _ = await run(args, what="pg_isready", **_client_env())
        return code == 0

    async def _create_database(self, bin_dir: Path) -> None:
        psql = _tool(bin_dir, "psql")
        if psql is None:
            raise MissingBinary("psql", "postgresql-client", f"PATH and {bin_dir}")
        base = [psql, "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres"]
        base += ["-v", "ON_ERROR_STOP=1", "-tA", "-c"]
        name = self.name.replace("'", "''")
        what = f"database {self.name!r}"
        query = f"SELECT 1 FROM pg_database WHERE datname = '{name}'"
        code, output = await run([*base, query], what=what, **_client_env())
        if code == 0 and output.strip() != "1":
            quoted = '"' + self.name.replace('"', '""') + '"'
            code, output = await run(
                [*base, f"CREATE DATABASE {quoted}"], what=what, **_client_env()
            )
        if code != 0:
            raise ManagedError(f"{what}: cannot create the database: {output.strip()}")


def _as(owner: tuple[int, int] | None, args: list[str]) -> list[str]:
    if owner is None:
        return args
    return [sys.executable, "-c", _AS_USER, str(owner[0]), str(owner[1]), *args]


def _client_env() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return {"env": env}
