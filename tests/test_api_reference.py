"""The API reference (docs/api/*.md) covers every public name of fnn, and only names that
exist; the site's config lists every page (as optax's docs build checks its API)."""

import __future__
import importlib
import pathlib
import re
import types


DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
MODULES = ["fnn", "fnn.layers", "fnn.optim", "fnn.losses", "fnn.metrics", "fnn.activations",
           "fnn.initializers", "fnn.regularizers", "fnn.train", "fnn.explain",
           "fnn.checkpoint", "fnn.datasets", "fnn.preprocessing", "fnn.errors", "fnn.tuning"]


def _resolve(dotted):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def _documented():
    entries = {}
    for page in sorted((DOCS / "api").glob("*.md")):
        for name in re.findall(r"^::: ([\w.]+)\s*$", page.read_text(), flags=re.M):
            entries[name] = page.name
    return entries


def _public(module_name):
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name)
        if isinstance(obj, (types.ModuleType, __future__._Feature)):
            continue
        yield f"{module_name}.{name}", obj


def test_every_api_entry_exists():
    for name, page in _documented().items():
        _resolve(name)          # raises for a name that does not exist


def test_every_public_name_is_in_an_api_page():
    documented = {id(_resolve(name)) for name in _documented()}
    missing = [name for module in MODULES for name, obj in _public(module)
               if id(obj) not in documented and not isinstance(obj, (str, tuple, int))]
    assert not missing, f"public names in no docs/api page: {missing}"


def test_the_site_lists_every_page():
    config = (DOCS.parent / "mkdocs.yml").read_text()
    listed = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", config, flags=re.M))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "_hooks" not in p.parts}
    assert pages - listed == set(), f"pages missing from mkdocs.yml nav: {pages - listed}"
    assert listed - pages == set(), f"nav entries without a page: {listed - pages}"
