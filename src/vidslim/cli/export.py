"""`vidslim export MODEL --method M --out FILE`: write a model, reducers included, as ONNX or a torch.export program.

    vidslim export videomae-b16 --method rlt_budget --set keep=0.5 --out videomae_rlt.onnx
    vidslim export path/to/checkpoint --method tome --set r=8 --out model.pt2 --batch 4
    vidslim export clip-b16 --method tempme --out clip_tempme.onnx --json
    vidslim export videomae-b16 --method tome --out videomae_tome.onnx --dynamic-batch

MODEL is a named config (random weights: for trying the pipeline) or a checkpoint `vs.load_model` reads. The format
follows the file's suffix (.onnx or .pt2). The graph takes a prepared batch of --batch clips in the model's input
shape (any number of clips with --dynamic-batch, run one after another) and is checked against eager mode on another
input before the command succeeds; methods whose token count depends on the pixels (threshold rlt) are refused with
the static method to use instead.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vidslim.cli.options import amount
from vidslim.errors import ConfigError


def add_parser(subparsers: Any) -> None:
    """Register `export` on the `vidslim` command."""
    parser = subparsers.add_parser(
        "export",
        help="write a model with its reduction as ONNX (.onnx) or a torch.export program (.pt2), checked",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
    )
    parser.add_argument("model", metavar="MODEL", help="a model name (vidslim bench --help lists them) or a checkpoint")
    parser.add_argument("--method", default=None,
                        help="reduction, e.g. dense, tome, tempme, tokenprune, rlt_budget, rlt_budget+tome (default: "
                        "a checkpoint's saved reduction, dense for a name)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a method setting (keep=0.5, r=8, tome.r=4) or, for a named model, a config field")
    parser.add_argument("--card", default=None, metavar="FILE", help="a reduction card (`vidslim tune --out`) "
                        "instead of --method")
    parser.add_argument("--out", required=True, metavar="FILE", help="output file: .onnx or .pt2")
    parser.add_argument("--batch", type=int, default=1, help="clips per call the graph takes (default 1)")
    parser.add_argument("--dynamic-batch", action="store_true",
                        help="the graph takes any number of clips, run one after another (instead of --batch)")
    parser.add_argument("--atol", type=amount(0), default=1e-4,
                        help="largest difference from eager accepted (1e-4)")
    parser.add_argument("--no-check", action="store_true", help="skip running the graph against eager mode")
    parser.add_argument("--seed", type=int, default=0, help="random seed of a named model's weights")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def build_model(name: str, method: str | list[Any] | None, settings: list[str], seed: int) -> Any:
    """The model to export: a named config (random weights) or a checkpoint, with `method`'s reducers (a method
    string or a reduction card; checked --set values: config fields go to the model, reducer settings to the
    method)."""
    import torch

    from vidslim.cli.bench import split_settings
    from vidslim.models.loading import load_model
    from vidslim.reduce.registry import build_reduction

    if method is None and settings:
        raise ConfigError("--set needs --method (without one, a checkpoint's saved reduction is exported as it is)")
    if method is None and is_model_name(name):
        method = "dense"  # a name has no saved reduction
    if method is None:
        return load_model(name)
    _, options, source = split_settings(settings, name)
    torch.manual_seed(seed)
    return source.build(build_reduction(method, source.preset, family=source.family, **options))


def is_model_name(name: str) -> bool:
    """Whether MODEL is a registered config name rather than a checkpoint on disk."""
    from pathlib import Path

    from vidslim.models.registry import list_models

    return name in list_models() and not Path(name).exists()


def run(args: argparse.Namespace) -> int:
    """Build, export, check, print what was written."""
    from vidslim.export.api import export_model
    from vidslim.io.paths import output_file

    if args.batch < 1:
        raise ConfigError(f"--batch {args.batch}: the graph takes at least one clip")
    if args.dynamic_batch and args.batch != 1:
        raise ConfigError(f"--batch {args.batch} with --dynamic-batch: a graph takes either a fixed number of clips or "
                          "any number; drop one of them")
    output_file(args.out, "--out")  # before the model is built: a missing folder is a typo, not a folder to make
    from vidslim.bench.card_file import card_or_method

    model = build_model(args.model, card_or_method(args.card, args.method), args.set, args.seed)
    result = export_model(model, args.out, batch_size=args.batch, check=not args.no_check, atol=args.atol,
                          dynamic_batch=args.dynamic_batch)
    methods = "+".join(type(r).__name__ for r in model.reduction) or "dense"
    report = {
        "path": str(result.path),
        "format": result.format,
        "model": args.model,
        "reduction": methods,
        "input_shape": list(result.input_shape),
        "max_abs_diff": result.max_abs_diff,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    checked = "not checked" if result.max_abs_diff is None else f"max |exported - eager| {result.max_abs_diff:.2e}"
    shape = ", ".join("any" if n < 0 else str(n) for n in result.input_shape)
    print(f"wrote {result.path} ({result.format}, {methods}): input [{shape}], {checked}")
    return 0
