"""The one error a run reports to its user, raised wherever a run is planned, written or
continued (:mod:`~core.evaluation.run_plan`, :mod:`~core.evaluation.run_manifest`,
:mod:`~core.evaluation.runner`): its own module so that those need not import each other."""

from __future__ import annotations


class RunError(RuntimeError):
    """A run that cannot start or continue; the message is for the user."""
