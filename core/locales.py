"""Babel locales, parsed once per process.

`babel.Locale.parse("ja")` builds a new Locale each time and checks that its data file exists
on disk (a stat); flask_babel.force_locale and babel's formatting functions do that for every
string they are given, several times a request (a check-in: five). A Locale never changes once
built, so each language's is built once and shared.
"""
from __future__ import annotations

import functools

import flask_babel
from babel import Locale


@functools.lru_cache(maxsize=64)
def _parsed(identifier: str) -> Locale:
    return Locale.parse(identifier)


def locale(language):
    """`language` ("ja", "en_GB", a Locale) as a Locale; anything else (None) as given, for Babel to
    judge: an unknown identifier raises babel's own error, and is not kept."""
    return _parsed(language) if isinstance(language, str) else language


def force_locale(language):
    """flask_babel.force_locale with the language's Locale built once."""
    return flask_babel.force_locale(locale(language))
