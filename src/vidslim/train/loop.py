"""The training loop: `run_training(config, model, task, loaders_factory)` for any nn.Module and task.

What one call does, on every rank (torchrun starts several; one process needs nothing):
1. joins the process group torchrun describes (`distributed`), seeds python / numpy / torch;
2. plans the curriculum: the steps of every stage (an epoch-long stage asks the factory for its data to
   count its batches) and one warm-up + cosine schedule over all of them (`optim.lr_at`);
3. resumes from the newest complete checkpoint in `run_dir` when there is one (`checkpoint`): the hook of
   the checkpoint's stage runs first (so resized tables fit), then weights, optimiser state, grad scaler,
   RNG states and the data position (the sampler skips the steps already done) are restored, so the run
   ends with the same weights as one never interrupted;
4. for each stage: calls `on_stage(stage)` on the model, the task and the `on_stage` argument, asks the
   factory for the stage's data, rebuilds the optimiser only if the hook replaced trainable parameters
   (keeping state by name), wraps model + task in DDP, and trains: micro-batches under autocast,
   gradients accumulated over `grad_accum` (DDP synchronises only the last), clipped, AdamW step at the
   scheduled learning rate, `task.after_step`;
5. logs (rank 0) to metrics.jsonl / train.csv / eval.csv and a tqdm bar with throughput and ETA, evaluates
   every `eval_every` steps and at the end (`evaluate`), checkpoints every `checkpoint_every` steps and
   at the end, and writes summary.json (steps, trainable parameters, broken videos skipped, last metrics).

Divergence never reaches the disk: every step's loss is checked on the device (a flag, read where the loop
syncs anyway: when it logs, and before each checkpoint), and parameters and optimiser state are checked to be
finite before a checkpoint is written; a diverged run stops with a TrainingError naming the step and the
checkpoint it kept.

The run folder belongs to one run at a time (`runlock`: rank 0 holds a lock for the whole call).

Only parameters with requires_grad are trained; whether that is LoRA, a head or everything is the model's
business. Gradient accumulation reproduces the large batch for losses that are means over items
(classification); a contrastive loss sees fewer negatives per micro-batch, as in every implementation.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from vidslim.errors import CheckpointError, ConfigError, TrainingError
from vidslim.train import checkpoint as ckpt
from vidslim.train.batch import move_batch
from vidslim.train.config import Stage, TrainConfig, model_changes, read_run_config
from vidslim.train.distributed import (
    DistInfo,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    broadcast_object,
    init_distributed,
    shutdown,
)
from vidslim.train.divergence import LossWatch, diverged_error
from vidslim.train.evaluation import autocast, evaluate
from vidslim.train.metrics_log import MetricsLog
from vidslim.train.optim import build_optimizer, decay_split, export_state, import_state, lr_at, set_lr, warmup_steps
from vidslim.train.plan import Plan, plan_stages
from vidslim.train.result import TrainResult, count_parameters
from vidslim.train.runlock import hold_run_dir
from vidslim.train.sampler import TrainBatchSampler, epoch_seed
from vidslim.train.seeding import seed_everything, worker_init
from vidslim.train.task import LoadersFactory, StageData, Task, TrainStep

log = logging.getLogger(__name__)

StageHook = Callable[[Stage], None]
StepHook = Callable[[int, dict[str, float]], None]


class _Trainer:
    """State of one `run_training` call (see the module docstring for the sequence)."""

    def __init__(self, config: TrainConfig, model: nn.Module, task: Task, factory: LoadersFactory, info: DistInfo,
                 on_stage: Sequence[StageHook], on_step: StepHook | None) -> None:
        self.config = config
        self.info = info
        self.model = model
        self.task = task
        self.factory = factory
        self.on_stage_hooks = list(on_stage)
        self.on_step = on_step
        self.run_dir = Path(config.run_dir)
        self.device = info.device
        self.step_module = TrainStep(model, task)
        self.optimizer: torch.optim.AdamW | None = None
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        self.data: dict[int, StageData] = {}
        self.metrics = MetricsLog(self.run_dir, enabled=info.is_main)
        self.step = 0
        self.skipped_local = 0
        self.last_eval: dict[str, float] = {}
        self.last_train: dict[str, float] = {}
        self.last_eval_step = -1
        self.saved_step = -1
        self.samples_session = 0
        self.steps_per_epoch: dict[int, int] = {}
        self.bar: Any = None
        self.watch = LossWatch()  # the first step whose loss was not finite, kept on the device
        self.damaged: list[Path] = []  # checkpoints found damaged when resuming: pruned at the next save

    # --- set-up -------------------------------------------------------------------------------------------
    def stage_data(self, index: int) -> StageData:
        """The factory's data for stage `index` (asked once, kept until the stage is over)."""
        if index not in self.data:
            data = self.factory(self.config.stages[index])
            if not isinstance(data, StageData):
                raise ConfigError(f"the loaders factory must return vidslim.train.StageData, got {type(data).__name__}")
            self.data[index] = data
        return self.data[index]

    def make_plan(self) -> Plan:
        return plan_stages(self.config, self.info.world_size,
                           lambda i: len(self.stage_data(i).train))  # type: ignore[arg-type]

    def call_stage_hooks(self, stage: Stage) -> None:
        for owner in (self.model, self.task):
            hook = getattr(owner, "on_stage", None)
            if callable(hook):
                hook(stage)
        for hook in self.on_stage_hooks:
            hook(stage)

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.step_module.named_parameters() if p.requires_grad]

    def refresh_optimizer(self) -> None:
        """(Re)build AdamW when the trainable parameters changed (first stage, or a hook replaced some)."""
        params = self.trainable()
        if self.optimizer is not None:
            current = [p for g in self.optimizer.param_groups for p in g["params"]]
            if {id(p) for p in current} == {id(p) for _, p in params}:
                return
        decay, no_decay = decay_split(self.step_module)
        new = build_optimizer([(decay, self.config.weight_decay), (no_decay, 0.0)], self.config.lr,
                              self.config.betas, self.config.eps)
        if self.optimizer is not None:
            tensors, scalars = export_state(self.optimizer)
            dropped = import_state(new, tensors, scalars, strict=False)
            if dropped:
                log.warning("optimizer state reset for parameters whose shape changed: %s", dropped)
        self.optimizer = new

    def wrap(self) -> nn.Module:
        """The module that runs forward/backward: DDP over model + task when there are several processes."""
        self.step_module.to(self.device)
        if not self.info.distributed:
            return self.step_module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(self.step_module, device_ids=ids,
                                       find_unused_parameters=self.config.find_unused_parameters)

    # --- checkpoints --------------------------------------------------------------------------------------
    def save(self, plan: Plan, stage_index: int) -> None:
        """Checkpoint at the current step (all ranks take part: RNG states and counts are gathered)."""
        assert self.optimizer is not None
        self.check_finite()
        rngs = all_gather_objects(ckpt.capture_rng(), self.info)
        skipped = self.skipped_total()
        if self.info.is_main:
            in_stage = self.step - plan.starts[stage_index]
            per_epoch = self.steps_per_epoch.get(stage_index) or 0
            tensors, scalars = export_state(self.optimizer)
            task_state = self.task.state_dict() if isinstance(self.task, nn.Module) else {}
            state = {
                "stage": stage_index, "stage_name": plan.stages[stage_index].name, "step_in_stage": in_stage,
                "epoch": in_stage // per_epoch if per_epoch else 0,
                "step_in_epoch": in_stage % per_epoch if per_epoch else 0,
                "total_steps": plan.total, "skipped_videos": skipped, "world_size": self.info.world_size,
                "rng": rngs, "optimizer_scalars": scalars, "weights": self.config.checkpoint_weights,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "config": self.config.to_dict(),
            }
            path = ckpt.save_checkpoint(self.run_dir, self.step, state,
                                        ckpt.model_tensors(self.model, self.config.checkpoint_weights), tensors,
                                        dict(task_state), keep=self.config.keep_checkpoints,
                                        damaged=set(self.damaged))
            self.damaged = []  # pruned now (a damaged folder of this very step was replaced by the new one)
            log.info("checkpoint %s", path)
        self.saved_step = self.step
        barrier(self.info)

    def find_resume(self) -> ckpt.LoadedCheckpoint | None:
        if not self.config.resume:
            return None
        path, found = None, None
        if self.info.is_main:
            ckpt.clean_temporary(self.run_dir)
            found = ckpt.latest_checkpoint(self.run_dir, self.damaged)
            path = str(found.path) if found is not None else None
        path = broadcast_object(path, self.info)
        if found is not None or path is None:  # rank 0 has read and verified it already
            return found
        return ckpt.read_checkpoint(path)  # type: ignore[arg-type]

    def write_config(self) -> None:
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))

    def restore(self, loaded: ckpt.LoadedCheckpoint) -> None:
        """Weights, optimiser, scaler, counts and RNG from `loaded` (after the stage hook has run)."""
        state = loaded.state
        try:
            ckpt.load_model_tensors(self.model, loaded.model, f"{loaded.path}/{ckpt.MODEL_NAME}",
                                    partial=state.get("weights") == "trainable")
        except CheckpointError as error:  # name the setting that changed since the checkpoints were written
            raise CheckpointError(f"{error}{model_changes(self.previous, self.config.to_dict())}") from None
        if isinstance(self.task, nn.Module) and loaded.task:
            ckpt.load_model_tensors(self.task, loaded.task, f"{loaded.path}/{ckpt.TASK_NAME}", partial=False)
        self.refresh_optimizer()
        assert self.optimizer is not None
        import_state(self.optimizer, loaded.optimizer, state.get("optimizer_scalars", {}), strict=True)
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.skipped_local = int(state.get("skipped_videos", 0)) if self.info.is_main else 0
        rngs = state.get("rng") or []
        if len(rngs) == self.info.world_size:
            ckpt.restore_rng(rngs[self.info.rank])
        else:
            log.warning("checkpoint written by %d processes, resumed by %d: random streams restart from the seed",
                        len(rngs), self.info.world_size)
            seed_everything(self.config.seed + 7919 * self.step + self.info.rank)

    def recall_logged(self) -> None:
        """After a resume, take the last train record and the evaluation logged at the checkpoint's step from the
        metrics log (the summary of a restarted finished run keeps them; no second evaluation at the end)."""
        found: Any = None
        if self.info.is_main:
            records = self.metrics.records()
            trains = [r for r in records if r.get("kind") == "train"]
            evals = [r for r in records if r.get("kind") == "eval" and r.get("step") == self.step]
            found = ({k: v for k, v in trains[-1].items() if k != "kind"} if trains else {},
                     {k: v for k, v in evals[-1].items() if k not in ("kind", "step", "stage")} if evals else None)
        last_train, last_eval = broadcast_object(found, self.info)  # type: ignore[misc]  # evaluation is collective
        self.last_train = dict(last_train)
        if last_eval:
            self.last_eval, self.last_eval_step = dict(last_eval), self.step

    # --- divergence ---------------------------------------------------------------------------------------
    def local_problem(self) -> str | None:
        """What is not finite in this process (see `divergence.local_problem`), or None."""
        return self.watch.local_problem(self.step, self.step_module, self.optimizer)

    def check_finite(self) -> None:
        """Before a checkpoint (every rank): raise the divergence error if any rank saw a non-finite value."""
        problems = [p for p in all_gather_objects(self.local_problem(), self.info) if p]
        if problems:
            raise self.diverged(str(problems[0]))

    def diverged(self, what: str) -> TrainingError:
        return diverged_error(what, self.config, self.run_dir, self.damaged)

    # --- bookkeeping --------------------------------------------------------------------------------------
    def skipped_total(self) -> int:
        total = all_reduce_sum(torch.tensor([self.skipped_local], dtype=torch.float64, device=self.device), self.info)
        return int(total[0])

    def run_eval(self, stage_index: int) -> None:
        data = self.stage_data(stage_index)
        if data.eval is None:
            return
        c = self.config
        batch = c.eval_batch_size or max(1, self.plan.batch_sizes[stage_index] // self.info.world_size)
        metrics = evaluate(self.model, self.task, data.eval, data.collate, self.info, batch, c.precision, c.seed,
                           c.num_workers, c.video_normalize, c.video_layout)
        self.last_eval = metrics
        self.last_eval_step = self.step
        self.metrics.log({"kind": "eval", "step": self.step, "stage": stage_index, **metrics})
        if self.info.is_main and self.config.progress:
            tqdm.write(f"eval @ step {self.step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

    def log_train(self, sums: Tensor, names: list[str], count: int, samples: int, seconds: float,
                  stage_index: int, epoch: int, lr: float) -> None:
        """All-reduce the interval's sums, check the loss is finite, log a record and update the bar."""
        means = all_reduce_sum(sums, self.info) / (count * self.info.world_size)
        values = dict(zip(names, means.tolist(), strict=True))
        loss = values["loss"]
        if not np.isfinite(loss):  # the same on every rank (all-reduced): all stop together
            problem = self.local_problem()
            raise self.diverged(problem or f"the loss became {loss} at or before step {self.step} in another "
                                           "process")
        record = {"kind": "train", "step": self.step, "stage": stage_index, "epoch": epoch, "lr": lr, **values,
                  "samples_per_s": samples / max(seconds, 1e-9), "skipped_videos": self.skipped_total()}
        self.last_train = {k: float(v) for k, v in record.items() if k != "kind"}
        self.metrics.log(record)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", samples_s=f"{record['samples_per_s']:.1f}")

    # --- the loop -----------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        c = self.config
        started = time.perf_counter()
        seed_everything(c.seed + self.info.rank)
        if c.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        self.previous = read_run_config(self.run_dir) if self.info.is_main else None  # what checkpoints were made by
        self.plan = plan = self.make_plan()
        self.step_module.to(self.device)
        trainable, total = count_parameters(self.step_module)
        warm = warmup_steps(plan.total, c.warmup_ratio, c.warmup_steps)
        loaded = self.find_resume()
        first_stage = 0
        resumed_from = None
        if loaded is not None:
            resumed_from = self.step = loaded.step
            self.saved_step = self.step
            first_stage = int(loaded.state.get("stage", 0))
            if self.step > plan.total or first_stage >= len(plan.stages):
                raise ConfigError(f"{loaded.path}: step {self.step} / stage {first_stage} is past this config's "
                                  f"{plan.total} steps in {len(plan.stages)} stages; use a new run_dir")
            self.metrics.truncate_after(self.step, first_stage)
            self.recall_logged()
        else:
            self.write_config()
            self.metrics.clear()  # starting at step 0: rows of an earlier start killed before a checkpoint go
        if self.info.is_main:
            log.info("training %d of %d parameters (%.2f%%) for %d steps on %d process(es)%s", trainable, total,
                     100.0 * trainable / max(total, 1), plan.total, self.info.world_size,
                     f", resumed at step {self.step}" if resumed_from is not None else "")
        self.bar = tqdm(total=plan.total, initial=self.step, unit="step", dynamic_ncols=True, desc="train",
                        disable=not (self.info.is_main and c.progress))
        try:
            for index in range(first_stage, len(plan.stages)):
                self.data = {k: v for k, v in self.data.items() if k >= index}  # let finished stages' data go
                self.call_stage_hooks(plan.stages[index])
                self.step_module.to(self.device)
                if loaded is not None:
                    self.restore(loaded)
                    self.write_config()  # only now: a resume refused keeps the config its checkpoints were made by
                    loaded = None
                else:
                    self.refresh_optimizer()
                    if self.info.is_main:
                        self.metrics.log({"kind": "stage", "step": self.step, "stage": index,
                                          "name": plan.stages[index].name, **plan.stages[index].overrides})
                self.train_stage(plan, index, warm)
            if self.saved_step != self.step:
                self.save(plan, len(plan.stages) - 1)
            if c.eval_at_end and not (self.last_eval and self.last_eval_step == self.step):
                self.run_eval(len(plan.stages) - 1)
        finally:
            self.bar.close()
        wall = time.perf_counter() - started
        result = TrainResult(self.run_dir, self.step, trainable, total, self.skipped_total(), self.last_eval,
                             self.last_train, resumed_from, wall, self.samples_session / max(wall, 1e-9))
        if self.info.is_main:
            (self.run_dir / "summary.json").write_text(json.dumps(result.summary(), indent=1) + "\n")
            if c.progress:
                print(result.text(), flush=True)
        return result

    def train_stage(self, plan: Plan, index: int, warm: int) -> None:
        """Train stage `index` from the current step to its end (nothing when a resume put us at its end)."""
        c = self.config
        end = plan.starts[index] + plan.steps[index]
        if self.step >= end:
            return
        data = self.stage_data(index)
        sampler = TrainBatchSampler(len(data.train), plan.batch_sizes[index], plan.accums[index],  # type: ignore[arg-type]
                                    self.info.rank, self.info.world_size, c.seed, stage=index)
        self.steps_per_epoch[index] = per_epoch = sampler.steps_per_epoch
        accum = plan.accums[index]
        runner = self.wrap()
        runner.train()
        assert self.optimizer is not None
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        names: list[str] = []
        sums: Tensor | None = None
        count, interval_start = 0, time.perf_counter()
        while self.step < end:
            in_stage = self.step - plan.starts[index]
            epoch, start = divmod(in_stage, per_epoch)
            sampler.set_epoch(epoch, start)
            set_epoch = getattr(data.train, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch)
            loader = DataLoader(data.train, batch_sampler=sampler, num_workers=c.num_workers, collate_fn=data.collate,
                                pin_memory=c.pin_memory and self.device.type == "cuda", worker_init_fn=worker_init,
                                generator=torch.Generator().manual_seed(epoch_seed(c.seed, index, epoch)))
            micro = 0
            step_sums: list[Tensor] = []
            for batch in loader:
                if isinstance(batch, dict):
                    self.skipped_local += int(batch.get("skipped", 0))
                batch = move_batch(batch, self.device, c.video_normalize, c.video_layout)
                micro += 1
                last = micro % accum == 0
                sync = nullcontext() if last or not isinstance(runner, DistributedDataParallel) else runner.no_sync()
                with sync:
                    with autocast(self.device, c.precision):
                        loss, logs = runner(batch)
                    scaled = loss / accum
                    (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
                if not names:
                    names = ["loss", *sorted(logs)]
                step_sums.append(torch.stack([loss.detach().float(), *(logs[k].detach().float().reshape(())
                                                                       for k in names[1:])]))
                if not last:
                    continue
                lr = lr_at(self.step, plan.total, c.lr, warm, c.min_lr, c.warmup_start_lr)
                grad_norm = self.optimizer_step(params, lr)
                stacked = torch.stack(step_sums).mean(0)
                step_sums = []
                stacked = torch.cat([stacked, grad_norm.reshape(1).float().to(stacked.device)])
                sums = stacked if sums is None else sums + stacked
                count += 1
                self.step += 1
                self.watch.see(stacked[0], self.step)
                self.samples_session += plan.batch_sizes[index]
                self.bar.update(1)
                if c.log_every and (self.step % c.log_every == 0 or self.step == end):
                    self.log_train(sums.double(), [*names, "grad_norm"], count,
                                   count * plan.batch_sizes[index], time.perf_counter() - interval_start,
                                   index, epoch, lr)
                    sums, count, interval_start = None, 0, time.perf_counter()
                if self.on_step is not None:
                    self.on_step(self.step, self.last_train)
                if c.checkpoint_every and self.step % c.checkpoint_every == 0:
                    self.save(plan, index)
                if c.eval_every and self.step % c.eval_every == 0:
                    self.run_eval(index)
                if self.step >= end:
                    break

    def optimizer_step(self, params: list[nn.Parameter], lr: float) -> Tensor:
        """Unscale, clip, step at `lr`, zero the gradients, run the task's after_step; returns the grad norm."""
        assert self.optimizer is not None
        c = self.config
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        grads = [p for p in params if p.grad is not None]
        if c.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(grads, c.grad_clip)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in grads]) if grads else torch.zeros(())
        set_lr(self.optimizer, lr)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        after = getattr(self.task, "after_step", None)
        if callable(after):
            after(self.model)
        return norm.detach()


def run_training(
    config: TrainConfig,
    model: nn.Module,
    task: Task,
    loaders_factory: LoadersFactory,
    *,
    on_stage: StageHook | Sequence[StageHook] = (),
    on_step: StepHook | None = None,
    dist_info: DistInfo | None = None,
) -> TrainResult:
    """Train `model` on `task` with the data `loaders_factory(stage)` gives; see the module docstring.

    on_stage: extra hooks called with each stage when it starts (after `model.on_stage` / `task.on_stage`).
    on_step: called on every rank after each optimiser step with (step, last logged train record).
    dist_info: an already joined process group (default: join the one torchrun describes, and leave it after).
    Resumes automatically from RUN/checkpoints when `config.resume` (the default).
    TrainingError when training diverges (nothing non-finite is ever saved).
    RunLockedError when another run holds `config.run_dir`.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"run_training: model must be a torch.nn.Module, got {type(model).__name__}")
    for name in ("loss", "eval_step", "eval_metrics"):
        if not callable(getattr(task, name, None)):
            raise ConfigError(f"run_training: the task lacks {name}(); use vidslim.tasks.RetrievalTask or "
                              "ClassificationTask, or implement vidslim.train.Task")
    hooks = [on_stage] if callable(on_stage) else list(on_stage)
    info = dist_info if dist_info is not None else init_distributed(config.device)
    try:
        with hold_run_dir(config.run_dir, info):
            return _Trainer(config, model, task, loaders_factory, info, hooks, on_step).run()
    finally:
        if dist_info is None:
            shutdown(info)


__all__ = ["TrainResult", "count_parameters", "run_training"]
