"""Last-layer gradients of the pool, and the on-disk store that SELECT reads them from.

Submodules, lowest layer first:

- ``models_io``: turns a model folder (or an already loaded model) into the model and tokenizer
  the other modules work with, and yields the checkpoints interpolated between θ0 and θf.
- ``closed_form``: the closed-form per-example gradient of the output layer from one forward
  pass, the projector a store uses, and the target direction Δ = θ0 − θf in the same space.
- ``pseudolabels``: labels every pool text with the final model and scores it (P-Min / P-Max).
- ``store``: writes, opens, shards and gathers the gradient store (``grads.f32``,
  ``target.f32``, ``meta.json``), one slice per checkpoint.
"""
