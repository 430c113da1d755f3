"""Deleting several auth files when the storage refuses some of them part-way.

A batch delete answers for each name: 207 `partial` with `deleted`/`files` exactly the files
removed and `failed` naming the others, each with the error its one-name delete answers.
`?all=true` answers the storage's failure with `deleted`: how many were removed all the same.

Real PostgreSQL (tests/pg.py) and two real instances: a trigger makes the database refuse
the delete of one row, deterministically, with the error class a busy or failing server gives.
"""

from __future__ import annotations

import itertools
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from pg import pg_cluster, pg_dsn, psycopg  # noqa: F401 - fixtures
from realserver import session
from test_pgstore import pair, servers, wait_for  # noqa: F401 - fixtures

NAMES = ["a.json", "b.json", "c.json", "d.json", "e.json"]
REFUSED = "c.json"

# SQLSTATE the trigger raises -> what the one-name delete answers (status, error prefix).
# 55P03 lock_not_available: the database is there, this row is not to be had now (503);
# 57P01 admin_shutdown: the instance takes the database for lost and fails the next writes
# fast until it reaches it again (503 for c.json, and for a varying number of the names after it);
# P0001, a plain RAISE: no storage error the server knows (500, as for any unexpected error).
REFUSALS = {
    "55P03": (503, "storage unavailable: "),
    "57P01": (503, "storage unavailable: "),
    "P0001": (500, "internal server error"),
}


def refuse_deletes_of(dsn: str, name: str, sqlstate: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"""CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'the delete of % is refused', OLD.id USING ERRCODE = '{sqlstate}'; END $$""")
        conn.execute(f"""CREATE TRIGGER refuse_delete BEFORE DELETE ON auth_store FOR EACH ROW
            WHEN (OLD.id = '{name}') EXECUTE FUNCTION refuse_delete()""")


def rows(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM auth_store ORDER BY id")]


def listed(s, srv) -> list[str]:
    return sorted(f["name"] for f in s.get(srv.url("/auth-files"), timeout=30).json()["files"])


def mirrored(srv) -> list[str]:
    return sorted(p.name for p in srv.root.joinpath("pgstore/auths").glob("*.json"))


def upload_all(s, a, b) -> None:
    for name in NAMES:
        assert s.post(a.url(f"/auth-files?name={name}"), json={"type": "claude"}, timeout=30).status_code == 200
    wait_for(lambda: listed(s, b) == NAMES, timeout=10)


_retries = itertools.count(10)


def wait_online(s, srv) -> None:
    """Until the instance writes again (after a refusal it took for a lost database): a config
    write that changes something, so that it reaches the database."""
    wait_for(lambda: s.put(srv.url("/request-retry"), json={"value": next(_retries)},
                           timeout=30).status_code == 200, timeout=30)


def one_name_answer(s, a, pg_dsn, sqlstate):
    """The one-name delete of the refused file: its status and error; nothing changed."""
    r = s.delete(a.url(f"/auth-files?name={REFUSED}"), timeout=30)
    assert (r.status_code, r.json()["error"][:len(REFUSALS[sqlstate][1])]) == REFUSALS[sqlstate], r.text
    assert rows(pg_dsn) == NAMES
    wait_online(s, a)
    return r.json()["error"]


@contextmanager
def refused_one(pair, pg_dsn, sqlstate):
    """A session, instances A and B with NAMES uploaded and the database refusing the delete
    of REFUSED, and the error that one-name delete answers."""
    a, b = pair
    with session() as s:
        upload_all(s, a, b)
        refuse_deletes_of(pg_dsn, REFUSED, sqlstate)
        yield s, a, b, one_name_answer(s, a, pg_dsn, sqlstate)


def assert_everyone_agrees(s, a, b, pg_dsn, remaining: list[str]) -> None:
    """The database, A's listing and mirror, and (once it followed) B's listing show the same."""
    assert rows(pg_dsn) == remaining
    assert listed(s, a) == remaining
    assert mirrored(a) == remaining
    wait_for(lambda: listed(s, b) == remaining, timeout=10)


@pytest.mark.parametrize("sqlstate", REFUSALS)
def test_a_batch_delete_reports_the_refused_name_and_deletes_the_others(pair, pg_dsn, sqlstate):
    with refused_one(pair, pg_dsn, sqlstate) as (s, a, b, single_error):

        r = s.delete(a.url("/auth-files"), json={"names": NAMES}, timeout=30)
        assert r.status_code == 207, r.text
        body = r.json()
        remaining = rows(pg_dsn)
        assert REFUSED in remaining
        gone = [n for n in NAMES if n not in remaining]
        assert body == {"status": "partial", "deleted": len(gone), "files": gone,
                        "failed": [{"name": n, "error": body["failed"][i]["error"]}
                                   for i, n in enumerate(remaining)]}
        assert body["failed"][0] == {"name": REFUSED, "error": single_error}
        if sqlstate == "57P01":  # the names after it: deleted, or refused fast until it reconnected
            assert gone[:2] == ["a.json", "b.json"]
            assert all(f["error"].startswith("storage unavailable: ") for f in body["failed"])
            wait_online(s, a)
        else:  # a refusal of one row is no reason to fail the others
            assert gone == ["a.json", "b.json", "d.json", "e.json"]
        assert_everyone_agrees(s, a, b, pg_dsn, remaining)


@pytest.mark.parametrize("sqlstate", REFUSALS)
def test_delete_all_says_how_many_it_deleted_when_the_storage_refuses_one(pair, pg_dsn, sqlstate):
    with refused_one(pair, pg_dsn, sqlstate) as (s, a, b, single_error):

        r = s.delete(a.url("/auth-files?all=true"), timeout=30)
        remaining = rows(pg_dsn)
        assert REFUSED in remaining
        # the status of the one-name delete, its error when c.json came first, and the count
        assert r.status_code == REFUSALS[sqlstate][0], r.text
        assert r.json() == {"error": r.json()["error"], "deleted": len(NAMES) - len(remaining)}
        assert r.json()["error"].startswith(REFUSALS[sqlstate][1])
        if sqlstate != "57P01":
            assert (remaining, r.json()["error"]) == ([REFUSED], single_error)
        else:
            wait_online(s, a)
        assert_everyone_agrees(s, a, b, pg_dsn, remaining)

        # once the database takes deletes again, `all` removes the rest and says ok
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse_delete ON auth_store")
        r = s.delete(a.url("/auth-files?all=true"), timeout=30)
        assert (r.status_code, r.json()) == (200, {"status": "ok", "deleted": len(remaining)})
        assert_everyone_agrees(s, a, b, pg_dsn, [])


# -- the file backend: a file the system will not unlink ----------------------------------

@contextmanager
def immutable(path):
    """`path` made immutable (chattr +i: not even root may unlink it); skip where impossible."""
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make a file immutable here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.fixture
def auths(app) -> Path:
    return Path(app.extensions["cliproxy_mgmt"].store.path).parent / "auths"


def test_a_batch_delete_on_files_reports_the_file_it_cannot_remove(mgmt, auths):
    auths.mkdir(exist_ok=True)
    for name in NAMES:
        auths.joinpath(name).write_text('{"type": "claude"}')
    with immutable(auths / REFUSED):
        single = mgmt.delete(f"/auth-files?name={REFUSED}")
        r = mgmt.delete("/auth-files", json={"names": NAMES})
        assert single.status_code == 500
        assert (r.status_code, r.get_json()) == (207, {
            "status": "partial", "deleted": 4, "files": ["a.json", "b.json", "d.json", "e.json"],
            "failed": [{"name": REFUSED, "error": single.get_json()["error"]}]})
        assert sorted(p.name for p in auths.iterdir()) == [REFUSED]
        assert [f["name"] for f in mgmt.get("/auth-files").get_json()["files"]] == [REFUSED]
