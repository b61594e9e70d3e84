"""The host side between epochs: starting values, the history and its checks, early
stopping, callbacks, the progress bar, checkpoints and resume."""
