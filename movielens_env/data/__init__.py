"""The data: GroupLens formats and where their files live (``formats``, ``sources``), parsing
(``parsing``), the prepared cache (``prepared``), generated logs (``synthetic``), the loaded
log (``ratings``), the per-user temporal split (``split``), and loading by name (``load``,
the entry point)."""
