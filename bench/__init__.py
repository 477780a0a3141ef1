"""Benchmarks: ``python -m bench NAME`` runs ``bench/NAME.py`` (see ``bench/__main__.py``)."""
