"""Shared test configuration: hypothesis profiles.

``default`` explores new random examples on every run (how the bound and rounding properties find bugs locally);
under CI (the ``CI`` environment variable, as set by CI systems) the ``ci`` profile derandomises, so a CI run is
reproducible; ``--hypothesis-profile=thorough`` is for long local runs.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True, database=None)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=2000)
settings.load_profile("ci" if os.environ.get("CI") else "default")
