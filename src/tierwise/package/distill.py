"""Knowledge distillation: a small ReLU MLP (the student) taught the teacher's probabilities.

The teacher is the cascade's cloud model (`--cloud-model`), or the edge model itself when
there is none. The student never sees a label: it learns the teacher's soft outputs
(cross-entropy against them, Hinton et al. 2015 at temperature 1, as the teachers here give
calibrated probabilities) over a *transfer set*: the training inputs the evaluation data
carries (`x_calibration`) and mixup blends of random pairs of them (weights from
Beta(0.5, 0.5)), which the teacher labels too. The blends fill the space between training
rows, where a student fitted to a thousand points alone would be free to do anything; the
teacher's answers there are what carries its "dark knowledge" (how alike the classes are).

Inputs are standardized for training and the standardization is folded into the first layer
at the end (dense.fold_standardization), so the exported graph is only Gemm/Relu/Softmax.
Training runs on one CPU thread with a fixed seed: the same inputs give the same bytes.

Build side: torch is imported inside functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.errors import MissingDependencyError
from tierwise.package.dense import DenseNet, fold_standardization, from_torch

Teacher = Callable[[NDArray[np.float32]], NDArray[np.float32]]  # x -> probabilities

BATCH = 128
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-5
MIXUP_BETA = 0.5


@dataclass(frozen=True)
class DistillOptions:
    hidden: tuple[int, ...] = (128,)  # the student's hidden layers
    epochs: int = 40  # passes over the transfer set
    mixup_copies: int = 16  # blended copies of the training inputs added to the transfer set
    seed: int = 0


def transfer_set(x: NDArray[np.float32], copies: int, seed: int) -> NDArray[np.float32]:
    """The training inputs and `copies` mixup blends of each with a random other row.

    The blend weight is drawn from Beta(0.5, 0.5), so most blends lie near one of the two
    rows: the teacher's answers close to real inputs teach more than halfway mixtures
    (digits, five folds: the student came 0.7 points below the teacher, against 1.0 with
    uniform weights)."""
    rng = np.random.default_rng(seed)
    blends = [x]
    for _ in range(copies):
        other = x[rng.permutation(len(x))]
        lam = rng.beta(MIXUP_BETA, MIXUP_BETA, (len(x), 1)).astype(np.float32)
        blends.append(lam * x + (1 - lam) * other)
    return np.ascontiguousarray(np.concatenate(blends), dtype=np.float32)


def distill(teacher: Teacher, x: NDArray[np.float32], options: DistillOptions) -> DenseNet:
    """Train a student with `options.hidden` units on the teacher's answers over `x` + blends."""
    torch = _torch()
    inputs = transfer_set(x, options.mixup_copies, options.seed)
    targets = teacher(inputs)
    mean = inputs.mean(axis=0).astype(np.float64)
    scale = input_scale(inputs)
    standardized = ((inputs - mean) / scale).astype(np.float32)
    with single_thread(options.seed):
        sizes = [inputs.shape[1], *options.hidden, targets.shape[1]]
        modules: list[Any] = []
        for i in range(len(sizes) - 1):
            modules.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                modules.append(torch.nn.ReLU())
        student = torch.nn.Sequential(*modules)
        fit_soft(student, standardized, targets, options.epochs, options.seed)
    return fold_standardization(from_torch(student), mean, scale)


def input_scale(x: NDArray[np.float32]) -> NDArray[np.float64]:
    """Per-feature standard deviations, floored at a tenth of their median.

    The floor matters once the scaling is folded into the first layer: a feature that barely
    varies (a digit's corner pixel) would otherwise get weights a hundred times the others',
    and INT8's one scale per weight tensor would then round every other weight to zero
    (measured: distilled-int8 fell to 25% on digits without it)."""
    std = x.std(axis=0).astype(np.float64)
    varying = std[std > 1e-6]
    floor = 0.1 * float(np.median(varying)) if varying.size else 1.0
    floored: NDArray[np.float64] = np.maximum(std, floor)
    return floored


def fit_soft(
    module: Any,
    x: NDArray[np.float32],
    targets: NDArray[np.float32],
    epochs: int,
    seed: int,
    learning_rate: float = LEARNING_RATE,
    after_step: Callable[[], None] | None = None,
) -> None:
    """Minimize cross-entropy between the module's softmax and soft `targets` (Adam, cosine
    decay); `after_step` runs after every update (pruning re-applies its mask there)."""
    torch = _torch()
    xs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    ts = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate, weight_decay=WEIGHT_DECAY)
    steps = max(1, epochs * ((len(xs) + BATCH - 1) // BATCH))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(xs), generator=generator)
        for start in range(0, len(xs), BATCH):
            batch = order[start : start + BATCH]
            log_p = torch.log_softmax(module(xs[batch]), dim=1)
            loss = -(ts[batch] * log_p).sum(dim=1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            if after_step is not None:
                after_step()
    module.eval()


@contextmanager
def single_thread(seed: int) -> Iterator[None]:
    """One torch thread and a fixed seed: reproducible bytes, and the other core left free."""
    torch = _torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("distilled and pruned variants", "torch") from None
    return torch
