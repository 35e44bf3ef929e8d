"""A graph that takes any number of clips: the one-clip graph mapped over the batch dimension.

vidslim's token container holds one Python length per clip (`Tokens.seqlens`), so a traced graph fixes the
number of clips it was traced with. Every clip is computed on its own (reducers act per clip or per frame), so
the graph of one clip, run on each clip in turn, is the model on any batch:

- torch.export (.pt2): the one-clip program is traced once more inside `torch`'s `map` operator over a batch
  dimension declared dynamic (`torch.export.Dim`), so the saved program takes [N, ...] for any N >= 1;
- ONNX: the one-clip graph becomes the body of an ONNX `Scan` over the first axis of the input (the exporter has
  no translation for `map`), with an Unsqueeze before it and a Squeeze after each output; the weights stay in the
  outer graph, which the body reads by name.

The clips run one after another inside the graph, so a fixed batch (the default) is faster where the batch is
known: it multiplies the weights with every clip's tokens at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

#: the name of the batch dimension in both formats
BATCH = "batch"


class _EachClip(nn.Module):
    """`inner` (a one-clip graph, [1, ...] -> outputs with a leading 1) run on each clip of [N, ...]."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, video: Tensor) -> Any:
        from torch._higher_order_ops.map import map as map_clips  # the operator torch.export keeps as a loop

        return map_clips(lambda clip: _squeeze(self.inner(clip.unsqueeze(0))), video)


def _squeeze(out: Any) -> Any:
    """Outputs of one clip without their batch dimension of 1."""
    return tuple(t.squeeze(0) for t in out) if isinstance(out, (tuple, list)) else out.squeeze(0)


def trace_any_batch(one_clip: Any, clip: Tensor) -> Any:
    """A torch.export program taking [N, ...] clips for any N >= 1, from the program `one_clip` traced on [1, ...].

    clip: one prepared clip [1, ...]; two copies of it trace the map (a batch of 1 would be specialised to 1).
    """
    wrapper = _EachClip(one_clip.module())
    two = torch.cat([clip, clip])
    batch = torch.export.Dim(BATCH, min=1)
    return torch.export.export(wrapper, (two,), dynamic_shapes=({0: batch},), strict=False)


def scan_over_batch(path: Path) -> None:
    """Rewrite the one-clip ONNX graph at `path` (input [1, ...]) into one that takes [batch, ...] (see above).

    The inputs and outputs keep their names outside; inside the body, where a name may be given only once, the
    one-clip graph's own input and outputs are renamed."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    inner = {v.name: f"{v.name}__one_clip" for v in (*graph.input, *graph.output)}
    nodes = list(graph.node)
    for node in nodes:
        node.input[:] = [inner.get(n, n) for n in node.input]
        node.output[:] = [inner.get(n, n) for n in node.output]
    values = list(graph.value_info)
    for value in values:
        value.name = inner.get(value.name, value.name)

    def info(name: str, like: Any, batch: list[Any]) -> Any:
        dims = [d.dim_param or d.dim_value for d in like.type.tensor_type.shape.dim[1:]]
        return helper.make_tensor_value_info(name, like.type.tensor_type.elem_type, batch + dims)

    (source,) = graph.input
    axis = "__batch_axis"
    clip = info(f"{source.name}__clip", source, [])
    body_nodes = [helper.make_node("Unsqueeze", [clip.name, axis], [inner[source.name]]), *nodes]
    body_outputs = []
    for out in graph.output:
        body_outputs.append(info(f"{out.name}__clip", out, []))
        body_nodes.append(helper.make_node("Squeeze", [inner[out.name], axis], [body_outputs[-1].name]))
    body = helper.make_graph(body_nodes, "one_clip", [clip], body_outputs, value_info=values)
    outer_outs = [info(out.name, out, [BATCH]) for out in graph.output]
    scan = helper.make_node("Scan", [source.name], [o.name for o in outer_outs], body=body, num_scan_inputs=1)
    outer = helper.make_graph([scan], graph.name, [info(source.name, source, [BATCH])], outer_outs,
                              initializer=[*graph.initializer, helper.make_tensor(axis, TensorProto.INT64, [1], [0])])
    model.graph.CopyFrom(outer)
    big = sum(t.ByteSize() for t in model.graph.initializer) > 1_800_000_000  # protobuf's 2 GB limit
    onnx.save_model(model, str(path), save_as_external_data=big, location=f"{path.name}.data" if big else None)


__all__ = ["BATCH", "scan_over_batch", "trace_any_batch"]
