"""Data-parallel training with ``torch.distributed``: the few collective operations stgraph uses.

Launch any training script with ``torchrun`` (gloo on CPU, NCCL on GPUs)::

    torchrun --nproc-per-node 2 my_training.py      # each process fits on its own share of videos

Inside, :func:`init_from_env` starts the process group from torchrun's environment variables, and
:func:`stgraph.models.dgi_training.train_dgi` and :meth:`stgraph.models.AnoGraph.fit` pick it
up (:meth:`Distributed.current`), as do the pixel autoencoders
(:class:`stgraph.models.clip_autoencoder.ClipAutoencoder`): every process trains on its own
graphs (clips), the gradients are summed (averaged for the autoencoders) so that one step
equals one step on the concatenated batches, and the statistics the scores depend on (feature
scaling, ``s_train``, the density of the embeddings, the training-score quantiles, the flow
scale, ...) are reduced, so every process ends with the same model and scores identically.
"""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Distributed", "init_from_env"]


def init_from_env(backend: str | None = None) -> "Distributed | None":
    """Start the default process group from torchrun's variables; None when not under torchrun.

    ``backend``: "gloo" (CPU) or "nccl" (GPUs); None picks NCCL when CUDA is available.
    """
    import torch.distributed as dist

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend)
    return Distributed()


class Distributed:
    """The collectives of data-parallel training over a process group (default: the world).

    Every call is collective: all processes must make it, in the same order.
    """

    def __init__(self, group: Any = None) -> None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("Distributed needs an initialised torch.distributed process group "
                               "(launch with torchrun and call stgraph.distributed.init_from_env)")
        self._dist, self.group = dist, group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        backend = dist.get_backend(group)
        # NCCL reduces CUDA tensors only; gloo takes CPU tensors.
        self._device = torch.device("cuda", torch.cuda.current_device()) \
            if backend == "nccl" else torch.device("cpu")

    @classmethod
    def current(cls) -> "Distributed | None":
        """The world group when ``torch.distributed`` is initialised with more than one process,
        else None (training then runs on its own)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            return cls()
        return None

    @classmethod
    def disabled(cls) -> "Distributed":
        """A marker that turns data parallelism off even under torchrun (``active()`` is None)."""
        marker = cls.__new__(cls)
        marker.rank, marker.world_size, marker.group = 0, 1, None
        marker._dist = None
        return marker

    def active(self) -> "Distributed | None":
        """``self``, or None for :meth:`disabled`."""
        return None if self._dist is None else self

    # ------------------------------------------------------------------ reductions
    def sum_tensor(self, tensor: Tensor) -> Tensor:
        """Element-wise sum of ``tensor`` over the processes (a new tensor, on its device)."""
        out = tensor.detach().to(self._device, copy=True)
        self._dist.all_reduce(out, group=self.group)
        return out.to(tensor.device)

    def sum_int(self, value: int) -> int:
        return int(self.sum_tensor(torch.tensor(value, dtype=torch.int64)))

    def max_int(self, value: int) -> int:
        out = torch.tensor(value, dtype=torch.int64, device=self._device)
        self._dist.all_reduce(out, op=self._dist.ReduceOp.MAX, group=self.group)
        return int(out)

    def mean_loss(self, total: float, count: int) -> float:
        """``sum(total) / (2 sum(count))`` over processes: the epoch's mean DGI loss per node."""
        both = self.sum_tensor(torch.tensor([total, float(count)], dtype=torch.float64))
        return float(both[0] / (2 * both[1])) if both[1] > 0 else float("nan")

    def sum_gradients(self, module: nn.Module) -> None:
        """Replace each parameter's gradient by its sum over processes (one flat all-reduce).

        A process without a batch in this step contributes zeros.
        """
        params = [p for p in module.parameters() if p.requires_grad]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in params])
        flat = self.sum_tensor(flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).to(p.device)
            offset += n

    def broadcast_parameters(self, module: nn.Module, src: int = 0) -> None:
        """Copy ``src``'s parameters and buffers to every process."""
        for tensor in [*module.parameters(), *module.buffers()]:
            data = tensor.detach().to(self._device, copy=True)
            self._dist.broadcast(data, src=src, group=self.group)
            with torch.no_grad():
                tensor.copy_(data.to(tensor.device))

    def average_gradients(self, module: nn.Module) -> None:
        """Replace each parameter's gradient by its mean over processes (one flat all-reduce)."""
        self.sum_gradients(module)
        for p in module.parameters():
            if p.requires_grad:
                p.grad.div_(self.world_size)

    def average_batch_norm(self, module: nn.Module) -> None:
        """Replace the running mean and variance of every BatchNorm layer by their mean over
        processes (one flat all-reduce); the layers then normalise identically everywhere."""
        stats = [buffer for m in module.modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
                 for buffer in (m.running_mean, m.running_var)]
        if not stats:
            return
        flat = self.sum_tensor(torch.cat([b.reshape(-1) for b in stats])) / self.world_size
        offset = 0
        with torch.no_grad():
            for b in stats:
                b.copy_(flat[offset:offset + b.numel()].view_as(b))
                offset += b.numel()

    def cat_tensors(self, tensor: Tensor) -> Tensor:
        """Every process's ``tensor`` concatenated along dim 0 in rank order (the sizes along
        dim 0 may differ), on every process, on ``tensor``'s device."""
        parts = self.gather_objects(tensor.detach().cpu())
        return torch.cat(parts).to(tensor.device)

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` (picklable), in rank order, on every process."""
        out: list[Any] = [None] * self.world_size
        self._dist.all_gather_object(out, obj, group=self.group)
        return out

    def __repr__(self) -> str:
        return f"Distributed(rank={self.rank}, world_size={self.world_size})"

