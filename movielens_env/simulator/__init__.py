"""The simulated users: the MF fit (``mf``), everything an env reads (``world``), choosing
slates from actions (``scoring``), and how a user rates, is rewarded and changes
(``user_model``)."""
