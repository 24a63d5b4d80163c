"""Agents for MovieLensRec-v0 and the ``movielens-rec`` command line.

This package imports :mod:`movielens_env`; the environment never imports it.
"""
