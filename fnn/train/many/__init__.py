"""Many models in one program: ensembles (one model per key), sweeps (one per
hyperparameter configuration) and k-fold cross-validation, trained as vmapped members
by one shared host loop (`.members`), chunked by a memory estimate
(`.memory`)."""
