"""Test-suite wide settings.

Hypothesis runs derandomized by default, so CI sees the same examples every
time and a red build always reproduces; explore new examples with
``HYPOTHESIS_PROFILE=explore pytest`` (random, and longer where a test scales
with ``SOUNDNESS_EXAMPLES``).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
