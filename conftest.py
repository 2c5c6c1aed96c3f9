"""Root conftest: enables pytester, with which the harness's own tests run gate sessions."""

pytest_plugins = ["pytester"]
