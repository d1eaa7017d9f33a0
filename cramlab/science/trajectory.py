"""The path a vector takes while it is grown: PCA of the progressive-cramming trajectory.

`progressive(..., keep_trajectory=True)` keeps the vectors after every length. Stacked, they form a path in
R^d; the follow-up paper found that 30-100 principal components hold 99 % of its variance: the vector moves
in a low-dimensional subspace of its d dimensions. `trajectory_pca` computes the explained variance.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from cramlab.errors import BadInputError


@dataclass
class TrajectoryPCA:
    n_points: int                       # vectors on the path (lengths reached)
    dim: int                            # their size (n_mem * d)
    explained_variance_ratio: list[float]
    cumulative: list[float]
    step_norms: list[float]             # distance moved from one length to the next

    def n_components(self, share: float = 0.99) -> int:
        """Fewest components that hold `share` of the variance."""
        for i, c in enumerate(self.cumulative):
            if c >= share - 1e-12:
                return i + 1
        return len(self.cumulative)

    def to_dict(self) -> dict:
        return asdict(self) | {"n_components_99": self.n_components(0.99)}


def trajectory_pca(trajectory) -> TrajectoryPCA:
    """PCA of a list of vectors (each n_mem x d, or d), in the order they were reached."""
    points = [torch.as_tensor(v, dtype=torch.float64).reshape(-1) for v in trajectory]
    if len(points) < 2:
        raise BadInputError(f"a trajectory needs at least 2 points for a PCA, got {len(points)}; "
                            "run progressive(..., keep_trajectory=True) over more lengths")
    x = torch.stack(points)                                    # (T, D)
    steps = (x[1:] - x[:-1]).norm(dim=1).tolist()
    centred = x - x.mean(0, keepdim=True)
    s = torch.linalg.svdvals(centred)
    var = s ** 2
    total = float(var.sum())
    ratio = (var / total).tolist() if total > 0 else [0.0] * len(var)
    cum, acc = [], 0.0
    for r in ratio:
        acc += r
        cum.append(min(acc, 1.0))
    return TrajectoryPCA(n_points=x.shape[0], dim=x.shape[1], explained_variance_ratio=ratio, cumulative=cum,
                         step_norms=steps)
