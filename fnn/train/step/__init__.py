"""What one training step computes: the static configuration (:mod:`.train_config`), the
loss per output (:mod:`.outputs`), precision policies and loss scaling, the gradients
(:mod:`.gradients`), the step itself (:mod:`.train_step`), and the checks of the data
against the step's configuration (:mod:`.checks`), run on shapes before anything compiles.

``fnn.train.step.make_train_step`` is read from this package as before.
"""

from fnn.train.step.train_step import jitted_step, make_train_step, train_step
