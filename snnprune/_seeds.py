"""The one range a seed must lie in, wherever it enters (CLI, `load_dataset`, `fit`, `seeded`).

Seeds reach numpy (`default_rng`, and the legacy ``RandomState`` that Optuna's samplers use) and
torch (`manual_seed`, `Generator.manual_seed`, also with derived seeds such as ``3 * seed + 2``).
torch accepts up to 2**64 - 1 and `default_rng` any size, but ``RandomState`` stops at
2**32 - 1; so does the search space loader (``seed`` in a space file) and the search's sampler
seed, which is taken modulo 2**32. 2**32 - 1 is therefore the widest bound every consumer
accepts, and one seed valid in a space file is valid on the command line and in Python too.
(The pruners' own ``seed`` hyperparameter is a separate, searchable value limited to
[0, 2**31 - 1].)
"""

from __future__ import annotations

import numbers

from snnprune.errors import UserError

__all__ = ["MAX_SEED", "check_seed"]

MAX_SEED = 2**32 - 1


def check_seed(seed: object, what: str = "seed") -> int:
    """``seed`` as an int in [0, MAX_SEED]; anything else is a one-line `UserError` naming
    ``what`` (``seed``, ``--seed``), instead of an overflow deep inside torch or numpy."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise UserError(f"{what} must be an integer in [0, {MAX_SEED}], got {type(seed).__name__} {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise UserError(f"{what} must be an integer in [0, {MAX_SEED}], got {seed!r}")
    return int(seed)
