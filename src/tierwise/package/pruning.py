"""Magnitude pruning of the edge MLP, with a short fine-tune: structured (smaller) or unstructured.

- Structured (`structured_prune`): in every hidden layer, the units whose incoming weights have
  the smallest L2 norm (torch.nn.utils.prune.ln_structured's criterion) are removed outright
  — their row of weights in, their column of weights out — so the exported ONNX graph has
  smaller matrices: fewer bytes and fewer multiply-accumulates.
- Unstructured (`unstructured_prune`): the smallest weights of every layer
  (torch.nn.utils.prune.l1_unstructured) are set to zero and kept at zero while fine-tuning.
  The graph stays dense: ONNX Runtime's CPU kernels multiply the zeros like any other number
  and the file stores them as 4 bytes each, so neither size nor speed changes; only a
  compressed copy (the tar.gz a package travels as) shrinks. The benchmark measures all three
  (benchmarks/variants.py; docs/package.md).

Fine-tuning needs no labels: the pruned net learns the unpruned model's own probabilities on
the training inputs (distill.fit_soft), i.e. it is pulled back towards what it was.

Build side: torch is imported inside functions.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.package.dense import DenseNet, from_torch, to_torch
from tierwise.package.distill import fit_soft, single_thread, transfer_set

FINE_TUNE_RATE = 1e-3  # a tenth of training's: the pruned net starts near a good solution


@dataclass(frozen=True)
class PruneOptions:
    keep_units: float = 0.5  # structured: the share of hidden units kept in each layer
    sparsity: float = 0.8  # unstructured: the share of weights set to zero in each layer
    epochs: int = 10  # fine-tune passes over the training inputs and their blends
    mixup_copies: int = 4
    seed: int = 0


def structured_prune(net: DenseNet, x: NDArray[np.float32], options: PruneOptions) -> DenseNet:
    """The net with the weakest hidden units of each layer removed, then fine-tuned."""
    import torch

    prune: Any = importlib.import_module("torch.nn.utils.prune")  # untyped in torch

    module = to_torch(net)
    linear = [m for m in module if isinstance(m, torch.nn.Linear)]
    weights, biases = [], []
    kept_in = np.arange(net.weights[0].shape[0])
    for i, layer in enumerate(linear):
        w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()  # w: [out, in]
        w = w[:, kept_in]
        if i < len(linear) - 1:  # a hidden layer: drop its weakest units
            n_keep = max(1, round(w.shape[0] * options.keep_units))
            scratch = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                scratch.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            prune.ln_structured(scratch, "weight", amount=w.shape[0] - n_keep, n=2, dim=0)
            mask: Any = scratch.weight_mask  # set by ln_structured
            alive = mask.detach().numpy().any(axis=1)
            kept_out = np.flatnonzero(alive)
        else:
            kept_out = np.arange(w.shape[0])
        weights.append(np.ascontiguousarray(w[kept_out].T, dtype=np.float32))
        biases.append(np.ascontiguousarray(b[kept_out], dtype=np.float32))
        kept_in = kept_out
    smaller = DenseNet(tuple(weights), tuple(biases))
    return _fine_tune(smaller, net, x, options, masks=False)


def unstructured_prune(net: DenseNet, x: NDArray[np.float32], options: PruneOptions) -> DenseNet:
    """The net with the smallest `sparsity` of each layer's weights zeroed, then fine-tuned
    with the zeros held."""
    return _fine_tune(net, net, x, options, masks=True)


def _fine_tune(
    start: DenseNet, original: DenseNet, x: NDArray[np.float32], options: PruneOptions, masks: bool
) -> DenseNet:
    import torch

    prune: Any = importlib.import_module("torch.nn.utils.prune")  # untyped in torch

    inputs = transfer_set(x, options.mixup_copies, options.seed)
    targets = original.probabilities(inputs)
    with single_thread(options.seed):
        module = to_torch(start)
        linear = [m for m in module if isinstance(m, torch.nn.Linear)]
        if masks:
            # weight = weight_orig * mask on every forward: the zeros stay zero while training
            for layer in linear:
                prune.l1_unstructured(layer, "weight", amount=options.sparsity)
        if options.epochs > 0:
            fit_soft(module, inputs, targets, options.epochs, options.seed, FINE_TUNE_RATE)
        if masks:
            for layer in linear:
                prune.remove(layer, "weight")  # bake the zeros into the plain weight
    return _plain(from_torch(module))


def _plain(net: DenseNet) -> DenseNet:
    """Weights as float32 arrays exactly; -0.0 made 0.0 so zeros compress alike."""
    return DenseNet(
        tuple(np.where(w == 0, np.float32(0), w).astype(np.float32) for w in net.weights),
        tuple(b.astype(np.float32) for b in net.biases),
    )
