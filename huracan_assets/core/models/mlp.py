"""A small PyTorch MLP binary classifier (``"torch_mlp"``), an optional model kind (``pip install '.[torch]'``).

``torch`` is imported only inside the functions of this module, so the registry and ``ModelSpec`` work without it.

Preprocessing, fitted on the training rows and stored with the weights: NaN is imputed with the column's train
median (0 for an all-NaN column), then standardized with the train mean and standard deviation of the observed
values (ddof 0; a constant column gets std 1). The network is ``hidden`` Linear + ReLU + Dropout layers and a
Linear output, trained with AdamW on BCEWithLogits (sample-weighted when the TrainSet has weights).

Device: ``params["device"]`` ``"auto"`` uses CUDA when ``torch.cuda.is_available()``, else CPU; ``"cpu"`` forces the
CPU. The device of the fit is recorded in the fitted model's ``metadata["device"]`` (not in ``model.bin``, which
is always written from CPU tensors; a loaded model's metadata is empty). Predictions run on the CPU.

Determinism: the fit runs under ``torch.random.fork_rng`` (the caller's global RNG state is restored), seeds it
with ``spec.seed``, shuffles with a seeded ``torch.Generator``, enables ``torch.use_deterministic_algorithms``
and runs on :data:`CPU_THREADS` (one) intra-op thread, whatever ``spec.threads``; both settings are restored
afterwards. One thread, because oneMKL promises bitwise-identical results only for a fixed thread count (its
strict CNR mode aside): the same fit gave the same bytes with 1, 2 and 3 threads on the development machine
(MKL 2024.2, oneDNN 3.12, AVX-512), but nothing guarantees it elsewhere; and the default network fit no slower
on one thread than on two there (about 0.4 s for 5,000 rows x 90 features). Predictions (the walk-forward
metrics, and so the bundle hash, are made of them) run on one thread too. These are process-wide torch
settings: do not fit torch models from several Python threads at once. On CUDA, bitwise determinism also
needs ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` in the environment before CUDA starts (the caller's business: the core
does not touch the environment); without it the fit runs with ``warn_only`` determinism.

``model.bin`` is ``torch.save`` of a payload of tensors, lists, dicts, strings and numbers into an in-memory
buffer (``torch.save`` to a file path would embed the file name), loadable with ``weights_only=True``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from huracan_assets.core.models.base import ModelSpec, TrainSet, check_features, coerce_param

KIND = "torch_mlp"
FORMAT = "huracan_torch_mlp/1"
DEVICES = ("auto", "cpu", "cuda")
PREDICT_BATCH = 65_536
CPU_THREADS = 1  # intra-op threads of every CPU fit and prediction: results independent of the thread budget

DEFAULT_PARAMS: dict[str, Any] = {
    "hidden": [64, 32],
    "dropout": 0.1,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "epochs": 30,
    "batch_size": 512,
    "device": "auto",
}


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "the 'torch_mlp' model kind needs PyTorch, which is not installed: pip install '.[torch]'"
        ) from exc
    return torch


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: coerce_param(KIND, k, v, DEFAULT_PARAMS[k]) for k, v in params.items()}
    merged = {**DEFAULT_PARAMS, **out}
    hidden = merged["hidden"]
    if not hidden or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
        raise ValueError(f"torch_mlp hidden must be a non-empty list of positive ints, got {hidden!r}")
    checks = {
        "dropout": 0.0 <= merged["dropout"] < 1.0,
        "lr": merged["lr"] > 0,
        "weight_decay": merged["weight_decay"] >= 0,
        "epochs": merged["epochs"] >= 1,
        "batch_size": merged["batch_size"] >= 1,
        "device": merged["device"] in DEVICES,
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise ValueError(f"torch_mlp params out of range: {[(k, merged[k]) for k in bad]}")
    return out


# --------------------------------------------------------------------------------------------- preprocessing


def _normalization(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column train median (imputation), mean and std (standardization) over the observed values."""
    k = X.shape[1]
    median, mean, std = np.zeros(k), np.zeros(k), np.ones(k)
    for j in range(k):
        col = X[:, j]
        col = col[~np.isnan(col)]
        if col.size == 0:
            continue
        median[j] = float(np.median(col))
        mean[j] = float(col.mean())
        s = float(col.std())
        std[j] = s if s > 1e-12 * max(1.0, abs(mean[j])) else 1.0
    return median, mean, std


def _standardize(X: np.ndarray, median: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    filled = np.where(np.isnan(X), median[None, :], X)
    return ((filled - mean[None, :]) / std[None, :]).astype(np.float32)


def _network(torch: Any, n_features: int, hidden: list[int], dropout: float) -> Any:
    nn = torch.nn
    layers: list[Any] = []
    width = n_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


@contextmanager
def _deterministic_torch(torch: Any, threads: int, cuda: bool) -> Iterator[None]:
    """Deterministic algorithms and ``threads`` CPU threads inside the block; previous settings restored."""
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_threads = torch.get_num_threads()
    try:
        torch.use_deterministic_algorithms(True, warn_only=cuda)
        torch.set_num_threads(threads)
        yield
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)


# --------------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class TorchMLPModel:
    """A fitted MLP (CPU, eval mode) with its normalization arrays, spec and feature names."""

    spec: ModelSpec
    feature_names: tuple[str, ...]
    data: bytes = field(repr=False)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    kind: str = KIND

    def __post_init__(self) -> None:
        torch = _torch()
        payload = torch.load(io.BytesIO(self.data), map_location="cpu", weights_only=True)
        with torch.random.fork_rng(devices=[]):  # layer construction draws random weights: not from the caller's RNG
            net = _network(torch, len(self.feature_names), list(payload["hidden"]), float(payload["dropout"]))
        net.load_state_dict(payload["state_dict"])
        net.eval()
        object.__setattr__(self, "_net", net)
        for name in ("median", "mean", "std"):
            object.__setattr__(self, f"_{name}", payload[name].numpy().astype(np.float64))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        torch = _torch()
        arr = check_features(X, len(self.feature_names))
        Z = _standardize(arr, self._median, self._mean, self._std)  # type: ignore[attr-defined]
        out = np.empty(arr.shape[0], dtype=np.float64)
        with _deterministic_torch(torch, CPU_THREADS, cuda=False), torch.inference_mode():
            for start in range(0, arr.shape[0], PREDICT_BATCH):
                logits = self._net(torch.from_numpy(Z[start : start + PREDICT_BATCH]))  # type: ignore[attr-defined]
                out[start : start + PREDICT_BATCH] = torch.sigmoid(logits[:, 0]).double().numpy()
        return out

    def to_bytes(self) -> bytes:
        return self.data


def _device(torch: Any, choice: str) -> str:
    if choice == "cpu":
        return "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("torch_mlp device 'cuda' requested but CUDA is not available")
    return "cuda" if torch.cuda.is_available() else "cpu"


def _train(torch: Any, train: TrainSet, spec: ModelSpec, Z: np.ndarray, device: str) -> Any:
    p = spec.resolved_params()
    torch.manual_seed(spec.seed)
    net = _network(torch, Z.shape[1], p["hidden"], p["dropout"]).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    xs = torch.from_numpy(Z).to(device)
    ys = torch.from_numpy(train.y.astype(np.float32)).to(device)
    weight = train.weight if train.weight is not None else np.ones(train.n)
    ws = torch.from_numpy(weight.astype(np.float32)).to(device)
    gen = torch.Generator().manual_seed(spec.seed)
    net.train()
    for _ in range(p["epochs"]):
        order = torch.randperm(train.n, generator=gen).to(device)
        for start in range(0, train.n, p["batch_size"]):
            idx = order[start : start + p["batch_size"]]
            w = ws[idx]
            loss = (loss_fn(net(xs[idx])[:, 0], ys[idx]) * w).sum() / w.sum().clamp_min(1e-12)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval().to("cpu")


def fit(train: TrainSet, spec: ModelSpec) -> TorchMLPModel:
    torch = _torch()
    p = spec.resolved_params()
    device = _device(torch, p["device"])
    median, mean, std = _normalization(train.X)
    Z = _standardize(train.X, median, mean, std)
    devices = [torch.cuda.current_device()] if device == "cuda" else []
    with torch.random.fork_rng(devices=devices), _deterministic_torch(torch, CPU_THREADS, cuda=device == "cuda"):
        net = _train(torch, train, spec, Z, device)
    payload = {
        "format": FORMAT,
        "spec": spec.to_dict(),
        "feature_names": list(train.feature_names),
        "hidden": list(p["hidden"]),
        "dropout": float(p["dropout"]),
        "median": torch.from_numpy(median),
        "mean": torch.from_numpy(mean),
        "std": torch.from_numpy(std),
        "state_dict": {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return TorchMLPModel(spec=spec, feature_names=train.feature_names, data=buf.getvalue(), metadata={"device": device})


def load(data: bytes, threads: int = 1) -> TorchMLPModel:
    torch = _torch()
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad archive
        raise ValueError(f"not a torch_mlp model: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"not a torch_mlp model (format {FORMAT!r} expected)")
    spec = ModelSpec.from_dict(payload["spec"], threads=threads)  # an older payload's "threads" is ignored
    return TorchMLPModel(spec=spec, feature_names=tuple(payload["feature_names"]), data=bytes(data), metadata={})
