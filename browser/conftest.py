"""The browser test's options (tox -e browser): ``--screenshots DIR`` writes each page's
screenshot there (``tox -e browser -- --screenshots docs`` refreshes the README's)."""
import pytest


def pytest_addoption(parser):
    parser.addoption("--screenshots", metavar="DIR", default=None, help="write a PNG of each page into DIR (default: pytest's tmp dir)")


@pytest.fixture(scope="session")
def screenshots(request, tmp_path_factory):
    from pathlib import Path

    d = request.config.getoption("screenshots")
    path = Path(d) if d else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
