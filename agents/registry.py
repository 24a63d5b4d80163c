"""The agent registry: the benchmark and the CLI look agents up here by name.

A third-party agent joins the leaderboard with one entry::

    from agents.registry import TrainedAgent, register_agent

    def train_my_agent(ctx):
        return TrainedAgent(policy=lambda obs: my_action(obs))

    register_agent("my-agent", train_my_agent, "what it is")

An agent whose trained artefact can be saved also registers an :class:`~agents.artefact.Artefact`
(how to train it into a run folder and load it back): ``movielens-rec train``, ``evaluate`` and
``recommend`` then work for it.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import re
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from movielens_env import load_world
from movielens_env.envs.observation import OBS_MODES
from movielens_env.errors import ArgumentError
from movielens_env.simulator.world import RecWorld
from movielens_env.storage import file_sha256, is_regular_file, read_small_bytes

from .artefact import Artefact
from .trainer_state import MAX_VALUES as MAX_STATE_VALUES
from .trainer_state import StateTooLarge, trainer_state


@dataclass(frozen=True)
class TrainContext:
    """What a trainer gets.

    Attributes:
        env_kwargs: keyword arguments of ``gym.make("MovieLensRec-v0", ...)`` (train split).
        seed: seed of this run; a trainer must be deterministic given it.
        timesteps: environment-step budget for RL agents (baselines ignore it).
        run_dir: a folder of this run for checkpoints, or ``None``.
        on_step: call it with the number of environment steps just taken, for progress bars.
        config: the agent's registered config (JSON values; what its runs are keyed by), which
            the built-in trainers train with; empty for an agent registered without one.
    """

    env_kwargs: dict[str, Any]
    seed: int
    timesteps: int
    run_dir: Path | None = None
    on_step: Callable[[int], None] = lambda steps: None
    config: dict[str, Any] = field(default_factory=dict)

    def world(self) -> RecWorld:
        """The shared data, split and MF model of this run's env (train ratings only)."""
        return load_world(**self.env_kwargs)


@dataclass
class TrainedAgent:
    """A trainer's result: any policy the evaluation accepts, and its learning curve.

    Attributes:
        policy: a Ranker, an SB3-style model (``predict``) or a callable ``obs -> action``.
        learning_curve: (environment steps so far, episode return) per training episode.
    """

    policy: Any
    learning_curve: list[tuple[int, float]] = field(default_factory=list)


@dataclass(frozen=True)
class AgentEntry:
    """One registered agent.

    Attributes:
        name: registry name.
        train: the trainer.
        description: one line for listings.
        is_rl: whether it learns from env steps (its runs depend on the step budget).
        config: the hyper-parameters its runs use (JSON values): part of every stored run's
            key, so that changing them recomputes the runs instead of reusing old numbers.
        artefact: how its trained artefact is saved to and loaded from a run folder, or
            ``None`` for agents with nothing to save (fitted where they are evaluated).
        obs_modes: the env's ``obs_mode`` values its policy reads.
        code: SHA-256 of a plugin's own source files (the modules of the trainer, of the code
            that registered it and of the ``--plugin`` module being imported, their packages
            and the modules beside them that they import) and of a ``functools.partial``
            trainer's bound arguments: part of its stored runs' key, so that changed code
            recomputes them; ``None`` for the built-in agents, whose changes the benchmark's
            result version covers.
        module: the module whose import registers it (the ``--plugin`` being imported, else
            the one that called :func:`register_agent`), which a worker process imports to
            run it; ``None`` for the built-ins and for agents registered by ``__main__``.
    """

    name: str
    train: Callable[[TrainContext], TrainedAgent]
    description: str
    is_rl: bool
    config: dict[str, Any] = field(default_factory=dict)
    artefact: Artefact | None = None
    obs_modes: tuple[str, ...] = OBS_MODES
    code: str | None = None
    module: str | None = None

    def check_env(self, env_kwargs: dict[str, Any]) -> None:
        """Refuse env arguments this agent cannot run on (before any work is spent on them)."""
        mode = env_kwargs.get("obs_mode", "flat")
        if mode not in self.obs_modes:
            raise ArgumentError(
                f"agent {self.name!r} reads obs_mode {' or '.join(map(repr, self.obs_modes))} "
                f"observations, not {mode!r}: leave obs_mode out of the env arguments"
            )


AGENTS: dict[str, AgentEntry] = {}


def register_agent(
    name: str,
    train: Callable[[TrainContext], TrainedAgent],
    description: str,
    *,
    is_rl: bool = True,
    replace: bool = False,
    config: dict[str, Any] | None = None,
    artefact: Artefact | None = None,
    obs_modes: tuple[str, ...] = OBS_MODES,
) -> AgentEntry:
    """Add an agent under ``name``; refuses to shadow an existing one unless ``replace``.

    ``config`` (JSON values) names the hyper-parameters the trainer uses; give it, so that a
    benchmark recomputes the agent's stored runs when they change. ``artefact`` makes the
    agent trainable from the command line (``movielens-rec train``); ``obs_modes`` says which
    observations its policy reads.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
        raise ArgumentError(
            f"agent name {name!r}: letters, digits and '_.+-', starting with a letter or digit "
            "(--agents takes a comma-separated list of them)"
        )
    if name in AGENTS and not replace:
        raise ArgumentError(f"agent {name!r} is already registered; pass replace=True to override")
    try:  # stored runs are keyed by it: refuse it here, not after a training run
        json.dumps(config or {}, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"agent {name!r}: its config must be JSON values ({exc})") from None
    frame = inspect.currentframe()
    caller = frame.f_back.f_globals.get("__name__") if frame and frame.f_back else None
    modules = tuple(name for name in (caller, *_IMPORTING) if isinstance(name, str))
    entry = AgentEntry(
        name, train, description, is_rl, dict(config or {}), artefact, obs_modes,
        _plugin_source_digest(train, modules), _registering_module(caller),
    )  # fmt: skip
    AGENTS[name] = entry
    return entry


def _registering_module(caller: str | None) -> str | None:
    """What a worker imports to register the agent being registered (see ``AgentEntry``)."""
    if _IMPORTING:
        return _IMPORTING[0]
    if caller is None or caller in ("__main__", "__mp_main__") or caller.startswith("agents."):
        return None
    return caller


def configure_agent(name: str, values: dict[str, Any]) -> AgentEntry:
    """Give agent ``name`` (one with a trained artefact) the config its artefact's default
    config becomes with ``values``, for this process: its runs then train with it and are keyed
    by it (``benchmark --config AGENT=FILE``).

    Raises:
        ArgumentError: the agent is unknown or has no artefact config.
        ConfigError: a field is unknown or out of range, or the trainer would refuse the
            config (its artefact's ``check``): named before any run of the benchmark starts.
    """
    config = dataclasses.replace(get_artefact(name).config, **values)
    check_agent_config(name, config)
    AGENTS[name] = dataclasses.replace(AGENTS[name], config=config.to_dict())
    return AGENTS[name]


def check_agent_config(name: str, config: Any) -> None:
    """Refuse a config agent ``name``'s trainer would not train as given: a DRR config of
    another state, or one its artefact's ``check`` refuses (an ``action_noise`` for sac).

    Raises:
        ArgumentError: the agent is unknown, has no artefact, or the config is another state's.
        ConfigError: the artefact's check refuses it.
    """
    artefact = get_artefact(name)
    if getattr(config, "state", name) != name and name in _drr_states():
        raise ArgumentError(
            f"the config given for {name!r} is a {config.state!r} config (its 'state'); give "
            f"{name!r} a config of its own state"
        )
    if artefact.check is not None:
        artefact.check(config)


def check_agent_fits(name: str, env_kwargs: dict[str, Any], config: Any = None) -> None:
    """Refuse what agent ``name``'s trainer would refuse for ``config`` (default: its registered
    one) on the env ``env_kwargs`` make (its artefact's ``fits``); nothing for agents without.

    Raises:
        ConfigError: networks or a replay too large for that env's observations.
    """
    entry = get_agent(name)
    if entry.artefact is None or entry.artefact.fits is None:
        return
    if config is None:
        defaults = entry.artefact.config
        config = type(defaults).from_dict(entry.config) if entry.config else defaults
    entry.artefact.fits(config, env_kwargs)


def _drr_states() -> tuple[str, ...]:
    from .drr.config import STATE_REPRESENTATIONS

    return STATE_REPRESENTATIONS


def get_agent(name: str) -> AgentEntry:
    """The entry of ``name``, or an error listing the registered agents."""
    try:
        return AGENTS[name]
    except KeyError:
        raise ArgumentError(f"unknown agent {name!r}; valid agents: {', '.join(AGENTS)}") from None


def agent_names() -> list[str]:
    """Every registered agent, built-ins first."""
    return list(AGENTS)


def trainable_agents() -> list[str]:
    """The registered agents with a trained artefact (what ``movielens-rec train`` takes)."""
    return [name for name, entry in AGENTS.items() if entry.artefact is not None]


def get_artefact(name: str) -> Artefact:
    """The artefact of agent ``name``, or an error listing the agents that have one."""
    trainable = ", ".join(trainable_agents())
    if name not in AGENTS:
        raise ArgumentError(f"unknown agent {name!r}; trainable agents: {trainable}")
    artefact = AGENTS[name].artefact
    if artefact is None:
        raise ArgumentError(
            f"agent {name!r} has no trained artefact to save and no config to set (it is "
            f"fitted where it is evaluated, as benchmark --agents {name} runs it); trainable "
            f"agents: {trainable}"
        )
    return artefact


# The --plugin modules being imported now, innermost last (:func:`importing_plugin`).
_IMPORTING: list[str] = []


@contextmanager
def importing_plugin(module: str) -> Iterator[None]:
    """While it lasts, every agent registered counts the source of the plugin module
    ``module`` in its code digest (``AgentEntry.code``), wherever its trainer lives."""
    _IMPORTING.append(module)
    try:
        yield
    finally:
        _IMPORTING.pop()


def _plugin_source_digest(train: Callable[..., Any], modules: tuple[str, ...] = ()) -> str | None:
    """SHA-256 of a plugin's own source files (:func:`_plugin_sources` of the trainer's module
    and of the imported ``modules``, by their paths relative to the plugin's folder) and of the
    values the trainer is bound to besides its source (``agents.trainer_state``); ``None``
    where all of them are this package's own. Code with no source file (a notebook,
    ``python -c``) cannot be told from its later edits: its digest is then this registration's
    own, with a warning."""
    found = [inspect.getmodule(getattr(train, "func", train)), *map(sys.modules.get, modules)]
    files: dict[str, Path] = {}
    unkeyed = ""  # why the code cannot be keyed by its source and values
    for module in found:
        if module is not None and module.__name__.split(".")[0] in _OWN_PACKAGES:
            continue
        path = getattr(module, "__file__", None)
        if module is None or path is None or not is_regular_file(path):
            # "<stdin>", "<string>", or none at all: a notebook, python -c, exec
            unkeyed = "has no source file (defined in a notebook, `python -c` or exec)"
            continue
        for name, file in _plugin_sources(module.__name__, Path(path)):
            files.setdefault(name, file)
    if not files and not unkeyed:
        return None
    digest = hashlib.sha256()
    for name, file in sorted(files.items()):
        digest.update(f"{name}\0{file_sha256(file)}\n".encode())  # in blocks: data files too
    try:  # the same code trains otherwise with other values
        digest.update(f"state\0{trainer_state(train)}\n".encode())
    except StateTooLarge:
        unkeyed = f"reaches more than {MAX_STATE_VALUES:,} values (data in its globals?)"
    if unkeyed:
        digest.update(f"unkeyed\0{uuid.uuid4().hex}\n".encode())
        warnings.warn(
            f"an agent's code {unkeyed}: its stored benchmark results are reused only in this "
            "process (a later one may run other code or values); put its trainer in a module, "
            "its settings in register_agent(config=...), to reuse them across sessions",
            UserWarning,
            stacklevel=3,
        )
    return digest.hexdigest()


# This project's packages: their changes are covered by the benchmark's result version.
_OWN_PACKAGES = (__name__.split(".")[0], "movielens_env")


def _plugin_sources(name: str, path: Path) -> list[tuple[str, Path]]:
    """The source files of the plugin module ``name`` (at ``path``), by their path relative to
    the folder it was imported from: every file of its top-level package (data files too), or
    the module's own file, and, followed through their ``import`` statements and the names
    written out as strings (``importlib.import_module("name")``), those of the modules and
    packages beside it in that folder. Read from the files, not from what happens to be
    imported, so that the same code always gives the same list. Not covered: files a
    single-module plugin reads from its folder, and installed libraries (as for the built-in
    agents, whose key is the result version)."""
    parts = name.split(".") + (["__init__"] if path.name == "__init__.py" else [])
    base = path.parents[len(parts) - 1] if len(parts) <= len(path.parents) else path.parent
    if path.relative_to(base).with_suffix("").parts != tuple(parts):
        base = path.parent  # loaded under another name than its path gives: its file alone
        parts = [path.stem]
    top = base / parts[0]
    # A package's other files (data it reads, a config) count as its code.
    todo = _package_files(top) if len(parts) > 1 and top.is_dir() else [path]
    # In an installed environment the folder beside the plugin holds every other
    # distribution: imports are followed only from a plugin's own folder.
    follow = base.name not in ("site-packages", "dist-packages")
    found: dict[str, Path] = {}
    listed = {parts[0]} if len(parts) > 1 else set()
    while todo:
        file = todo.pop()
        label = file.relative_to(base).as_posix()
        if label in found or "__pycache__" in file.parts:
            continue
        found[label] = file
        if follow and file.suffix == ".py":
            todo += _local_imports(file, base, listed)
    return sorted(found.items())


def _package_files(folder: Path) -> list[Path]:
    """Every file of the package ``folder``, but compiled ones."""
    return sorted(
        file
        for file in folder.rglob("*")
        if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc"
    )


def _local_imports(file: Path, base: Path, listed: set[str]) -> list[Path]:
    """The files in ``base`` of the top-level modules and packages ``file`` imports (relative
    imports stay in its package, whose files are listed already), but those in ``listed`` (the
    top-level names whose files were listed already: each is listed once)."""
    try:
        # Parsing holds the whole file and its syntax tree: a file of gigabytes named like a
        # module would take the machine's memory. It is hashed still, in blocks.
        tree = ast.parse(read_small_bytes(file, _MAX_SOURCE_BYTES), str(file))
    except (SyntaxError, ValueError, OSError):
        return []  # it could not have been imported (or read): nothing more to follow
    imported: set[str] = set()
    named: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
        elif (name := _module_name(node)) is not None:
            named.add(name.split(".")[0])
    files: list[Path] = []
    for top in sorted((imported | named) - set(_OWN_PACKAGES) - listed):
        try:
            if (base / top / "__init__.py").is_file():
                files += _package_files(base / top)
            elif (base / f"{top}.py").is_file():
                files.append(base / f"{top}.py")
            elif top in imported and (base / top).is_dir():
                # A namespace package (PEP 420): any folder, so code only, and only where an
                # import names it (a string "env" or "data" names a virtualenv or a data folder
                # as often). Regular files only: a FIFO named like a module would block hashing.
                files += sorted(p for p in (base / top).rglob("*.py") if is_regular_file(p))
            else:
                continue
        except OSError:  # a name too long for a file name: no module of that name
            continue
        listed.add(top)
    return files


# Far beyond any module a person writes (the largest in CPython's library is under 1 MiB).
_MAX_SOURCE_BYTES = 16 * 2**20


def _module_name(node: ast.AST) -> str | None:
    """A string written out in the source that could name a module, as any import by name
    takes it (``importlib.import_module("name")``, under any alias or keyword, ``__import__``,
    ``find_spec``); ``None`` for any other node. Strings that name no module beside the plugin
    are ignored later, so reading every string errs only towards hashing more."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if _MODULE_NAME.fullmatch(node.value):
            return node.value
    return None


_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}(\.[A-Za-z_][A-Za-z0-9_]{0,99})*")
