import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # lets tests import helpers.py

import importlib.util
import os

import pytest

HAS_BFCL = importlib.util.find_spec("bfcl_eval") is not None and importlib.util.find_spec("tree_sitter") is not None


def pytest_collection_modifyitems(config, items):
    """Tests marked `bfcl` need the eval extra; without it they skip, except where TOOLR0_REQUIRE_BFCL=1 (CI) fails them."""
    if HAS_BFCL or os.environ.get("TOOLR0_REQUIRE_BFCL") == "1":
        return
    from toolr0_lite.bfcl import BFCL_INSTALL

    skip = pytest.mark.skip(reason=f"needs bfcl-eval: {BFCL_INSTALL}")
    for item in items:
        if "bfcl" in item.keywords:
            item.add_marker(skip)
