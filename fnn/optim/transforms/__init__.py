"""The primitive gradient transformations, one family per file.

- :mod:`~fnn.optim.transforms.learning_rate`: ``scale_by_learning_rate`` (fixed or scheduled);
- :mod:`~fnn.optim.transforms.momentum`: the exponentially weighted average of the gradients;
- :mod:`~fnn.optim.transforms.adaptive`: RMSProp, Adagrad, AdaDelta scalings;
- :mod:`~fnn.optim.transforms.adam`: Adam and Nadam; :mod:`~fnn.optim.transforms.lion`: Lion;
- :mod:`~fnn.optim.transforms.clip`: clipping by value and by global norm;
- :mod:`~fnn.optim.transforms.decay`: weight decay and L1 terms;
- :mod:`~fnn.optim.transforms.masking`: ``masked``, ``partition``, ``freeze``, ``set_to_zero``;
- :mod:`~fnn.optim.transforms.nonfinite`: skipping steps with NaN/inf gradients.
"""
