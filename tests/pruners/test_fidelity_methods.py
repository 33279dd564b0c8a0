"""Fidelity of the pruners to ALGORITHMS.md and the reference codes, on hand-sized examples."""

from __future__ import annotations

import torch

from snnprune.pruners._sca import activity_fn


def test_sca_post_potential_scores_the_spike_too():
    """potential=post is the reference's |V| + S after the hard reset: a channel that fires at
    every step (H = 2) scores 1 per position, not 0 like a silent channel."""
    h = torch.tensor([2.0, 0.5, 0.0]).view(1, 1, 3, 1, 1).repeat(2, 1, 1, 2, 2)  # [T, N, C, h, w]
    post = activity_fn("post", True, v_threshold=1.0, v_reset=0.0)(h.clone())
    assert torch.allclose(post, torch.tensor([1.0, 0.5, 0.0]))
    pre = activity_fn("pre", True, v_threshold=1.0, v_reset=0.0)(h.clone())
    assert torch.allclose(pre, torch.tensor([2.0, 0.5, 0.0]))


def _regenerated_after_one_step(tiny_cnn, regen_init: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Values before and after one step at s = 0.5, r = 0.5, of the weights the magnitude cut
    to s' = 0.75 removed and the regeneration brought back."""
    from snnprune.pruners import CriticalityUnstructuredPruner, default_config_list
    from snnprune.pruners._select import select_top

    model = tiny_cnn(width=0.25)
    pruner = CriticalityUnstructuredPruner(model, default_config_list(0.5, structured=False),
                                           regen_ratio=0.5, regen="random", regen_init=regen_init)
    pruner.start(total_steps=10, steps_per_epoch=10)
    before = {n: pruner.param(n).detach().clone() for n in pruner.layers}
    cut = select_top({n: w.abs() for n, w in before.items()}, 0.75, scope="global", min_keep=1)
    pruner.prune_to(0.5)
    back = {n: (pruner.mask(n) != 0) & ~cut[n] for n in pruner.layers}
    assert sum(int(b.sum()) for b in back.values()) > 0
    return [before[n][back[n]] for n in back], [pruner.param(n).detach()[back[n]] for n in back]


def test_criticality_regenerated_weights_restart_at_zero(tiny_cnn):
    """regen_init=zero: every regenerated weight restarts at zero, also those the step's own cut
    had just removed (the reference masks the weights before regrowing); old keeps them."""
    _, after = _regenerated_after_one_step(tiny_cnn, "zero")
    assert all(bool((a == 0).all()) for a in after)
    before, after = _regenerated_after_one_step(tiny_cnn, "old")
    assert all(torch.equal(b, a) for b, a in zip(before, after))
