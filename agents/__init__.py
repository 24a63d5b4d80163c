"""Agents for MovieLensRec-v0 and the ``movielens-rec`` command line.

This package imports :mod:`movielens_env`; the environment never imports it. Importing it
registers the built-in agents (:mod:`agents.builtin_agents`) in the registry
(:mod:`agents.registry`), before any plugin can add its own.
"""

from .builtin_agents import register_builtin_agents

register_builtin_agents()
