"""The primitive gradient transformations, one family per file.

- `fnn.optim.transforms.learning_rate`: ``scale_by_learning_rate`` (fixed or scheduled);
- `fnn.optim.transforms.momentum`: the exponentially weighted average of the gradients;
- `fnn.optim.transforms.adaptive`: RMSProp, Adagrad, AdaDelta scalings;
- `fnn.optim.transforms.adam`: Adam and Nadam; `fnn.optim.transforms.lion`: Lion;
- `fnn.optim.transforms.clip`: clipping by value and by global norm;
- `fnn.optim.transforms.decay`: weight decay and L1 terms;
- `fnn.optim.transforms.masking`: ``masked``, ``partition``, ``freeze``, ``set_to_zero``;
- `fnn.optim.transforms.nonfinite`: skipping steps with NaN/inf gradients.
"""
