"""Per-example gradients of the pool, and the on-disk store that SELECT reads them from.

Submodules, lowest layer first:

- ``models_io``: the tokenizer a caller means, and the checkpoints interpolated between θ0
  and θf (models themselves are opened by ``models.lm``: a folder, a ``ModelRef`` with its
  trunk caches, an ``LM`` or a bare module).
- ``layers``: which layers a store covers (``head``, module names, ``blocks.N``) and Δ of each.
- ``closed_form``: the closed-form per-example gradient of the output layer from one forward
  pass (positions, logits and residual from the task's loss object, ``losses``), the
  projector a store uses, and the target direction Δ = θ0 − θf in the same space.
- ``hooks``: per-example gradients of any linear layers from one forward and one backward
  pass per batch, sketched per layer and concatenated after the head's.
- ``pseudolabels``: labels every pool text with the final model and scores it (P-Min / P-Max).
- ``precondition``: the Adam-aware space g ⊘ D beside the raw one (D the pool's per-coordinate
  RMS: exact for an exact space, fitted rank 1 for a sketched one).
- ``store``: writes the gradient store (``grads.f32``, ``target.f32``, ``meta.json``, and with
  ``precondition: rms`` ``grads_rms.f32`` + ``rms.safetensors``), one slice per checkpoint;
  ``store_io`` opens it; ``shards`` cuts it into row ranges and joins them.
- ``pipeline``: the store of a pseudolabelled pool from the config's specs.
"""
