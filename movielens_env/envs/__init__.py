"""The environments: ``MovieLensRec-v0`` (``env``), its native batched version
(``vector_env``), and the observation both build (``observation``)."""
