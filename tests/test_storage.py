"""The storage interface: the file backend's compare-and-swap, and a third-party backend
added through the `register_storage_backends` hook."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from cliproxy_mgmt import hookimpl
from cliproxy_mgmt.authfiles import auth_files
from cliproxy_mgmt.storage import (AuthBackend, BackendFactory, ConfigBackend, Conflict, Storage,
                                   StorageError, Version)
from cliproxy_mgmt.storage.files import FileConfig
from cliproxy_mgmt.storage.select import open_storage
from cliproxy_mgmt.testing import ManagementClient, config_text


def test_file_write_refuses_a_changed_file_and_keeps_it(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("debug: false\n")
    backend = FileConfig(str(path))
    _, base = backend.read()
    path.write_text("debug: true\n")  # a hand edit after our read
    with pytest.raises(Conflict):
        backend.write("debug: false\nrequest-retry: 1\n", base)
    assert path.read_text() == "debug: true\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no temp file left


def test_file_write_returns_the_version_of_what_it_wrote(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("debug: false\n")
    backend = FileConfig(str(path))
    _, base = backend.read()
    written = backend.write("debug: true\n", base)
    st = os.stat(path)
    assert written == Version((st.st_ino, st.st_size, st.st_mtime_ns), hashlib.sha256(b"debug: true\n").digest())
    assert backend.read()[1] == written
    with open(path, "a") as f:  # an in-place append right after our write is a new version
        f.write("# by hand\n")
    assert backend.token() != written.token


class MemoryStorage(Storage):
    """A toy backend: the config text in a dict, auth files in their folder, a change callback."""

    name = "memory"

    def __init__(self, config_path):
        store = self
        with open(config_path) as f:
            self.text = f.read()
        self.revision = 1
        self.saved = []
        self.callbacks = []

        class Config(ConfigBackend):
            path = config_path

            def token(self):
                return store.revision

            def read(self):
                return store.text, Version(store.revision, hashlib.sha256(store.text.encode()).digest())

            def write(self, text, base, data=None):
                if base is not None and base.token != store.revision:
                    raise Conflict("changed")
                store.text, store.revision = text, store.revision + 1
                return Version(store.revision, hashlib.sha256(text.encode()).digest())

        class Auths(AuthBackend):
            def save(self, folder, name, data):
                store.saved.append(name)
                with open(os.path.join(folder, name), "wb") as f:
                    f.write(data)

            def remove(self, folder, name):
                os.unlink(os.path.join(folder, name))

        self.config, self.auths = Config(), Auths()

    def on_change(self, callback):
        self.callbacks.append(callback)

    def change_elsewhere(self, text):
        self.text, self.revision = text, self.revision + 1
        for callback in self.callbacks:
            callback()


class MemoryPlugin:
    __name__ = "memory-storage"

    def __init__(self):
        self.opened = []

    @hookimpl
    def register_storage_backends(self):
        def open_(path, environ):
            self.opened.append(MemoryStorage(path))
            return self.opened[-1]
        return [BackendFactory("memory", lambda env: env.get("MEMORY_STORE") == "1", open_)]


def test_hook_register_storage_backends(make_app, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMORY_STORE", "1")
    plugin = MemoryPlugin()
    app = make_app(plugins=[plugin])
    storage = plugin.opened[0]
    assert app.extensions["cliproxy_mgmt"].storage is storage
    mgmt = ManagementClient(app.test_client())
    assert mgmt.put("/debug", json={"value": True}).status_code == 200
    assert "debug: true" in storage.text
    assert "debug: true" not in (tmp_path / "config.yaml").read_text()  # the backend holds it
    storage.change_elsewhere(storage.text.replace("debug: true", "debug: false"))
    assert app.extensions["cliproxy_mgmt"].store.data["debug"] is False  # pushed, no request needed
    assert mgmt.post("/auth-files?name=a.json", data=b'{"type":"acme"}').status_code == 200
    assert storage.saved == ["a.json"]


def test_a_backend_written_before_save_unchanged_still_guards_a_read_modify_write(make_app, monkeypatch):
    """MemoryStorage's auths know only `save`: the default `save_unchanged` compares the local
    file, so a PATCH saves through `save`, and a rewrite between the read and the save is
    applied again instead of written over."""
    monkeypatch.setenv("MEMORY_STORE", "1")
    plugin = MemoryPlugin()
    app = make_app(plugins=[plugin])
    storage = plugin.opened[0]
    mgmt = ManagementClient(app.test_client())
    assert mgmt.post("/auth-files?name=a.json", data=b'{"type":"acme","token":"t1"}').status_code == 200
    assert mgmt.patch("/auth-files/fields", json={"name": "a.json", "note": "x"}).status_code == 200
    assert storage.saved == ["a.json", "a.json"]
    path = os.path.join(os.path.dirname(app.extensions["cliproxy_mgmt"].store.path), "auths", "a.json")
    calls = []

    def change(data):
        calls.append(data["token"])
        if len(calls) == 1:
            with open(path, "w") as f:  # a refresh by a writer that takes no lock of ours
                f.write('{"type":"acme","token":"t2"}')
        data["note"] = "y"

    with app.app_context():
        auth_files().update("a.json", change)
    assert calls == ["t1", "t2"] and storage.saved == ["a.json"] * 3
    with open(path) as f:
        assert json.loads(f.read()) == {"type": "acme", "token": "t2", "note": "y"}


def test_a_backend_is_chosen_by_name(tmp_path):
    (tmp_path / "config.yaml").write_text(config_text(tmp_path))
    from cliproxy_mgmt.plugin_manager import get_plugin_manager
    plugin = MemoryPlugin()
    pm = get_plugin_manager(load_entrypoints=False, extra=[plugin])
    chosen = open_storage(pm, str(tmp_path / "config.yaml"), {"CLIPROXY_MGMT_STORAGE": "memory"})
    assert chosen.name == "memory"
    assert open_storage(pm, str(tmp_path / "config.yaml"), {}).name == "files"
    with pytest.raises(StorageError, match="CLIPROXY_MGMT_STORAGE=nope: no such storage backend"):
        open_storage(pm, str(tmp_path / "config.yaml"), {"CLIPROXY_MGMT_STORAGE": "nope"})


def test_a_backend_name_registered_twice_is_a_start_up_error(tmp_path):
    from cliproxy_mgmt.plugin_manager import get_plugin_manager

    class Twin(MemoryPlugin):
        __name__ = "twin-storage"

    pm = get_plugin_manager(load_entrypoints=False, extra=[MemoryPlugin(), Twin()])
    with pytest.raises(StorageError, match="registered twice: memory"):
        open_storage(pm, str(tmp_path / "config.yaml"), {})
