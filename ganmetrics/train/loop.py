"""One training loop for every model of the zoo, on torch.distributed (DDP; gloo on CPU, NCCL on GPU).

Each iteration does ``d_steps`` discriminator steps and one generator step:

* D step: a real batch (:func:`ganmetrics.train.data.batch_indices`), fakes from ``G`` without
  gradients, ``L_D`` of the model's loss plus its regularisers (gradient penalty, drift, R1 — lazily
  every ``r1_interval`` steps with weight ×interval and Adam's ``lr·c``, ``β^c``, ``c = k/(k+1)``,
  as StyleGAN2).  D's calls on the real and the fake batch (and the penalty's) share one spectral-norm
  estimate (``parametrize.cached``): one power iteration per update of D, as Algorithm 1 of Miyato et
  al. 2018, not one per call;
* G step: ``L_G`` of ``D(G(z))`` (plus BigGAN's orthogonal penalty when asked), then the EMA update.

DDP wraps G and D; the G step evaluates D through ``D.module`` (D's weights are frozen then, so DDP
has nothing to reduce).  After each iteration rank 0's buffers (BatchNorm statistics of its batches,
StyleGAN's mean w) are broadcast, so every rank — and its EMA — holds the same networks bit for bit,
which each checkpoint verifies.  Every rank builds both networks from the same seed; noise comes from a
per-rank ``torch.Generator`` and a per-rank global RNG (StyleGAN's noise inputs use the latter).
Rank 0 writes checkpoints atomically with everything needed to continue bit-exactly: the networks,
the EMA, both optimisers, the step counters and every rank's RNG states (the data order is a pure
function of the step).
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import inspect
import json
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import parametrize

from ..errors import CheckpointError, InputError
from ..zoo.config import ModelConfig, config_from_dict
from ..zoo.registry import build, default_config, get_spec
from . import distributed
from .checkpoint import CHECKPOINT_NAME, load_training_checkpoint, save_training_checkpoint
from .config import RESUMABLE_SETTINGS, TrainConfig
from .data import TrainingSet, batch_indices, load_training_set, to_model_range
from .ema import ema_beta, make_ema, update_ema
from .losses import drift_penalty, get_loss, gradient_penalty, r1_penalty


@dataclass
class TrainState:
    step: int = 0  # generator steps done
    d_step: int = 0  # discriminator steps done (= real batches consumed)
    elapsed_seconds: float = 0.0
    history: list = field(default_factory=list)  # [{"step": s, "fid": v, ...}]
    #: settings changed on resume: [{"step": s, "settings": {"g_lr": new, ...}, "previous": {"g_lr": old, ...}}]
    changes: list = field(default_factory=list)


#: DDP would broadcast rank 0's buffers at every forward; the trainer broadcasts them once per iteration
#: (generator_step) instead, as within an iteration no rank reads a buffer that another rank's batch changed.
#: Newer torch (2.13 here) names the switch forward_sync_buffers and deprecates broadcast_buffers.
_NO_FORWARD_BUFFER_SYNC = ({"forward_sync_buffers": False}
                           if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                           else {"broadcast_buffers": False})


def _seed_for(seed: int, rank: int, stream: int) -> int:
    """Independent seeds per (run seed, rank, stream) for torch generators."""
    return (seed * 1_000_003 + rank * 7919 + stream * 104_729) % (2**63 - 1)


def _check_overrides(model: str, overrides: dict) -> None:
    fields = {f.name for f in dataclasses.fields(get_spec(model).config_class)} - {"model"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise InputError(f"unknown {model} setting(s) {', '.join(unknown)} in --set; known: {', '.join(sorted(fields))}")


def _model_config(cfg: TrainConfig, data: TrainingSet) -> ModelConfig:
    overrides = dict(cfg.model_overrides)
    _check_overrides(cfg.model, overrides)
    if cfg.num_classes is not None:
        overrides["num_classes"] = cfg.num_classes
    model_cfg = default_config(cfg.model, **overrides)
    if model_cfg.num_classes and model_cfg.num_classes > data.num_classes:
        raise InputError(f"{cfg.model} is set up with {model_cfg.num_classes} classes but the data {data.description} "
                         f"has {data.num_classes or 'no'} labels; pass --num-classes 0 for the unconditional variant")
    if data.resolution != model_cfg.resolution:
        raise InputError(f"{cfg.model} generates {model_cfg.resolution}×{model_cfg.resolution} images but the data "
                         f"{data.description} is {data.resolution}×{data.resolution}; resize the data")
    return model_cfg


def _resumed_config(cfg: TrainConfig, stored: ModelConfig, path: Path) -> tuple[ModelConfig, dict]:
    """The stored config with ``--set``'s changes applied, and those changes (settings whose value differs from
    the stored one: ``{name: new value}``); a change of a setting outside :data:`RESUMABLE_SETTINGS` is refused."""
    _check_overrides(cfg.model, cfg.model_overrides)
    changed = {k: v for k, v in cfg.model_overrides.items() if getattr(stored, k) != v}
    fixed = sorted(set(changed) - set(RESUMABLE_SETTINGS))
    if fixed:
        raise InputError(f"--set {', '.join(f'{k} {changed[k]!r} (the run has {getattr(stored, k)!r})' for k in fixed)}"
                         f": {path} continues a run whose networks are fixed; on resume only "
                         f"{', '.join(RESUMABLE_SETTINGS)} may change (or start afresh with --no-resume)")
    return (dataclasses.replace(stored, **changed) if changed else stored), changed


def _adam_settings(model_cfg: ModelConfig) -> tuple[dict, dict]:
    """Adam's ``lr`` and ``betas`` for G and D with the paper's settings; D's corrected for lazy R1 (StyleGAN2 §B)."""
    d_lr, d_betas = model_cfg.d_lr, tuple(model_cfg.betas)
    if model_cfg.r1_gamma > 0 and model_cfg.r1_interval > 1:
        c = model_cfg.r1_interval / (model_cfg.r1_interval + 1)
        d_lr, d_betas = d_lr * c, tuple(beta ** c for beta in d_betas)
    return dict(lr=model_cfg.g_lr, betas=tuple(model_cfg.betas)), dict(lr=d_lr, betas=d_betas)


def _optimizers(model_cfg: ModelConfig, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    g_settings, d_settings = _adam_settings(model_cfg)
    return torch.optim.Adam(G.parameters(), **g_settings), torch.optim.Adam(D.parameters(), **d_settings)


class Trainer:
    """State and steps of one run; :func:`train` drives it."""

    def __init__(self, cfg: TrainConfig, world: distributed.World) -> None:
        self.cfg, self.world = cfg, world
        self.out = cfg.output_dir()
        checkpoint = None
        if cfg.resume and (self.out / CHECKPOINT_NAME).exists():
            checkpoint = load_training_checkpoint(self.out / CHECKPOINT_NAME)
        self.data = load_training_set(cfg.data, num_images=cfg.num_images, seed=cfg.seed)
        if checkpoint is not None:
            self.model_cfg, changed = _resumed_config(cfg, config_from_dict(checkpoint["model_config"]),
                                                      self.out / CHECKPOINT_NAME)
            if checkpoint["world_size"] != world.world_size:
                raise CheckpointError(f"{self.out / CHECKPOINT_NAME} was written by {checkpoint['world_size']} "
                                      f"process(es); resume it with as many (this run has {world.world_size})")
        else:
            self.model_cfg = _model_config(cfg, self.data)
        self.batch_size = cfg.batch_size or self.model_cfg.batch_size
        self.loss = get_loss(self.model_cfg.loss)
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        G, D, _ = build(self.model_cfg.model, self.model_cfg)
        self.G_ema = make_ema(G).to(world.device)
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.G, self.D = (DistributedDataParallel(net.to(world.device, memory_format=self.memory_format),
                                                  device_ids=self._device_ids(), **_NO_FORWARD_BUFFER_SYNC)
                          for net in (G, D))
        self.opt_G, self.opt_D = _optimizers(self.model_cfg, self.G.module, self.D.module)
        self.beta = ema_beta(self.batch_size * world.world_size, self.model_cfg.ema_half_life_kimg,
                             self.model_cfg.ema_beta)
        self.noise = torch.Generator().manual_seed(_seed_for(cfg.seed, world.rank, 1))
        torch.manual_seed(_seed_for(cfg.seed, world.rank, 2))  # per-rank global RNG (StyleGAN noise inputs ...)
        self.state = TrainState()
        if checkpoint is not None:
            self._restore(checkpoint)
            if changed:
                previous = config_from_dict(checkpoint["model_config"])
                self.state.changes.append({"step": self.state.step, "settings": changed,
                                           "previous": {k: getattr(previous, k) for k in changed}})

    def _device_ids(self) -> list[int] | None:
        return [self.world.device.index] if self.world.device.type == "cuda" else None

    # -- checkpoints ----------------------------------------------------------------------------------

    def _rng_state(self) -> dict:
        state = {"noise": self.noise.get_state(), "torch": torch.get_rng_state()}
        if self.world.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.world.device)
        return state

    def parameter_digest(self) -> str:
        """SHA-256 of G's, D's and the EMA's parameters and buffers, bit for bit."""
        digest = hashlib.sha256()
        for module in (self.G.module, self.D.module, self.G_ema):
            for tensor in module.state_dict().values():
                digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def save(self) -> None:
        """All ranks hand their RNG states and parameter digests to rank 0, which checks that every rank holds the
        same networks (DDP's promise) and writes the checkpoint atomically."""
        rng_states = distributed.all_gather_objects(self._rng_state(), self.world)
        digests = distributed.all_gather_objects(self.parameter_digest(), self.world)
        if len(set(digests)) != 1:
            raise RuntimeError(f"the ranks' networks differ at step {self.state.step} (digests {digests}): "
                               "training is not synchronised; please report this")
        if self.world.is_main:
            save_training_checkpoint(self.out / CHECKPOINT_NAME, {
                "model_config": self.model_cfg.to_dict(), "train_config": dataclasses.asdict(self.cfg),
                "world_size": self.world.world_size, "step": self.state.step, "d_step": self.state.d_step,
                "elapsed_seconds": self.state.elapsed_seconds, "history": self.state.history,
                "changes": self.state.changes,
                "G": self.G.module.state_dict(), "D": self.D.module.state_dict(), "G_ema": self.G_ema.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(), "rng": rng_states,
            })
        distributed.barrier()

    def _restore(self, checkpoint: dict) -> None:
        try:
            self.G.module.load_state_dict(checkpoint["G"])
            self.D.module.load_state_dict(checkpoint["D"])
            self.G_ema.load_state_dict(checkpoint["G_ema"])
            for optimizer, settings, key in zip((self.opt_G, self.opt_D), _adam_settings(self.model_cfg),
                                                ("opt_G", "opt_D")):
                optimizer.load_state_dict(checkpoint[key])  # Adam's moments; lr and betas come from the config
                for group in optimizer.param_groups:
                    group.update(settings)
            rng = checkpoint["rng"][self.world.rank]
        except (KeyError, RuntimeError, ValueError, IndexError) as exc:
            raise CheckpointError(f"{self.out / CHECKPOINT_NAME} does not match model {self.model_cfg.model}: "
                                  f"{exc}; delete it or train into another --out") from None
        self.noise.set_state(rng["noise"])
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.world.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.world.device)
        self.state = TrainState(checkpoint["step"], checkpoint["d_step"], checkpoint["elapsed_seconds"],
                                list(checkpoint.get("history", [])), list(checkpoint.get("changes", [])))

    # -- steps ------------------------------------------------------------------------------------------

    def _latents(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        G = self.G.module
        z = G.draw_latents(self.batch_size, self.noise).to(self.world.device)
        labels = None
        if G.num_classes:
            labels = torch.randint(0, G.num_classes, (self.batch_size,), generator=self.noise).to(self.world.device)
        return z, labels

    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        index = batch_indices(len(self.data.images), self.batch_size, step=self.state.d_step, rank=self.world.rank,
                              world_size=self.world.world_size, seed=self.cfg.seed)
        images = to_model_range(self.data.images[index]).to(self.world.device, memory_format=self.memory_format)
        labels = self.data.labels[index].to(self.world.device) if self.G.module.num_classes else None
        return images, labels

    def discriminator_step(self) -> dict[str, float]:
        cfg = self.model_cfg
        real, real_labels = self._real_batch()
        z, fake_labels = self._latents()
        with torch.no_grad():
            fake = self.G.module(z, fake_labels)
        self.D.module.requires_grad_(True)
        with parametrize.cached():  # one spectral-norm power iteration per update, not one per D call
            real_logits, fake_logits = self.D(real, real_labels), self.D(fake, fake_labels)
            loss = self.loss.discriminator(real_logits, fake_logits)
            logs = {"loss_d": loss.item()}
            if cfg.gp_weight > 0:
                penalty = gradient_penalty(self.D, real, fake, real_labels, cfg.gp_weight, generator=self.noise)
                loss, logs["gp"] = loss + penalty, penalty.item()
            if cfg.drift_weight > 0:
                loss = loss + drift_penalty(real_logits, cfg.drift_weight)
            if cfg.r1_gamma > 0 and cfg.r1_interval == 1:
                penalty, _ = r1_penalty(self.D, real, real_labels, cfg.r1_gamma)
                loss, logs["r1"] = loss + penalty, penalty.item()
        self.opt_D.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_D.step()
        self.state.d_step += 1
        if cfg.r1_gamma > 0 and cfg.r1_interval > 1 and self.state.d_step % cfg.r1_interval == 0:
            penalty, logits = r1_penalty(self.D, real, real_labels, cfg.r1_gamma)
            self.opt_D.zero_grad(set_to_none=True)
            # ×interval: the lazy penalty stands for `interval` steps; 0·logits keeps every weight in the graph for DDP
            (penalty * cfg.r1_interval + 0.0 * logits.sum()).backward()
            self.opt_D.step()
            logs["r1"] = penalty.item()
        return logs

    def generator_step(self) -> dict[str, float]:
        self.D.module.requires_grad_(False)
        z, labels = self._latents()
        loss = self.loss.generator(self.D.module(self.G(z, labels), labels))
        logs = {"loss_g": loss.item()}
        if self.model_cfg.ortho_weight > 0:
            loss = loss + self.model_cfg.ortho_weight * self.G.module.orthogonal_penalty()
        self.opt_G.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_G.step()
        self.D.module.requires_grad_(True)
        distributed.broadcast_buffers(self.G.module)
        distributed.broadcast_buffers(self.D.module)
        update_ema(self.G_ema, self.G.module, self.beta)
        self.state.step += 1
        return logs

    def iteration(self) -> dict[str, float]:
        logs: dict[str, float] = {}
        for _ in range(self.model_cfg.d_steps):
            logs.update(self.discriminator_step())
        logs.update(self.generator_step())
        return logs

    # -- evaluation ----------------------------------------------------------------------------------------

    def reference_stats(self):
        """Real statistics for the periodic FID (rank 0): the given reference; for a built-in set its bundled
        statistics; else the training set's first images, cached as ``out/reference_stats.npz``."""
        from ..api import as_stats
        from ..reference import available_references

        if self.cfg.fid_reference:
            return as_stats(self.cfg.fid_reference, progress=False, device=self.world.device, distributed=False)
        if self.cfg.data in available_references():
            return as_stats(self.cfg.data)
        cached = self.out / "reference_stats.npz"
        if cached.exists():
            return as_stats(str(cached))
        n = min(self.cfg.fid_samples, len(self.data.images))
        stats = as_stats(self.data.images[:n], device=self.world.device, progress=self.cfg.progress, distributed=False)
        stats.meta["source"] = f"first {n} images of {self.data.description}"
        stats.save(cached)
        return stats

    def fid(self) -> float | None:
        """FID of the EMA generator (``fid_samples`` samples, seed 0) on rank 0; other ranks wait."""
        value = None
        if self.world.is_main:
            from ..api import fid

            value = fid(self.G_ema, self.reference_stats(), num_samples=self.cfg.fid_samples,
                        device=self.world.device, progress=self.cfg.progress, seed=0, distributed=False)
        distributed.barrier()
        return value


# DDP notes that the gradient of StyleGAN2's final [1, 48] logit weight arrives transposed and is copied into its
# bucket: a 48-value copy per step, nothing to act on.
warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")


def _log(record: dict, out: Path) -> None:
    with open(out / "log.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")


def train(cfg: TrainConfig) -> TrainState:
    """Train ``cfg.model`` up to ``cfg.steps`` generator steps; returns the final state (every rank)."""
    cfg.validate()
    get_spec(cfg.model)  # an unknown model: a clear error before any set-up
    world = distributed.setup(cfg.device)
    trainer = None
    try:
        trainer = Trainer(cfg, world)
        state, out = trainer.state, trainer.out
        if world.is_main:
            out.mkdir(parents=True, exist_ok=True)
            print(f"ganmetrics train: {cfg.model} on {trainer.data.description}, {world.world_size} process(es) on "
                  f"{world.device}, batch {trainer.batch_size} per process, steps {state.step} → {cfg.steps}",
                  file=sys.stderr)
        started = time.perf_counter() - state.elapsed_seconds
        first_step, first_elapsed = state.step, state.elapsed_seconds
        images_per_step = trainer.batch_size * world.world_size
        while state.step < cfg.steps:
            logs = trainer.iteration()
            state.elapsed_seconds = time.perf_counter() - started
            done = state.step == cfg.steps
            if cfg.fid_every > 0 and state.step % cfg.fid_every == 0 or (done and cfg.fid_every >= 0):
                state.history.append({"step": state.step, "fid": trainer.fid(), "fid_samples": cfg.fid_samples})
                logs["fid"] = state.history[-1]["fid"]
            if world.is_main and (state.step % cfg.log_every == 0 or done or "fid" in logs):
                rate = (state.step - first_step) * images_per_step / max(state.elapsed_seconds - first_elapsed, 1e-9)
                record = {"step": state.step, "kimg": state.step * images_per_step / 1000,
                          "seconds": round(state.elapsed_seconds, 2), **{k: round(v, 5) for k, v in logs.items()}}
                _log(record, out)
                if cfg.progress:
                    text = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
                    print(f"  {text}  ({rate:.0f} img/s)", file=sys.stderr)
            if state.step % cfg.checkpoint_every == 0 or done:
                trainer.save()
        distributed.barrier()  # no rank destroys the group while another is still in a collective
        return state
    finally:
        # The DDP wrappers sit in reference cycles (their hooks), so without this they — and their hold on the
        # gloo/NCCL process group and its pending work — would be freed by whichever garbage collection comes
        # next, possibly during interpreter shutdown after the group is destroyed, where freeing them aborted the
        # process ("terminate called without an active exception", SIGABRT) in some runs.  Free them now.
        del trainer
        gc.collect()
        distributed.teardown(world)
