"""MkDocs hook: copy MathJax (from the PyPI package jupyter-server-mathjax, in the docs
extra) into the built site, so equations typeset offline, without a CDN."""

import os
import shutil


def on_post_build(config, **kwargs):
    import jupyter_server_mathjax
    source = os.path.join(os.path.dirname(jupyter_server_mathjax.__file__), "static")
    target = os.path.join(config["site_dir"], "mathjax")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.md", "LICENSE*"))
