"""Explain a model's predictions: attributions for any fnn model, and what its layers compute.

Every attribution method explains one score per example, chosen by
``target`` (and ``output`` for a model with several outputs; see
`fnn.explain.targets`), and works on any fnn model in evaluation mode,
compiled once per shape (the same result under ``jit``):

- `saliency`, `gradient_x_input`, `smoothgrad`
  (`fnn.explain.gradients`): from the input gradient;
- `integrated_gradients` (`fnn.explain.integrated`): completeness
  up to a reported delta, five quadrature rules, chunked with ``batch_size``;
- `occlusion` (`fnn.explain.occlude`): forward passes with
  windows of the input hidden;
- `permutation_importance` (`fnn.explain.permutation`): the drop
  in a metric when a tabular feature is shuffled;
- `grad_cam`, `attention_weights`, `intermediates`
  (`fnn.explain.layer_maps`): inside the model, by layer path;
- plots (`fnn.explain.plots`, matplotlib): over images, bars for
  features, a strip over a sequence.

The modules are laid out one way: ``targets`` and ``rows`` below the methods,
``plots`` apart. Training diagnostics (gradient norms, dead units while a
model trains) are `fnn.train.Monitor` and `fnn.train.diagnose`.
"""

from fnn.explain.gradients import gradient_x_input, saliency, smoothgrad
from fnn.explain.integrated import METHODS, integrated_gradients
from fnn.explain.layer_maps import attention_weights, grad_cam, intermediates
from fnn.explain.occlude import occlusion
from fnn.explain.permutation import Importances, permutation_importance
from fnn.explain.plots import (plot_feature_importance, plot_image_attributions,
                               plot_sequence_attributions)

__all__ = ["saliency", "gradient_x_input", "smoothgrad", "integrated_gradients", "METHODS",
           "occlusion", "permutation_importance", "Importances", "grad_cam",
           "attention_weights", "intermediates", "plot_image_attributions",
           "plot_feature_importance", "plot_sequence_attributions"]
