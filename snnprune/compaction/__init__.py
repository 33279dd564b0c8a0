"""Compaction: turn a pruned (masked) network into a smaller dense one, and save pruned models.

`compact` cuts removed channels out physically (`removed_channels` says which), giving a network
whose outputs equal the masked one's; `save_compact`/`load_compact` store it so that it reloads
without the original; `save_sparse`/`load_sparse` store unstructured-pruned weights as sparse
tensors with their masks; `compaction_report` puts parameters and MACs before and after side by
side.
"""

from __future__ import annotations

from ._channels import removed_channels
from ._io import COMPACT_FORMAT, SPARSE_FORMAT, load_compact, load_sparse, save_compact, save_sparse
from ._surgery import compact, compaction_report

__all__ = [
    "COMPACT_FORMAT",
    "SPARSE_FORMAT",
    "compact",
    "compaction_report",
    "load_compact",
    "load_sparse",
    "removed_channels",
    "save_compact",
    "save_sparse",
]
