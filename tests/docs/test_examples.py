"""Every Python example of the README and of the guides runs.

The examples are read from the Markdown files themselves, so that they cannot
drift from what the tests run: the README's API example (the ``python`` block
under "Using it") and every ``python`` block of ``docs/*.md``, on whichever
backend the suite runs on. A block that needs files or data the tests do not
have is marked in the Markdown, on a line of its own just before it::

    <!-- not run: the reason -->

Such a block is only compiled (its syntax is checked), and the test says so in
its id.
"""

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Also indented fences (in a list item); their code is dedented.
FENCE = re.compile(r"^([ \t]*)```python\n(.*?)^\1```[ \t]*$", re.S | re.M)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.*?)\s*-->\s*$")


def python_blocks(path):
    """The ``python`` blocks of a Markdown file.

    Returns:
        ``(line, code, reason)`` per block: the line of its opening fence
        (1-based), its code, and the reason it is not run (``None`` when it
        runs).
    """
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = [s for s in text[: match.start()].splitlines() if s.strip()]
        marked = NOT_RUN.search(before[-1]) if before else None
        code = textwrap.dedent(match.group(2))
        blocks.append((line, code, marked.group(1) if marked else None))
    return blocks


def readme_api_example():
    """The ``python`` block under the README's "Using it" heading."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Using it\n", 1)
    assert len(section) == 2, 'README.md has no "## Using it" section'
    match = FENCE.search(section[1].split("\n## ", 1)[0])
    assert match, 'README.md has no python block under "## Using it"'
    return textwrap.dedent(match.group(2))


def test_readme_api_example_builds_and_compiles_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    exec(compile(readme_api_example(), "README.md", "exec"), namespace)
    model = namespace["model"]
    assert model.compiled
    assert tuple(model.outputs[0].shape) == (None, 10)


def test_the_site_home_page_shows_the_readme_api_example():
    home = [code for _, code, _ in python_blocks(ROOT / "docs" / "index.md")]
    assert readme_api_example() in home


GUIDE_BLOCKS = [
    (path, line, code, reason)
    for path in sorted((ROOT / "docs").glob("*.md"))
    for line, code, reason in python_blocks(path)
]


def _block_id(block):
    path, line, _, reason = block
    return f"{path.name}:{line}" + (f" (compiled only: {reason})" if reason else "")


@pytest.mark.parametrize("block", GUIDE_BLOCKS, ids=_block_id)
def test_guide_example_runs(block, tmp_path, monkeypatch):
    path, line, code, reason = block
    # Padded so that a traceback gives the line numbers of the Markdown file.
    compiled = compile("\n" * line + code, str(path.relative_to(ROOT)), "exec")
    if reason is None:
        monkeypatch.chdir(tmp_path)
        exec(compiled, {"__name__": "__main__"})


def test_every_python_block_of_the_guides_is_collected():
    for path in sorted((ROOT / "docs").glob("*.md")):
        opened = re.findall(r"^[ \t]*```python[ \t]*$", path.read_text(), re.M)
        assert len(python_blocks(path)) == len(opened), (
            f"{path.name}: a python block without its closing fence"
        )
