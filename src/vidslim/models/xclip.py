"""X-CLIP (Ni et al., ECCV 2022), transformers' `XCLIPModel`: CLIP for video with cross-frame message tokens, a
multi-frame integration transformer and video-specific text prompts.

    frames -> CLIP vision tower, every block with one message token per frame (`xclip_parts.XClipBlock`)
           -> per-frame CLS -> ln_post -> proj -> MIT (+ frame positions, CLIP blocks, residual, mean) -> video [E]
    patch tokens of the last block -> prompts_visual_ln -> prompts_visual_proj -> mean over frames per patch slot
           -> the video's prompt context [P, E]
    text -> CLIP's text tower (causal, pooled at argmax(ids), X-CLIP's legacy rule) -> text [E]
    similarity(video, text) = cos(video, text + prompts_generator(text, context of that video))

The text embedding depends on the video, so a text cannot be embedded once and compared with a plain dot product.
The choice here, for retrieval and for the `VideoTextModel` contract:
- `encode_video(video) -> [B, 1 + P, E]`, a video *state*: row 0 is the video embedding (transformers'
  `get_video_features`, not normalised), rows 1..P the prompt context (one row per patch slot of the frame grid);
  `video_embedding(state)` is row 0 alone, for uses that need a [B, E] vector (a classifier head, say), and
  `encode_video_embedding(video)` computes that row without the prompt context (what `vidslim embed` stores);
- `encode_text(text) -> [N, E]`: the unprompted text embedding (`get_text_features`);
- `retrieval_cosine(text_emb, state) -> [N_text, N_video]`: the cosine of every (text, video) pair with the text
  prompted by that video, exactly transformers' `logits_per_text / logit_scale`; `similarity` is it times
  logit_scale.exp(), like CLIP's. The retrieval task (`vidslim.tasks.retrieval`) calls `retrieval_cosine` in place
  of the plain cosine whenever a model defines it: the one generic hook.

Reducers act on the per-frame vision tower as on CLIP (`cls_tokens=1`, per-frame sequences, `per_frame=True`):
ToMe, TempMe and per-frame RLT; message tokens never reach them (see `xclip_parts`). The prompt context is the
size-weighted mean of the last block's patch tokens in each patch slot (h, w) of the video: with no reducer that is
transformers' mean over frames; a merged token counts in its destination's slot with the patches it stands for,
and a slot with no token left is an all-zero row that the prompt generator does not attend to. `encode_video`
therefore runs the last block on every token; `forward` and `encode_frames`, which read the CLS tokens only,
skip the prompt context and let the last block compute just the CLS tokens, as CLIP does (same outputs).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidslim.errors import ConfigError
from vidslim.models.base import ReducibleModel
from vidslim.models.clip import CLIP, Transformer, VisionTransformer
from vidslim.models.config_shape import FrameTextShape, check_heads
from vidslim.models.xclip_parts import MultiFrameIntegration, PromptGenerator, XClipEncoder
from vidslim.tokens import Tokens
from vidslim.tokens.protocol import HookContext


@dataclasses.dataclass
class XClipConfig(FrameTextShape):
    """Shape of an X-CLIP: CLIP's fields (same names) plus the MIT and the prompt generator. `mit_width` must
    equal `embed_dim` (the MIT runs on projected frame embeddings); `num_frames` is fixed by the MIT's table."""

    num_frames: int = 8
    eot_token_id: int | None = None  # X-CLIP pools at argmax(ids) (transformers forces its legacy rule)
    mit_width: int = 512
    mit_layers: int = 1
    mit_heads: int = 8
    mit_mlp_dim: int = 2048
    prompt_layers: int = 2
    prompt_heads: int = 8
    prompt_alpha: float = 0.1
    prompt_act: str = "quick_gelu"
    logit_scale_init: float = math.log(1 / 0.07)

    def validate(self) -> None:
        """Raise ConfigError when the sizes do not fit together."""
        super().validate()
        check_heads(self, ("mit_width", "mit_heads"), ("embed_dim", "prompt_heads"))
        if self.mit_width != self.embed_dim:
            raise ConfigError(f"mit_width={self.mit_width} must equal embed_dim={self.embed_dim}: the MIT runs on the "
                              "projected frame embeddings")


class XClipVision(VisionTransformer):
    """CLIP's image tower with X-CLIP's blocks (`xclip_parts.XClipBlock`) and the prompt-context projection."""

    cls_readout = True  # the last block computes only the CLS tokens when nothing reads the patch tokens

    def __init__(self, c: XClipConfig) -> None:
        super().__init__(dataclasses.replace(c, vision_layers=0))  # type: ignore[arg-type]  # CLIP's blocks: none
        self.config = c  # type: ignore[assignment]
        self.transformer = XClipEncoder(c.vision_width, c.vision_layers, c.vision_heads, c.vision_mlp_dim,
                                        c.norm_eps, c.act, c.drop_path)  # type: ignore[assignment]
        self.prompts_visual_ln = nn.LayerNorm(c.vision_width, eps=c.norm_eps)
        self.prompts_visual_proj = nn.Parameter(torch.randn(c.vision_width, c.embed_dim) * c.vision_width**-0.5)

    def run(
        self, tokens: Tokens, ctx: HookContext | None, hooks: Any, batch: int, frames: int, cls_only: bool = False
    ) -> Tokens:
        """The blocks, each fed the message tokens of the CLS tokens it receives. cls_only (and `cls_readout`):
        the last block returns the B·T CLS tokens only (the prompt context then cannot be read)."""
        if ctx is not None and hooks is not None:
            hooks.start(tokens, ctx)
        last = len(self.transformer.resblocks) - 1
        for i, block in enumerate(self.transformer.resblocks):
            if ctx is not None:
                ctx.layer = i
            messages = block.messages(self.frame_cls(tokens, batch, frames))
            readout = batch * frames if cls_only and self.cls_readout and i == last else None
            tokens = block(tokens, ctx, hooks, readout, messages=messages)
        return tokens

    def prompt_context(self, tokens: Tokens, batch: int, frames: int, whole: bool = False) -> Tensor:
        """[B, P, E]: per patch slot, the size-weighted mean over the video's patch tokens in that slot of
        ln -> proj of the last block's tokens; all zeros where no token is left (see the module docstring).

        whole: the tokens are every frame's [CLS, patches] in grid order (no reducer ran), so the slots are a view."""
        g = self.config.grid
        slots = g[0] * g[1]
        if whole:
            x = tokens.dense()[:, 1:]  # transformers' mean over frames
            f = self.prompts_visual_ln(x) @ self.prompts_visual_proj.to(x.dtype)
            return f.view(batch, frames, slots, -1).mean(dim=1)
        if tokens.pos is None:
            raise ValueError("a reducer dropped Tokens.pos: X-CLIP's prompt context cannot place the patch tokens")
        patch = tokens.pos[:, 1] >= 0
        x, pos = tokens.x[patch], tokens.pos[patch]
        video = (tokens.batch_index[patch] * batch) // tokens.batch_size  # sequences are video-major
        weight = tokens.sizes()[patch].to(x.dtype)
        f = self.prompts_visual_ln(x) @ self.prompts_visual_proj.to(x.dtype)
        index = video * slots + pos[:, 1] * g[1] + pos[:, 2]
        total = f.new_zeros(batch * slots).index_add_(0, index, weight)
        summed = f.new_zeros(batch * slots, f.shape[-1]).index_add_(0, index, f * weight[:, None])
        return (summed / total.clamp_min(1e-6)[:, None]).view(batch, slots, -1)


class XCLIP(CLIP):
    """X-CLIP for video-text retrieval (see the module docstring). A CLIP subclass for its text tower and tokenizer;
    the vision tower, MIT and prompt generator are X-CLIP's."""

    family = "xclip"
    layout = "TCHW"
    per_frame = True

    def __init__(self, config: XClipConfig, reduction: list[object] | None = None) -> None:
        config.validate()
        ReducibleModel.__init__(self, config)  # CLIP's own __init__ would build a CLIP vision tower to throw away
        c = config
        self.visual = XClipVision(c)
        self.transformer = Transformer(c.text_width, c.text_layers, c.text_heads, c.text_mlp_dim, c.norm_eps, c.act,
                                       True, 0.0)
        self.token_embedding = nn.Embedding(c.vocab_size, c.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(c.context_length, c.text_width))
        self.ln_final = nn.LayerNorm(c.text_width, eps=c.norm_eps)
        self.text_projection = nn.Parameter(torch.empty(c.text_width, c.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(c.logit_scale_init))
        self.mit = MultiFrameIntegration(c.num_frames, c.mit_width, c.mit_layers, c.mit_heads, c.mit_mlp_dim,
                                         c.norm_eps, c.act)
        self.prompts_generator = PromptGenerator(c.embed_dim, c.prompt_layers, c.prompt_heads, c.norm_eps,
                                                 c.norm_eps, c.prompt_act, c.prompt_alpha)
        if c.num_classes > 0:
            self.head = nn.Linear(c.embed_dim, c.num_classes)
        self.tokenizer: Any = None
        self._init_text()
        self.set_reduction(reduction)

    # ------------------------------------------------------------------------------------------ vision
    def encode_tokens(
        self, video: Any, token_mask: Tensor | None = None, cls_only: bool = False
    ) -> tuple[Tokens, int, int]:
        """A prepared or decoded batch -> (the last block's tokens, B, T); cls_only: its CLS tokens only."""
        video = self.prepare_input(video)
        b, t = self.visual.check_video(video)
        if t != self.config.num_frames:
            raise ConfigError(f"this X-CLIP takes {self.config.num_frames} frames per video (its MIT's frame "
                              f"positions), got {t}: sample {self.config.num_frames} frames per clip")
        tokens = self.embed_input(video, token_mask)
        ctx = None
        if self.hooks is not None:
            g = self.config.grid
            ctx = self.hook_context(self.num_layers, b, t, 1, (t, g[0], g[1]), self.visual, input_sequences=b * t)
        return self.visual.run(tokens, ctx, self.hooks, b, t, cls_only), b, t

    def encode_frames(self, video: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """Per-frame embeddings [B, T, E] (CLS -> ln_post -> proj), the MIT's input."""
        tokens, b, t = self.encode_tokens(video, token_mask, cls_only=True)
        return self.visual.project(self.visual.frame_cls(tokens, b, t))

    def encode_video(self, video: Any, frame_mask: Tensor | None = None, token_mask: Tensor | None = None) -> Tensor:
        """Video -> its state [B, 1 + P, E]: row 0 the video embedding (MIT output, not normalised), rows 1.. the
        prompt context. frame_mask is refused: the MIT reads a fixed number of frames."""
        if frame_mask is not None:
            raise ConfigError("X-CLIP reads exactly num_frames frames per video (its MIT), so frame_mask= is not "
                              "supported: sample every clip to the model's num_frames")
        tokens, b, t = self.encode_tokens(video, token_mask)
        emb = self.mit(self.visual.project(self.visual.frame_cls(tokens, b, t)))
        whole = self.hooks is None and self.selector is None
        context = self.visual.prompt_context(tokens, b, t, whole)
        return torch.cat((emb[:, None], context.to(emb.dtype)), dim=1)

    @staticmethod
    def video_embedding(state: Tensor) -> Tensor:
        """The video embedding [B, E] of a state from `encode_video` (transformers' `get_video_features`)."""
        return state[:, 0]

    def encode_image(self, images: Tensor) -> Tensor:
        raise ConfigError("X-CLIP embeds videos of num_frames frames (its MIT), not single images: use encode_video")

    # ------------------------------------------------------------------------------------------ similarity
    def retrieval_cosine(self, text_emb: Tensor, video_state: Tensor, chunk: int | None = None) -> Tensor:
        """[N_text, N_video] cosines of every text prompted by every video with that video's embedding.

        text_emb: [N, E] from `encode_text`; video_state: [M, 1 + P, E] from `encode_video`. Videos are taken
        `chunk` at a time (default: as many as keep the prompt generator's largest activation near 64 MB)."""
        if video_state.dim() != 3 or text_emb.dim() != 2 or text_emb.shape[-1] != video_state.shape[-1]:
            raise ConfigError(f"retrieval_cosine takes text embeddings [N, E] and video states [M, 1 + P, E] from "
                              f"encode_video, got {tuple(text_emb.shape)} and {tuple(video_state.shape)}")
        dtype = self.prompts_generator.alpha.dtype
        n, e = text_emb.shape
        step = chunk or max(1, (1 << 24) // max(1, n * 4 * e))
        text = text_emb.to(dtype)
        out = []
        for lo in range(0, video_state.shape[0], step):
            state = video_state[lo:lo + step].to(dtype)
            context = state[:, 1:]
            valid = (context != 0).any(dim=-1)
            valid = valid | ~valid.any(dim=-1, keepdim=True)  # never an empty softmax
            prompted = text + self.prompts_generator(text.expand(state.shape[0], n, e), context, valid)
            out.append(torch.einsum("md,mnd->nm", F.normalize(state[:, 0], dim=-1), F.normalize(prompted, dim=-1)))
        return torch.cat(out, dim=1) if out else text.new_zeros(n, 0)

    def similarity(self, video_emb: Tensor, text_emb: Tensor) -> Tensor:
        """logit_scale.exp() · `retrieval_cosine`: [N_text, N_video] (transformers' logits_per_text)."""
        return self.logit_scale.exp() * self.retrieval_cosine(text_emb, video_emb)

    def encode_video_embedding(self, video: Any, token_mask: Tensor | None = None) -> Tensor:
        """Video -> its embedding [B, E] alone (`video_embedding(encode_video(video))`, transformers'
        `get_video_features`), without computing the prompt context: the one vector per video that a search index
        stores (`vidslim.jobs.encode` calls this hook when a model has it)."""
        return self.mit(self.encode_frames(video, token_mask))

    def forward(self, video: Tensor, token_mask: Tensor | None = None) -> Tensor:
        """Video -> the video embedding [B, E] (`encode_video_embedding`), or logits [B, num_classes] when built
        with num_classes."""
        emb = self.encode_video_embedding(video, token_mask)
        head = getattr(self, "head", None)
        return head(emb) if head is not None else emb

    def prompted_text(self, text: Tensor | str | Sequence[str], video_state: Tensor) -> Tensor:
        """[M, N, E]: the N texts prompted by each of M videos (transformers' text_embeds before normalising)."""
        emb = self.encode_text(text)
        context = video_state[:, 1:]
        valid = (context != 0).any(dim=-1)
        expanded = emb.expand(video_state.shape[0], *emb.shape)
        return emb + self.prompts_generator(expanded, context, valid | ~valid.any(-1, keepdim=True))
