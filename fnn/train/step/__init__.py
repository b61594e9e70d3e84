"""What one training step computes: the static configuration (`.train_config`), the
loss per output (`.outputs`), precision policies and loss scaling, the gradients
(`.gradients`), the step itself (`.train_step`), and the checks of the data
against the step's configuration (`.checks`), run on shapes before anything compiles.

``fnn.train.step.make_train_step`` is read from this package as before.
"""

from fnn.train.step.train_step import jitted_step, make_train_step, train_step
