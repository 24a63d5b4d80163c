"""Hyper-parameter tuning on a validation split carved from train (``movielens-rec tune``)."""
