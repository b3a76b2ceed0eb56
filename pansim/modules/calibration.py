"""Data calibration of the PGS modules (an option beside docs/spec.md §1.2; off by default).

spec fixes the PGS squash ``t = tanh(x / tau)`` and the raw scale of the
Fourier-Bessel band. On crystals the trained scalars of every atom sit within a
small fraction of one ES centre spacing (``results/ablation/scalar_pathway_probe.md``:
Si t spread 0.014-0.018 against a spacing of 0.286), so the readout expansion can
only add an offset; and the j1 band enters with about twice the rms of the
backbone's radial features. :func:`calibrate_scalar_pathway` measures both on
training structures before training and fixes, per module:

- ``ESReadoutExpansion``: ``shift`` = per-channel mean and ``tau * scale`` =
  ``spread`` per-channel standard deviations of its input features;
- ``FourierBesselEdgeMixer``: ``fb_scale`` so the new band has the rms of the
  radial features it is mixed with.

Only buffers change: the correction weights stay zero, so the calibrated model is
still exactly its baseline at initialisation (invariant 3), and the buffers travel
with the weights in model files and checkpoints. Backbone-agnostic: the values are
read with forward pre-hooks on the modules, whatever adapter placed them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from pansim.modules.pgs import ESReadoutExpansion, FourierBesselEdgeMixer


@torch.no_grad()
def calibrate_scalar_pathway(
    model: torch.nn.Module,
    batches: Iterable[Any],
    evaluate: Callable[[torch.nn.Module, Any], Any],
    spread: float = 1.0,
) -> dict[str, dict[str, float]]:
    """Calibrate every PGS module of ``model`` on ``batches``; returns what was set.

    Parameters
    ----------
    model : torch.nn.Module
        A pansim model (any backbone); modules without PGS parts are left alone.
    batches : iterable
        Inputs of ``evaluate`` (e.g. collated training structures).
    evaluate : callable
        ``evaluate(model, batch)`` runs the model forward (energies suffice).
    spread : float
        ES squash width in standard deviations of each channel.

    Returns
    -------
    dict
        Per module, under its state dict name (the model file's, e.g. ``edge_mixer``):
        ``fb_scale`` (edge mixer) or the mean ``shift`` and mean squash width
        ``tau * scale`` over channels (readout expansion).
    """
    if not spread > 0:
        raise ValueError(f"spread must be > 0, got {spread}")
    targets = {
        _state_dict_name(model, module): module
        for module in model.modules()
        if isinstance(module, ESReadoutExpansion | FourierBesselEdgeMixer)
    }
    if not targets:
        return {}
    seen: dict[str, list[tuple[torch.Tensor, ...]]] = {name: [] for name in targets}

    def recorder(name: str):
        def hook(module, args):
            seen[name].append(tuple(a.detach() for a in args))

        return hook

    handles = [m.register_forward_pre_hook(recorder(n)) for n, m in targets.items()]
    try:
        for batch in batches:
            # at initialisation the correction weights are zero, so no module's
            # input depends on another's calibration: one pass measures them all
            evaluate(model, batch)
    finally:
        for handle in handles:
            handle.remove()
    report: dict[str, dict[str, float]] = {}
    for name, module in targets.items():
        if not seen[name]:
            raise ValueError(f"calibration never reached {name}: no structure in the batches?")
        columns = [torch.cat(parts, dim=0) for parts in zip(*seen[name], strict=True)]
        if isinstance(module, FourierBesselEdgeMixer):
            report[name] = {"fb_scale": module.calibrate(*columns)}
        else:
            module.calibrate(columns[0], spread)
            report[name] = {
                "shift": float(module.shift.mean()),
                "width": float((module.tau * module.scale).mean()),
            }
    return report


def _state_dict_name(model: torch.nn.Module, module: torch.nn.Module) -> str:
    """The prefix of ``module``'s tensors in ``model.state_dict()``.

    An adapter may keep state dict names other than its module paths (the MACE
    adapter keeps the model files' names, ``pansim.backbones.mace``).
    """
    local, tensor = next(iter(module.state_dict(keep_vars=True).items()))
    key = next(k for k, t in model.state_dict(keep_vars=True).items() if t is tensor)
    return key.removesuffix("." + local)


__all__ = ["calibrate_scalar_pathway"]
