"""A fixture for tests that call a job's ``main()`` in-process.

``main()`` configures logging once per process (handlers on
``movierec_spark``, ``jobs`` and ``__main__``, propagation off), which would
hide later tests' log records from ``caplog``; this puts it back.
"""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def keep_logging(monkeypatch):
    for name in ("movierec_spark", "jobs", "__main__"):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", list(logger.handlers))
        monkeypatch.setattr(logger, "level", logger.level)
        monkeypatch.setattr(logger, "propagate", logger.propagate)
