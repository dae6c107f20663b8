"""The model layer, leaf first (each module imports only those above it in this list):

- ``arch``: output matrix, blocks, final norm, tie / untie, the same-architecture check;
- ``regime``: ``all | head | top:N``: what trains, the trunk and its fingerprint;
- ``fingerprint``, ``adapters``, ``tops``, ``folders``: model folders on disk (plain, PEFT
  adapter, top folders) and the weights' fingerprint; nothing of caches;
- ``block_at``, ``forward``: trunk states, the top finished from cached states, the last
  block at the label position, under one precision policy;
- ``cache``: trunk cache files (key, build, lookup) and the ``CacheSet`` a step reads;
- ``lm``: the ``LM`` object (module, regime, cache) and ``open_lm``, the one way to open one.
"""

from .arch import check_same_architecture, output_matrix
from .folders import load_model, load_tokenizer, load_weights, save_model
from .lm import LM, ModelLike, ModelRef, as_lm, open_lm

__all__ = [
    "LM",
    "ModelLike",
    "ModelRef",
    "as_lm",
    "check_same_architecture",
    "load_model",
    "load_tokenizer",
    "load_weights",
    "open_lm",
    "output_matrix",
    "save_model",
]
