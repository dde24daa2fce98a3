"""Shared fixtures: every test gets its own data directory, so nothing touches the user's home.

The teacher-logits cache is the one thing shared between tests (a symlink into each test's directory): it is
content-addressed and self-checking, and sharing it saves a teacher forward pass per test.
"""

import pytest


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("shared_cache")


@pytest.fixture(autouse=True)
def distill_home(tmp_path_factory, monkeypatch, shared_cache):
    home = tmp_path_factory.mktemp("distill_home")
    (home / "cache").symlink_to(shared_cache, target_is_directory=True)
    monkeypatch.setenv("DISTILL_HOME", str(home))
    return home
