"""Browser tests (issue 10): a package, so its conftest does not shadow tests/conftest.py as module `conftest`."""
