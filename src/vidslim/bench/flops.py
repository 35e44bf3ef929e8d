"""FLOPs of any model or function, per module, counted the fvcore way (one multiply-add = one FLOP).

Papers in this field (ToMe, TempMe, RLT, SViTT) quote GFLOPs as fvcore counts them: a multiply-add is one
FLOP, so one CLIP ViT-B/32 frame at 224 px is about 4.4 GFLOPs and a ViT-B/16 frame about 17.6.
`count_flops` reproduces that convention on top of `torch.utils.flop_counter` (the registry of
per-operator formulas behind `FlopCounterMode`, which counts 2 per multiply-add; we halve it) and runs
the ops for real, so it sees exactly the shapes a content-adaptive model produces.

What is counted: matrix products and convolutions, i.e. `mm`, `addmm`, `bmm`, `baddbmm`, every
`matmul` / `einsum` / `linear` (they decompose into those), `convolution`, and attention kernels:
`scaled_dot_product_attention` through any backend (the CPU flash kernel
`_scaled_dot_product_flash_attention_for_cpu`, which plain `FlopCounterMode` misses in torch 2.13, the
CUDA flash / efficient / cuDNN kernels, the math fallback through its `bmm`s), the variable-length
kernels (`_flash_attention_forward` with `cu_seqlens`, `torch.nn.attention.varlen`), and FlexAttention.
One attention call over q [B, H, Nq, d], k [B, H, Nk, d], v [B, H, Nk, dv] counts the two products
QK^T and AV: B*H*Nq*Nk*(d + dv) multiply-adds (2*B*H*N*N*d for self-attention). Backward kernels are
counted too when a backward runs inside a `FlopCounter`.

What is not counted (as in fvcore's matmul/conv handles): elementwise ops, activations, softmax,
scaling, masking, residual adds, gathers and sorts. fvcore itself additionally counts norm layers
(5 per element for an affine LayerNorm), batch norm, upsampling and adaptive average pooling; for a
ViT-B/32 frame that is 0.005 GFLOPs (0.1 %), which we leave out.

Honest about shapes, not about intent:
- masked SDPA counts its full (padded) shapes: a padded variable-length batch pays for its padding;
  causal attention counts the full square, as fvcore and torch do.
- packed variable-length attention counts each sequence's real length (the kernels get `cu_seqlens`);
  an implementation that loops over sequences is counted call by call, so also by real lengths.
- FlexAttention counts, from its block mask, the blocks a fused kernel visits (partial and full
  blocks; Q_BLOCK x KV_BLOCK tiles clipped to the real lengths). This is the work block sparsity
  saves (SViTT's edge sparsity). The eager CPU fallback actually computes the dense scores.
  To count it eagerly we switch flex_attention's compile wrapper off while counting
  (`_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG`).
- `torch.compile`d code runs eagerly under the counter (Dynamo does not trace while a dispatch mode is
  active), so it is counted like the eager model; `fullgraph=True` functions refuse to run: count the
  uncompiled model.
- nested (jagged) tensors do not run under a dispatch mode on CPU in torch 2.13; use packed tensors.

Counting needs no real data: build the model on the meta device (`with torch.device("meta"): ...`)
and pass meta inputs; SDPA then takes its math path and counts the same. FlexAttention with a meta
block mask falls back to the dense count.

Per-module attribution uses module forward hooks: an op belongs to every module whose `__call__` is
active. A module called from several places is listed once, under its first caller; ops of a
backward pass go to the root only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.utils.flop_counter as torch_flops
from torch import Tensor, nn
from torch._ops import HigherOrderOperator
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
ROOT = ""  # name of the root module / of everything counted

Formula = Callable[..., int]  # formula(*op_args, out_val=out, **op_kwargs) -> FLOPs (2 per multiply-add)


# --------------------------------------------------------------------------------------------------
# formulas torch's registry lacks, in torch's convention (2 per multiply-add)
# --------------------------------------------------------------------------------------------------


def _sdpa_cpu_flops(query: Tensor, key: Tensor, value: Tensor, *args: Any, **kwargs: Any) -> int:
    """CPU flash SDPA and the overrideable fused kernel: QK^T and AV on [B, H, N, d] inputs."""
    return torch_flops.sdpa_flop_count(query.shape, key.shape, value.shape)


def _sdpa_cpu_backward_flops(
    grad_out: Tensor, query: Tensor, key: Tensor, value: Tensor, *args: Any, **kwargs: Any
) -> int:
    """Backward of the CPU flash SDPA kernel (the four products of the attention backward)."""
    return torch_flops.sdpa_backward_flop_count(grad_out.shape, query.shape, key.shape, value.shape)


def _visited_pairs(num_blocks: Tensor, indices: Tensor, q_len: int, kv_len: int, q_bs: int, kv_bs: int) -> Tensor:
    """(query, key) pairs inside the blocks a block mask visits, per (batch, head): [Bm, Hm] int64."""
    num_blocks, indices = num_blocks.long(), indices.long()
    valid = torch.arange(indices.shape[-1], device=indices.device) < num_blocks[..., None]
    cols = ((kv_len - indices * kv_bs).clamp(0, kv_bs) * valid).sum(-1)  # [Bm, Hm, QB]
    q_starts = torch.arange(num_blocks.shape[-1], device=indices.device) * q_bs
    rows = (q_len - q_starts).clamp(0, q_bs)  # [QB]
    return (cols * rows).sum(-1)


def _flex_attention_flops(
    query: Tensor, key: Tensor, value: Tensor, score_mod: Any, block_mask: tuple, *args: Any, **kwargs: Any
) -> int:
    """FlexAttention forward: QK^T and AV over the tiles its block mask visits (dense if unreadable)."""
    dense = torch_flops.sdpa_flop_count(query.shape, key.shape, value.shape)
    try:
        kv_num, kv_idx, full_num, full_idx = block_mask[2:6]
        q_bs, kv_bs = int(block_mask[-3]), int(block_mask[-2])
    except (TypeError, ValueError, IndexError):
        return dense
    if not isinstance(kv_num, Tensor) or kv_num.device.type == "meta":
        return dense
    b, h_q, q_len, d = query.shape
    kv_len, d_v = key.shape[-2], value.shape[-1]
    pairs = _visited_pairs(kv_num, kv_idx, q_len, kv_len, q_bs, kv_bs)
    if isinstance(full_num, Tensor) and isinstance(full_idx, Tensor):
        pairs = pairs + _visited_pairs(full_num, full_idx, q_len, kv_len, q_bs, kv_bs)
    b_mask, h_mask = pairs.shape  # the block mask may broadcast over batch and heads
    total_pairs = int(pairs.sum()) * (b // b_mask) * (h_q // h_mask)
    return 2 * total_pairs * (d + d_v)


def _formulas() -> dict[Any, Formula]:
    """torch's FLOP formulas (incl. varlen attention if importable) plus the ones it lacks."""
    with suppress(ImportError, RuntimeError):  # registers torch_attn._varlen_attn* formulas on import
        import torch.nn.attention.varlen  # noqa: F401
    from torch._higher_order_ops.flex_attention import flex_attention

    extra: dict[Any, Formula] = {
        aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flops,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_cpu_backward_flops,
        aten._scaled_dot_product_fused_attention_overrideable: _sdpa_cpu_flops,
        aten._scaled_dot_product_fused_attention_overrideable_backward: _sdpa_cpu_backward_flops,
        flex_attention: _flex_attention_flops,
    }
    return {**torch_flops.flop_registry, **extra}


# --------------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlopReport:
    """FLOPs (one multiply-add = one FLOP) of one run, in total and per module.

    by_module: every module that ran (first-call order) -> FLOPs of all ops inside its call, children
    included; "" is the root, i.e. everything. Names are `named_modules()` names of the root
    ("blocks.0.attn"); modules outside the root are named by class ("Linear", "Linear#2").
    self_flops: FLOPs of ops whose innermost running module is this one.
    parents: module -> the module that first called it ("" for top level).
    uncounted: higher-order ops that ran with no formula (their FLOPs are missing from the total).
    """

    total: int
    by_module: dict[str, int]
    by_module_operator: dict[str, dict[str, int]]
    self_flops: dict[str, int]
    parents: dict[str, str]
    uncounted: tuple[str, ...] = ()
    _children: dict[str, list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        children: dict[str, list[str]] = defaultdict(list)
        for name, parent in self.parents.items():
            if name != ROOT:
                children[parent].append(name)
        object.__setattr__(self, "_children", dict(children))

    @property
    def gflops(self) -> float:
        """Total in GFLOPs (fvcore convention)."""
        return self.total / 1e9

    @property
    def by_operator(self) -> dict[str, int]:
        """FLOPs per operator over the whole run ("aten.addmm", "aten.bmm", ...)."""
        return dict(self.by_module_operator.get(ROOT, {}))

    def _subtree(self, name: str) -> int:
        """FLOPs of the ops run by `name` and by the modules it (first) called: a partition of the total."""
        return self.self_flops.get(name, 0) + sum(self._subtree(c) for c in self._children.get(name, []))

    def children(self, name: str = ROOT) -> dict[str, int]:
        """FLOPs of the modules `name` called, plus `"<name> (direct)"` for ops run in its own forward.

        `report.children("encoder.layers")` is not a module that runs (a ModuleList); use the module
        that calls the blocks, e.g. `report.children("encoder")`, or `at_depth`.
        """
        rows = {c: self._subtree(c) for c in self._children.get(name, [])}
        own = self.self_flops.get(name, 0)
        if own:
            rows[_direct(name)] = own
        return rows

    def at_depth(self, depth: int) -> dict[str, int]:
        """One row per module at `depth` name components ("blocks.0" is depth 2); rows sum to the total.

        A module shallower than `depth` is split into the modules it calls (and its own direct ops,
        as "<name> (direct)") unless it calls none; a deeper module whose shallower parents are not
        modules that run (ModuleList items such as "encoder.layers.0" at depth 2) stays whole.
        """
        rows: dict[str, int] = {}

        def visit(name: str) -> None:
            kids = self._children.get(name, [])
            if (name == ROOT or name.count(".") + 1 < depth) and kids:
                own = self.self_flops.get(name, 0)
                if own:
                    rows[_direct(name)] = own
                for kid in kids:
                    visit(kid)
            else:
                rows[name] = self._subtree(name)

        visit(ROOT)
        return rows

    def table(self, depth: int = 2, min_share: float = 0.0) -> str:
        """A plain-text table of `at_depth(depth)`: module, FLOPs (G/M/K by the total's size), share."""
        rows = [(n, f) for n, f in self.at_depth(depth).items() if self.total == 0 or f / self.total >= min_share]
        rows.append(("total", self.total))
        unit, scale = next(((u, s) for u, s in (("G", 1e9), ("M", 1e6), ("K", 1e3)) if self.total >= s), ("", 1.0))
        width = max(len(n) for n, _ in rows)
        lines = [f"{'module':<{width}}  {unit + 'FLOPs':>10}  {'share':>6}"]
        for name, flops in rows:
            share = flops / self.total if self.total else 0.0
            lines.append(f"{name:<{width}}  {flops / scale:>10.4f}  {share:>6.1%}")
        if self.uncounted:
            lines.append(f"not counted (no formula): {', '.join(self.uncounted)}")
        return "\n".join(lines)

    def to_dict(self, depth: int = 2) -> dict[str, Any]:
        """JSON-ready summary: total, GFLOPs, rows at `depth`, per-operator totals."""
        return {
            "flops": self.total,
            "gflops": self.gflops,
            "depth": depth,
            "by_module": self.at_depth(depth),
            "by_operator": self.by_operator,
            "uncounted": list(self.uncounted),
        }


def _direct(name: str) -> str:
    return f"{name} (direct)" if name else "(root direct)"


# --------------------------------------------------------------------------------------------------
# the counter
# --------------------------------------------------------------------------------------------------


class _CountingMode(TorchDispatchMode):
    """Runs every op and hands (op name, FLOPs) of the ones with a formula to `record`."""

    supports_higher_order_operators = True

    def __init__(self, formulas: dict[Any, Formula], record: Callable[[str, int], None],
                 uncounted: Callable[[str], None]) -> None:
        super().__init__()
        self.formulas = formulas
        self.record = record
        self.uncounted = uncounted

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if isinstance(func, HigherOrderOperator):
            # this mode is popped here, so the op runs its own (e.g. dense) implementation uncounted
            out = func(*args, **kwargs)
            formula = self.formulas.get(func)
            if formula is None:
                self.uncounted(func.name())
            else:
                self.record(func.name(), formula(*args, out_val=out, **kwargs))
            return out
        packet = func._overloadpacket
        formula = self.formulas.get(packet)
        if formula is None:
            with self:  # an op with no formula may decompose into ones that have one (as FlopCounterMode)
                result = func.decompose(*args, **kwargs)
            if result is not NotImplemented:
                return result
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        self.record(str(packet), formula(*args, out_val=out, **kwargs))
        return out


@contextmanager
def _eager_flex_attention() -> Iterator[None]:
    """Let eager flex_attention call its op directly (its compile wrapper refuses dispatch modes)."""
    import torch.nn.attention.flex_attention as flex

    flag = "_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG"
    old = getattr(flex, flag, None)
    if old is None:
        yield
        return
    setattr(flex, flag, True)
    try:
        yield
    finally:
        setattr(flex, flag, old)


class FlopCounter:
    """Context manager that counts the FLOPs of everything run inside it, per module.

    `root` names modules (`root.named_modules()` names, root = ""). Use it directly for anything
    `count_flops` does not cover, e.g. a training step:

        with FlopCounter(model) as counter:
            model(x).sum().backward()
        print(counter.report().table(depth=2))
    """

    def __init__(self, root: nn.Module | None = None) -> None:
        self.root = root
        self._names: dict[nn.Module, str] = {}
        self._stack: list[str] = []
        self._reset()

    def _reset(self) -> None:
        self._incl: dict[str, int] = {ROOT: 0}
        self._incl_op: dict[str, dict[str, int]] = {ROOT: defaultdict(int)}
        self._self: dict[str, int] = defaultdict(int)
        self._parents: dict[str, str] = {ROOT: ROOT}
        self._uncounted: list[str] = []
        self._names = {}
        if self.root is not None:
            self._names = {m: n for n, m in self.root.named_modules()}
        self._used_names = set(self._names.values())
        self._stack = []

    def _name_of(self, module: nn.Module) -> str:
        name = self._names.get(module)
        if name is None:  # outside the root: name it by class, and its submodules below it
            base, k = type(module).__name__, 1
            name = base
            while name in self._used_names:
                k += 1
                name = f"{base}#{k}"
            for sub_name, sub in module.named_modules():
                if sub not in self._names:
                    full = f"{name}.{sub_name}" if sub_name else name
                    self._names[sub] = full
                    self._used_names.add(full)
        return name

    def _push(self, module: nn.Module, *args: Any) -> None:
        name = self._name_of(module)
        if name not in self._incl:
            self._incl[name] = 0
            self._incl_op[name] = defaultdict(int)
            self._parents[name] = self._stack[-1] if self._stack else ROOT
        self._stack.append(name)

    def _pop(self, module: nn.Module, *args: Any) -> None:
        if self._stack:
            self._stack.pop()

    def _record(self, op: str, flops: int) -> None:
        self._self[self._stack[-1] if self._stack else ROOT] += flops
        for name in {ROOT, *self._stack}:
            self._incl[name] += flops
            self._incl_op[name][op] += flops

    def __enter__(self) -> FlopCounter:
        self._reset()
        hooks = nn.modules.module
        self._handles = [
            hooks.register_module_forward_pre_hook(self._push),
            hooks.register_module_forward_hook(self._pop, always_call=True),
        ]
        self._flex = _eager_flex_attention()
        self._flex.__enter__()
        self._mode = _CountingMode(_formulas(), self._record, self._uncounted.append)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._mode.__exit__(*exc)
        finally:
            self._flex.__exit__(*exc)
            for handle in self._handles:
                handle.remove()

    def report(self) -> FlopReport:
        """The counts so far, in the fvcore convention (torch's 2-per-multiply-add halved)."""
        return FlopReport(
            total=self._incl[ROOT] // 2,
            by_module={n: f // 2 for n, f in self._incl.items()},
            by_module_operator={n: {op: f // 2 for op, f in ops.items()} for n, ops in self._incl_op.items()},
            self_flops={n: f // 2 for n, f in self._self.items()},
            parents=dict(self._parents),
            uncounted=tuple(dict.fromkeys(self._uncounted)),
        )


def count_flops(model_or_fn: nn.Module | Callable[..., Any], *inputs: Any, **kwargs: Any) -> FlopReport:
    """Run `model_or_fn(*inputs, **kwargs)` once under `torch.no_grad()` and count its FLOPs.

    A module (or a bound method of one, e.g. `model.encode_video`) names the rows after its
    submodules. One multiply-add is one FLOP, as fvcore and the papers count. See the module
    docstring for what is and is not counted.
    """
    root = model_or_fn if isinstance(model_or_fn, nn.Module) else getattr(model_or_fn, "__self__", None)
    with torch.no_grad(), FlopCounter(root if isinstance(root, nn.Module) else None) as counter:
        model_or_fn(*inputs, **kwargs)
    return counter.report()


def flops_of(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run `fn()` once and return (its result, the FLOPs it spent): the meter `vidslim.jobs` takes
    (`vidslim.jobs.meter.FlopMeter`), which fills an index's gflops column."""
    with FlopCounter() as counter:
        out = fn()
    return out, counter.report().total
