//! The LiteRT shared library, taken from its pinned PyPI wheel.
