"""A throw-away PostgreSQL cluster for tests (Debian's postgresql binaries).

`pg_cluster` (session scope) runs initdb into a temp folder and pg_ctl on a free loopback
port, as the `postgres` user when the tests run as root (PostgreSQL refuses root), and stops
and removes it afterwards. Tests that cannot have one (no binaries; root without a
`postgres` user) are skipped with the reason. `pg_dsn` gives each test a fresh database.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid

import pytest

from realserver import free_port

psycopg = pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")


def _bin_dir() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(found)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(versions[-1]) if versions else None


class Cluster:
    def __init__(self, bin_dir: str, run_as: str | None):
        self.bin_dir = bin_dir
        self.run_as = run_as
        self.port = free_port()
        self.base = tempfile.mkdtemp(prefix="cliproxy-pg-")
        self.data = os.path.join(self.base, "data")
        if run_as:
            user = pwd.getpwnam(run_as)
            os.chown(self.base, user.pw_uid, user.pw_gid)

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [os.path.join(self.bin_dir, tool), *args]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.start()

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.base, "log"), "-o", opts, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def dsn(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster():
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL binaries (pg_ctl) on this machine: install Debian's postgresql, "
                    "or run ./scripts/test with CLIPROXY_MGMT_TEST_INSTALL=1")
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user: PostgreSQL refuses to run as root")
        run_as = "postgres"
    cluster = Cluster(bin_dir, run_as)
    try:
        cluster.init()
    except subprocess.CalledProcessError as exc:
        cluster.remove()
        pytest.skip(f"cannot start a PostgreSQL cluster: {exc.stderr.strip()[-300:]}")
    yield cluster
    cluster.remove()


@pytest.fixture
def pg_dsn(pg_cluster) -> str:
    return pg_cluster.create_database()
