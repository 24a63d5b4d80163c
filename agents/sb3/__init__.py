"""Stable-Baselines3 DDPG, TD3 and SAC: their hyper-parameters (``config``, light to import)
and thin factories that train, save and load them (``train``)."""
