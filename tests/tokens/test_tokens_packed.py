"""The packed token container: layout, views, padding, and clear errors on bad shapes."""

from __future__ import annotations

import pytest
import torch

from vidslim.errors import TokenLayoutError, VidslimError
from vidslim.tokens import NO_POSITION, Tokens


def test_cu_seqlens_offsets_lengths_and_batch_index_by_hand() -> None:
    t = Tokens(torch.zeros(5, 2), (3, 0, 2))
    assert t.cu_seqlens.tolist() == [0, 3, 3, 5]
    assert t.cu_seqlens.dtype == torch.int32
    assert t.offsets == (0, 3, 3, 5)
    assert t.lengths.tolist() == [3, 0, 2]
    assert t.batch_index.tolist() == [0, 0, 0, 2, 2]
    assert (t.batch_size, t.total, t.dim, t.max_seqlen, t.is_uniform) == (3, 5, 2, 3, False)


def test_from_dense_is_a_view_sharing_storage() -> None:
    x = torch.randn(2, 3, 4)
    t = Tokens.from_dense(x)
    assert t.seqlens == (3, 3) and t.is_uniform
    assert t.x.data_ptr() == x.data_ptr()
    dense = t.dense()
    assert dense.data_ptr() == x.data_ptr() and dense.shape == (2, 3, 4)
    x[1, 2, 0] = 42.0  # a write through the original shows in both views
    assert t.x[5, 0] == 42.0 and dense[1, 2, 0] == 42.0


def test_from_dense_broadcasts_shared_pos_and_size() -> None:
    pos = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 0]])
    t = Tokens.from_dense(torch.zeros(2, 3, 4), pos=pos, size=torch.tensor([1.0, 2.0, 3.0]))
    assert t.pos.tolist() == pos.tolist() * 2
    assert t.size.tolist() == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]


def test_from_list_and_split() -> None:
    xs = [torch.randn(2, 3), torch.randn(4, 3), torch.randn(1, 3)]
    pos = [torch.full((n, 3), i) for i, n in enumerate((2, 4, 1))]
    size = [torch.full((n,), float(i + 1)) for i, n in enumerate((2, 4, 1))]
    t = Tokens.from_list(xs, pos, size)
    assert t.seqlens == (2, 4, 1) and t.total == 7
    assert t.pos[:, 0].tolist() == [0, 0, 1, 1, 1, 1, 2]
    assert t.size.tolist() == [1, 1, 2, 2, 2, 2, 3]
    parts = t.split()
    assert len(parts) == 3
    for part, x in zip(parts, xs, strict=True):
        assert torch.equal(part, x)
    assert parts[1].data_ptr() == t.x[2:].data_ptr()  # views, not copies


def test_pad_and_unpad_round_trip_with_pos_and_size() -> None:
    xs = [torch.randn(3, 2), torch.randn(1, 2), torch.randn(4, 2)]
    pos = [torch.randint(0, 5, (n, 3)) for n in (3, 1, 4)]
    size = [torch.rand(n) + 1 for n in (3, 1, 4)]
    t = Tokens.from_list(xs, pos, size)
    padded, mask = t.pad(value=-7.0)
    assert padded.shape == (3, 4, 2)
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False], [True] * 4]
    assert torch.equal(padded[1, 0], xs[1][0]) and bool((padded[1, 1:] == -7.0).all())
    padded_pos = t.pad_values(t.pos, NO_POSITION)
    assert padded_pos[1, 1:].eq(NO_POSITION).all()
    back = Tokens.unpad(padded, t.seqlens, padded_pos, t.pad_values(t.size))
    assert back.seqlens == t.seqlens
    assert torch.equal(back.x, t.x) and torch.equal(back.pos, t.pos) and torch.equal(back.size, t.size)


def test_pad_of_equal_lengths_is_the_dense_view() -> None:
    x = torch.randn(2, 3, 4)
    padded, mask = Tokens.from_dense(x).pad()
    assert padded.data_ptr() == x.data_ptr() and bool(mask.all())
    back = Tokens.unpad(padded, [3, 3])
    assert back.x.data_ptr() == x.data_ptr()


def test_replace_keeps_layout_and_sizes_default_to_ones() -> None:
    t = Tokens(torch.zeros(3, 2), (1, 2))
    u = t.replace(x=torch.ones(3, 2))
    assert u.seqlens == (1, 2) and bool((u.x == 1).all())
    assert t.sizes().tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(TokenLayoutError):
        t.replace(x=torch.ones(4, 2))


@pytest.mark.parametrize(
    "build",
    [
        lambda: Tokens(torch.zeros(2, 3, 4), (6,)),  # x not 2-D
        lambda: Tokens(torch.zeros(5, 2), (2, 2)),  # seqlens do not sum to total
        lambda: Tokens(torch.zeros(2, 2), (3, -1)),  # negative length
        lambda: Tokens(torch.zeros(2, 2), (2,), pos=torch.zeros(2, 2, dtype=torch.long)),  # pos not [total, 3]
        lambda: Tokens(torch.zeros(2, 2), (2,), pos=torch.zeros(2, 3)),  # float positions
        lambda: Tokens(torch.zeros(2, 2), (2,), size=torch.ones(3)),  # size not [total]
        lambda: Tokens.from_dense(torch.zeros(4, 2)),  # not [B, N, D]
        lambda: Tokens.from_dense(torch.zeros(2, 3, 4), pos=torch.zeros(4, 3, dtype=torch.long)),
        lambda: Tokens.from_dense(torch.zeros(2, 3, 4), size=torch.ones(2, 4)),
        lambda: Tokens.from_list([]),
        lambda: Tokens.from_list([torch.zeros(2, 3), torch.zeros(2, 4)]),  # mixed widths
        lambda: Tokens.from_list([torch.zeros(2, 3)], size=[torch.ones(3)]),  # size rows != tokens
        lambda: Tokens.unpad(torch.zeros(2, 3, 4), [3, 4]),  # a length longer than the padding
        lambda: Tokens.unpad(torch.zeros(2, 3, 4), [3]),  # one length for two videos
        lambda: Tokens(torch.zeros(3, 2), (1, 2)).dense(),  # unequal lengths have no dense view
        lambda: Tokens(torch.zeros(3, 2), (1, 2)).pad_values(torch.zeros(4)),
    ],
)
def test_bad_shapes_raise_a_clear_error(build) -> None:
    with pytest.raises(TokenLayoutError) as info:
        build()
    assert isinstance(info.value, VidslimError) and isinstance(info.value, ValueError)
    assert str(info.value)  # a message, naming what was wrong


def test_error_message_names_the_argument_and_the_fix() -> None:
    with pytest.raises(TokenLayoutError, match=r"seqlens sum to 4 but x holds 5"):
        Tokens(torch.zeros(5, 2), (2, 2))
    with pytest.raises(TokenLayoutError, match=r"use pad\(\)"):
        Tokens(torch.zeros(3, 2), (1, 2)).dense()
