"""How texts become inputs: label letters are single tokens and always survive truncation."""

import pytest
import torch

from weights2data.errors import UserError
from weights2data.formats import (
    LABEL_LETTERS,
    encode_classification,
    encode_lm,
    label_token_ids,
    lm_targets,
)


def test_label_letters_are_single_distinct_tokens(tiny_tokenizer):
    ids = label_token_ids(tiny_tokenizer, 26)
    assert len(set(ids)) == 26
    for letter, tok in zip(LABEL_LETTERS, ids, strict=True):
        assert tiny_tokenizer.encode(letter, add_special_tokens=False) == [tok]


def test_multi_token_label_is_rejected():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = {c: i for i, c in enumerate(" ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
    tok = Tokenizer(models.WordLevel({**chars, "[UNK]": len(chars)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="[UNK]")
    with pytest.raises(UserError, match="must be one"):
        label_token_ids(wrapped, 2)


@pytest.mark.parametrize("truncate", ["left", "right"])
def test_truncation_keeps_room_for_the_label(tiny_tokenizer, truncate):
    text = " ".join(["the cat sat on the mat"] * 10)
    full = tiny_tokenizer.encode(text, add_special_tokens=False)
    batch = encode_classification(
        tiny_tokenizer, [text, "the cat"], max_length=8, truncate=truncate
    )
    assert batch.input_ids.shape[1] == 7
    kept = batch.input_ids[0].tolist()
    assert kept == (full[-7:] if truncate == "left" else full[:7])
    assert batch.label_pos.tolist() == [6, len(tiny_tokenizer.encode("the cat")) - 1]
    assert batch.attention_mask[1].sum() == batch.label_pos[1] + 1


def test_empty_text_still_has_a_position(tiny_tokenizer):
    batch = encode_classification(tiny_tokenizer, [""], max_length=8)
    assert batch.label_pos.tolist() == [0]


def test_lm_encoding_scores_every_text_token(tiny_tokenizer):
    batch = encode_lm(tiny_tokenizer, ["the cat sat", "rain"], max_length=16)
    targets, valid = lm_targets(batch)
    n_tokens = [len(tiny_tokenizer.encode(t)) for t in ["the cat sat", "rain"]]
    assert valid.sum(dim=1).tolist() == n_tokens
    assert batch.input_ids[0, 0] == tiny_tokenizer.bos_token_id


def test_bad_options_are_named(tiny_tokenizer):
    with pytest.raises(UserError, match="truncate"):
        encode_classification(tiny_tokenizer, ["x"], max_length=8, truncate="middle")
    with pytest.raises(UserError, match="max_length"):
        encode_classification(tiny_tokenizer, ["x"], max_length=1)


def test_tokenized_once_batches_as_encoding_each_batch_does(tiny_tokenizer):
    """A finetune tokenizes its splits once and pads each batch from the rows: every batch must
    be the one the per-batch encoding (one ``encode`` per text, as before) would give."""
    from weights2data.formats import Encoding

    texts = ["the cat sat", "", "on the mat " * 30, "a dog", "the"]
    for encoding in (
        Encoding("classification", 8, "left"),
        Encoding("classification", 8, "right"),
        Encoding("sft", 6),
    ):
        tokens = encoding.tokenize(tiny_tokenizer, texts)
        for sel in ([0, 1, 2, 3, 4], [3, 0], [2]):
            got = tokens.batch(sel)
            want = encoding.encode(tiny_tokenizer, [texts[i] for i in sel])
            assert vars(got).keys() == vars(want).keys()
            for name, value in vars(want).items():
                assert torch.equal(getattr(got, name), value), (encoding, sel, name)
        ids = [tiny_tokenizer.encode(t, add_special_tokens=False) for t in texts]
        if encoding.classification and encoding.truncate == "right":
            bos, eos = tiny_tokenizer.bos_token_id, tiny_tokenizer.eos_token_id
            start = [bos if bos is not None else eos]
            assert tokens.rows == [(row[:7] or start) for row in ids]
