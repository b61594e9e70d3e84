"""The built documentation site in headless Chromium: equations typeset by the MathJax the
site serves itself, and a search for "adam" finds fnn.optim.adam, both offline (from the
files on disk and from a local server). `.ci/run` builds the site and runs this with
FNN_SITE_DIR; elsewhere it builds one itself when the docs extra is installed, and skips
otherwise, saying why."""

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading

import pytest

from tests.browser import Browser, chromium

PAGE = "tutorial/01-neuron.html"     # a tutorial page with inline and display equations
SEARCH = """(() => {
  const input = document.querySelector('[data-md-component=search-query]');
  input.focus(); input.value = 'adam';
  input.dispatchEvent(new Event('input', {bubbles: true}));
  input.dispatchEvent(new KeyboardEvent('keyup', {key: 'm', bubbles: true}));
  return input.value;
})()"""
FOUND = ("Array.from(document.querySelectorAll('.md-search-result__item a'))"
         ".map(a => a.href).filter(h => h.endsWith('#fnn.optim.adam'))")
TYPESET = "document.querySelectorAll('.MathJax, .MathJax_Display').length"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    binary = chromium()
    if binary is None:
        pytest.skip("no Chromium (Debian: apt-get install chromium; .ci/run installs it)")
    directory = os.environ.get("FNN_SITE_DIR")
    if not directory:
        if shutil.which("mkdocs") is None:
            pytest.skip('the docs extra is not installed (pip install -e ".[docs]"), so there '
                        "is no site to open")
        directory = str(tmp_path_factory.mktemp("site"))
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", directory],
                       cwd=root, check=True, capture_output=True,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    return binary, directory


@pytest.fixture(scope="module")
def served(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=site[1])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _check(binary, url, screenshot=None, extra=()):
    browser = Browser(binary, extra=extra)
    try:
        browser.open(url)
        assert browser.wait_for(TYPESET), f"{url}: the equations were not typeset"
        assert browser.evaluate(SEARCH) == "adam"
        assert browser.wait_for(FOUND), f"{url}: searching 'adam' did not find fnn.optim.adam"
        if screenshot:
            browser.screenshot(screenshot)
    finally:
        browser.close()


def test_served_site_typesets_equations_and_finds_adam(site, served, tmp_path):
    binary, directory = site
    shot = tmp_path / "site.png"
    _check(binary, f"{served}/{PAGE}", screenshot=str(shot))
    assert shot.stat().st_size > 10_000
    shutil.copy(shot, os.path.join(directory, "screenshot-by-test.png"))


def test_site_opened_from_disk_works_offline(site):
    binary, directory = site
    # Chromium lets a file:// page load the search index only with this flag (the offline
    # plugin's worker shim reads it); Firefox needs none. The equations need nothing.
    _check(binary, "file://" + os.path.join(directory, PAGE),
           extra=("--allow-file-access-from-files",))
