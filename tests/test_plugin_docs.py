"""docs/plugins.md documents every hook with its exact signature, and the loading variables."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import anbench.plugins
from anbench import hookspecs
from anbench.plugins import PluginHost

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
HOOKS = sorted(name for name in dir(PluginHost().pm.hook) if not name.startswith("_"))


@pytest.fixture(scope="module")
def docs_text():
    return DOCS.read_text()


@pytest.fixture(scope="module")
def headings(docs_text):
    return [line for line in docs_text.splitlines() if line.startswith("#")]


def signature(hook: str) -> str:
    return f"{hook}{inspect.signature(getattr(hookspecs, hook))}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_a_heading_with_its_exact_signature(hook, headings):
    matching = [h for h in headings if re.search(rf"\b{hook}\(", h)]
    assert matching, f"docs/plugins.md has no heading for hook {hook}; add '### `{signature(hook)}`'"
    assert any(f"`{signature(hook)}`" in h for h in matching), (
        f"docs/plugins.md documents {matching} but the hook's signature is {signature(hook)}")


def test_docs_name_no_hook_that_does_not_exist(headings):
    documented = {m.group(1) for h in headings for m in re.finditer(r"`(\w+)\(", h)}
    assert documented <= set(HOOKS), f"documented but not in anbench.hookspecs: {sorted(documented - set(HOOKS))}"


def test_every_loading_variable_is_documented(docs_text):
    variables = set(re.findall(r"ANBENCH_[A-Z_]+", inspect.getsource(anbench.plugins)))
    assert {"ANBENCH_STRICT_PLUGINS", "ANBENCH_LOAD_PLUGINS", "ANBENCH_DISABLE_PLUGINS"} <= variables
    missing = sorted(v for v in variables if f"`{v}`" not in docs_text)
    assert not missing, f"docs/plugins.md does not document {missing}"


def test_contract_kit_names_are_documented(docs_text):
    import anbench.testing

    for name in anbench.testing.__all__:
        if name.isupper():
            continue  # constants, not API to document
        assert f"{name}" in docs_text, f"docs/plugins.md does not mention anbench.testing.{name}"
    for fixture in ("anbench_store", "anbench_host"):
        assert f"`{fixture}`" in docs_text
