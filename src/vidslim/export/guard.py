"""Which reductions export faithfully, and a one-line refusal for those that cannot.

A traced graph (torch.export, ONNX) freezes every shape and every Python decision of the example it was traced
on. That is faithful for the reducers whose token counts depend only on the input's shape: ToMe and TempMe (r and
the merge counts come from sequence lengths), TokenPrune (ceil(keep·N) per sequence), and RLTBudget (k tubelets
per clip). It is not for those whose counts or choices depend on the pixels or on a random draw:

- threshold RLT keeps as many tubelets as the video changes in (its static variant is `vs.RLTBudget`);
- random masking and TokenPrune(score="random") draw new tokens on every call;
- SViTT's sparse attention builds its block pattern from random draws and token positions per call;
- source tracing (`trace_source=True`) fills a Python-side map the graph cannot carry.

Those are refused here, before tracing, with a message that names what to export instead; anything else is
traced and then checked against eager on another input (`vidslim.export.api`).
"""

from __future__ import annotations

from collections.abc import Iterable

from vidslim.errors import VidslimError

#: the method names that export, for messages
EXPORTABLE = "dense, tome, tempme, tokenprune, rlt_budget"


class ExportError(VidslimError):
    """A model cannot be exported faithfully, or the exported graph does not match the model."""


def refusal(reducer: object) -> str | None:
    """Why `reducer` cannot be exported faithfully (one line naming what to use instead), or None."""
    from vidslim.attention.svitt import SparseAttention
    from vidslim.reduce.svitt_prune import TokenPrune
    from vidslim.tokenize.rlt import RLT, RandomMask

    if isinstance(reducer, RLT):
        return ("threshold RLT (vs.RLT) keeps as many tubelets as the video changes in, so a traced graph would "
                "freeze the token count of the example; export RLT with a fixed budget instead: "
                "vs.RLTBudget(keep=0.5) (--method rlt_budget), which keeps exactly k tubelets per clip by RLT's scores")
    if isinstance(reducer, RandomMask):
        return ("random masking (vs.RandomMask) draws new tubelets on every call, which a traced graph cannot "
                "repeat; export vs.RLTBudget(keep=...) (--method rlt_budget) for a fixed token count")
    if isinstance(reducer, TokenPrune) and reducer.score == "random":
        return ("TokenPrune(score='random') draws new scores on every call, which a traced graph cannot repeat; "
                "export TokenPrune with score='auto', 'cls' or 'mean'")
    if isinstance(reducer, SparseAttention):
        return ("SViTT's sparse attention (svitt) draws its random blocks and orders tokens per call, so its pattern "
                f"cannot be traced; export one of: {EXPORTABLE}")
    if getattr(reducer, "trace_source", False):
        return (f"{type(reducer).__name__}(trace_source=True) fills a Python-side source map that a traced graph "
                "cannot carry; export it with trace_source=False")
    return None


def check_exportable(reducers: Iterable[object]) -> None:
    """An ExportError (one line) for the first reducer that cannot be exported faithfully."""
    for reducer in reducers:
        why = refusal(reducer)
        if why is not None:
            raise ExportError(f"cannot export this model faithfully: {why}")
