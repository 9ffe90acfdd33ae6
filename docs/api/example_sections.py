"""A griffe extension: show the ``Example:`` sections of docstrings as code.

The docstrings of ``ats`` head their doctests ``Example:``, which griffe's
Google-style parser takes for an admonition of Markdown text (the ``>>>``
lines would run together into a paragraph); ``Examples:`` is the section it
renders as highlighted code. ``mkdocs.yml`` loads this file.
"""

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
