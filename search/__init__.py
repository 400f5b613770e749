"""The hyperparameter search (Ray Tune + Optuna) over the policy in ``core``."""
