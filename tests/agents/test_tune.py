"""``movielens-rec tune``: the validation split it tunes on, a study end to end, continuing an
interrupted study, and the bad input it refuses."""

from __future__ import annotations

import csv
import json
import signal

import numpy as np
import pytest

from agents.cli import main as cli_main
from agents.drr.config import DRRConfig
from agents.drr.train import train_drr
from movielens_env.data.split import temporal_split, validation_dataset
from movielens_env.errors import ArgumentError
from tests.helpers import TINY_ENV_JSON, cli_error, last_wins


def main(argv: list[str]) -> int:
    """The CLI on ``argv`` with its defaults overridden where a test gives an option again
    (the CLI refuses a repeat: see the pass-28 tests)."""
    return cli_main(last_wins(argv))


TINY = ["--env-kwargs", TINY_ENV_JSON, "--no-progress"]
DRR_TINY = ["--agent", "drr-ave", "--timesteps", "200", "--set", "learning_starts=32",
            "--set", "batch_size=32", "--set", "buffer_size=2000", *TINY]  # fmt: skip


def _pairs(users: np.ndarray, items: np.ndarray, timestamps: np.ndarray) -> set[tuple]:
    return set(zip(users.tolist(), items.tolist(), timestamps.tolist(), strict=True))


def test_the_validation_split_never_holds_a_test_rating(small_dataset):
    split = temporal_split(small_dataset)
    validation = temporal_split(validation_dataset(small_dataset))
    assert validation.train.n_items == split.train.n_items  # the same catalogue and ids
    for user in range(small_dataset.n_users):
        rows = {}
        for name, part in (("train", split.train), ("test", split.test),
                           ("fit", validation.train), ("held", validation.test)):  # fmt: skip
            start, end = part.indptr[user], part.indptr[user + 1]
            rows[name] = _pairs(
                np.full(end - start, user), part.items[start:end], part.timestamps[start:end]
            )
        assert not rows["held"] & rows["test"] and not rows["fit"] & rows["test"]
        assert rows["fit"] | rows["held"] == rows["train"]
        if rows["fit"] and rows["held"]:  # the held-out part is the last in time
            assert max(t for *_, t in rows["fit"]) <= min(t for *_, t in rows["held"])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A two-trial DRR study on the synthetic data (once for the module)."""
    out = tmp_path_factory.mktemp("tune") / "drr"
    assert main(["tune", *DRR_TINY, "--trials", "2", "--out", str(out)]) == 0
    return out


def test_a_study_writes_the_best_config_that_train_reads_back(study, tmp_path):
    record = json.loads((study / "tune.json").read_text())
    assert record["trials_finished"] == 2 and record["settings"]["agent"] == "drr-ave"
    rows = list(csv.DictReader((study / "trials.csv").open()))
    assert [row["state"] for row in rows] == ["COMPLETE", "COMPLETE"]
    values = [float(row["value"]) for row in rows]
    assert all(np.isfinite(values)) and record["best"]["value"] == max(values)
    best = json.loads((study / "best_config.json").read_text())
    assert best == record["best"]["config"] and best["learning_starts"] >= best["batch_size"]
    # The first trial is the config the search starts from; the best one's values are kept.
    assert (rows[0]["action_head"], float(rows[0]["actor_lr"])) == ("user-residual", 1e-5)
    assert rows[1]["actor_lr"] != rows[0]["actor_lr"]
    chosen = rows[int(np.argmax(values))]
    assert best["actor_lr"] == float(chosen["actor_lr"]) and best["hidden"] == int(chosen["hidden"])

    run = tmp_path / "run"
    best_file = str(study / "best_config.json")
    argv = ["train", "--agent", "drr-ave", "--episodes", "3", "--config", best_file,
            "--out", str(run), "--env-kwargs", TINY_ENV_JSON]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((run / "run.json").read_text())["config"] == best


def test_a_tuned_config_reproduces_exactly_under_its_seed(study):
    config = DRRConfig.from_dict(json.loads((study / "best_config.json").read_text()))
    config = DRRConfig.from_dict({**json.loads(config.to_json()), "eval_every": 0})
    env_kwargs = {"dataset": "synthetic", **json.loads(TINY_ENV_JSON)}
    runs = [train_drr(env_kwargs, config, 12, seed=3) for _ in range(2)]
    assert runs[0].episode_returns == runs[1].episode_returns
    for a, b in zip(
        runs[0].agent.actor.parameters(), runs[1].agent.actor.parameters(), strict=True
    ):
        assert a.equal(b)


def test_a_study_continues_and_is_never_replaced_without_force(study, tmp_path, capsys):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in study.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    trials = (copy / "trials.csv").read_text()
    assert main(["tune", *DRR_TINY, "--trials", "2", "--out", str(copy)]) == 0  # finished
    assert (copy / "trials.csv").read_text() == trials  # no trial was added
    assert main(["tune", *DRR_TINY, "--trials", "3", "--out", str(copy)]) == 0  # one more
    assert json.loads((copy / "tune.json").read_text())["trials_finished"] == 3
    rows = list(csv.DictReader((copy / "trials.csv").open()))
    assert [row["trial"] for row in rows] == ["0", "1", "2"]

    capsys.readouterr()
    other = ["tune", *DRR_TINY, "--timesteps", "100", "--trials", "1", "--out", str(copy)]
    assert main(other) == 2
    assert "holds a study of other settings" in cli_error(capsys)
    assert json.loads((copy / "tune.json").read_text())["trials_finished"] == 3
    assert main([*other, "--force"]) == 0
    record = json.loads((copy / "tune.json").read_text())
    assert record["trials_finished"] == 1 and record["settings"]["timesteps"] == 100


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--agent", "nope"], "unknown agent 'nope'"),
        (["--agent", "mf"], "agent 'mf' has no hyper-parameters to tune here; tunable agents:"),
        (["--agent", "td3", "--trials", "0"], "--trials and --timesteps must be >= 1, got 0"),
        (["--agent", "td3", "--set", "gamma=2"], "SB3Config.gamma"),
        (["--agent", "drr-ave", "--set", "wings=2"], "--set 'wings=2': expected KEY=VALUE"),
    ],
)
def test_bad_tuning_input_is_refused_clearly(tmp_path, capsys, argv, message):
    out = tmp_path / "study"
    assert main(["tune", *argv, "--out", str(out), *TINY]) == 2
    assert message in cli_error(capsys)
    assert not out.exists()


def test_a_config_file_with_unknown_keys_is_refused(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"learning_rate": 1e-3, "wings": 2}))
    assert main(["tune", "--agent", "td3", "--config", str(config), "--out",
                 str(tmp_path / "s"), *TINY]) == 2  # fmt: skip
    assert "unknown SB3Config keys ['wings']" in cli_error(capsys)


def test_a_folder_that_holds_something_else_is_refused_even_with_force(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["tune", *DRR_TINY, "--trials", "1", "--out", str(out), "--force"]
    assert main(argv) == 2
    assert "holds notes.txt and no study" in cli_error(capsys)
    assert (out / "notes.txt").read_text() == "mine" and len(list(out.iterdir())) == 1


def test_an_interrupted_study_continues_where_it_stopped(tmp_path, monkeypatch):
    from agents.tune import study as tuning
    from agents.tune import trial

    calls = []
    real = trial._train_and_score

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user's Ctrl-C inside the second trial
        return real(*args, **kwargs)

    monkeypatch.setattr(trial, "_train_and_score", interrupted)
    env_kwargs = {"dataset": "synthetic", **json.loads(TINY_ENV_JSON)}
    out = tmp_path / "study"
    # Enough transitions for any batch size the search draws to start learning.
    base = DRRConfig(learning_starts=32, batch_size=32, buffer_size=2000)
    with pytest.raises(KeyboardInterrupt):
        tuning.tune("drr-ave", env_kwargs, 400, 2, out, base_config=base)
    assert json.loads((out / "tune.json").read_text())["trials_finished"] == 1
    result = tuning.tune("drr-ave", env_kwargs, 400, 2, out, base_config=base)
    assert result.trials_done == 2 and len(calls) == 3
    rows = list(csv.DictReader((out / "trials.csv").open()))
    # What the interrupted trial wrote is cut from the journal: it is run again.
    assert [(row["trial"], row["state"]) for row in rows] == [("0", "COMPLETE"), ("1", "COMPLETE")]


def test_a_drawn_config_too_costly_for_the_env_is_pruned_not_fatal(tmp_path, monkeypatch):
    from agents.fields import ConfigError
    from agents.tune import study as tuning
    from agents.tune import trial

    real = trial._train_and_score

    def refusing(agent, config, *args):
        if config != base:  # every drawn config: as a network too slow for this env's inputs
            raise ConfigError("DRRConfig: one gradient step (...) costs too much")
        return real(agent, config, *args)

    monkeypatch.setattr(trial, "_train_and_score", refusing)
    env_kwargs = {"dataset": "synthetic", **json.loads(TINY_ENV_JSON)}
    base = DRRConfig(learning_starts=32, batch_size=32, buffer_size=2000)
    result = tuning.tune("drr-ave", env_kwargs, 200, 2, tmp_path / "s", base_config=base)
    rows = list(csv.DictReader((tmp_path / "s" / "trials.csv").open()))
    assert [row["state"] for row in rows] == ["COMPLETE", "PRUNED"]
    assert result.best_config == base
    with pytest.raises(ConfigError, match="costs too much"):  # the user's own config: refused
        tuning.tune("drr-ave", env_kwargs, 200, 1, tmp_path / "t",
                    base_config=DRRConfig(learning_starts=64, batch_size=64))  # fmt: skip


@pytest.fixture
def td3_study(tmp_path):
    """A finished one-trial td3 study (small: a few seconds)."""
    out = tmp_path / "td3"
    argv = ["tune", "--agent", "td3", "--trials", "1", "--timesteps", "140", "--out", str(out)]
    tiny = [*TINY, "--set", "learning_starts=100", "--set", "batch_size=32"]
    assert main([*argv, *tiny]) == 0
    return out, [*argv, *tiny]


def test_a_trial_that_took_no_gradient_step_is_pruned_not_ranked(tmp_path, capsys):
    # The default learning_starts (500) is beyond a 140-step budget: an untrained network.
    out = tmp_path / "s"
    argv = ["tune", "--agent", "td3", "--trials", "2", "--timesteps", "140", "--out", str(out)]
    assert main([*argv, "--env-kwargs", TINY_ENV_JSON]) == 0
    printed = capsys.readouterr().out
    assert "trial 0: pruned: took no gradient step (learning_starts=500 of 140 steps)" in printed
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert rows[0]["state"] == "PRUNED" and rows[0]["value"] == ""
    record = json.loads((out / "tune.json").read_text())
    assert record["best"]["trial"] != 0


def _journal_lines(out):
    return (out / "study.journal").read_text().splitlines(keepends=True)


def test_an_edited_or_swapped_journal_is_refused_and_a_cut_off_tail_is_redone(td3_study, capsys):
    out, argv = td3_study
    lines = _journal_lines(out)
    (out / "study.journal").write_text("".join(lines) + '{"op_code": 6, "trial_')  # killed
    assert main([*argv[:4], "2", *argv[5:]]) == 0  # the cut-off tail is dropped, one more trial
    assert json.loads((out / "tune.json").read_text())["trials_finished"] == 2
    capsys.readouterr()
    edited = "".join(_journal_lines(out)).replace('"values":[', '"values":[99.0', 1)
    assert edited != "".join(_journal_lines(out))
    for journal in (edited, "".join(lines), ""):  # edited, swapped for an older one, deleted
        (out / "study.journal").write_text(journal)
        assert main([*argv[:4], "3", *argv[5:]]) == 2
        assert "is not the journal tune.json records" in cli_error(capsys)
    assert main([*argv[:4], "1", *argv[5:], "--force"]) == 0  # anew
    assert json.loads((out / "tune.json").read_text())["trials_finished"] == 1


def test_a_journal_that_is_a_link_is_refused_before_a_trial_writes_through_it(td3_study, capsys):
    """A study folder whose journal links to another study's (the same trials, so it passed
    the record's check): each new trial was appended to the other study's journal."""
    out, argv = td3_study
    other = out.parent / "other"
    other.mkdir()
    (out / "study.journal").rename(other / "study.journal")
    (out / "study.journal").symlink_to(other / "study.journal")
    before = (other / "study.journal").read_bytes()
    for force in ([], ["--force"]):
        assert main([*argv[:4], "2", *argv[5:], *force]) == 2
        assert "study.journal is a link: tune appends each trial" in cli_error(capsys)
    assert (other / "study.journal").read_bytes() == before


@pytest.mark.parametrize(
    "lines, refusal",
    [
        ('{"op_code":4,"worker_id":"w","study_id":0}\n' * 10_001,
         "study.journal holds 10,002 trials, more than tune runs (10,000)"),
        # The same JSON spelled otherwise, as Optuna reads it but never writes it.
        ('{"op_\\u0063ode":4,"worker_id":"w","study_id":0}\n' * 10_001,
         "study.journal holds 10,002 trials, more than tune runs (10,000)"),
        # A key twice: JSON keeps the last, which a look at the first missed.
        ('{"op_code":9,"op_code":4,"worker_id":"w","study_id":0}\n',
         "not a JSON object of distinct keys"),
        # Parameter names by the thousand: Optuna looks each new one up in every earlier trial.
        ("".join(f'{{"op_code":5,"worker_id":"w","trial_id":{t},"param_name":"p{t}_{i}"}}\n'
                 for t in range(10) for i in range(10)),
         "more than 64 parameter names"),
        # One attribute of 10 MB: Optuna deep-copies every trial at each access (GBs).
        ('{"op_code":8,"worker_id":"x","trial_id":0,"user_attr":{"junk":"' + "x" * 70_000
         + '"}}\n', "a line of 70,"),
        # ... or carried inline by the line creating a trial.
        ('{"op_code":4,"worker_id":"w","study_id":0,"intermediate_values":{'
         + ",".join(f'"{step}":1' for step in range(100)) + "}}\n",
         "more than 64 values of one trial"),
        # One trial's intermediate values, which Optuna replays in quadratic time.
        ("".join(f'{{"op_code":7,"worker_id":"w","trial_id":0,"step":{step},"value":1}}\n'
                 for step in range(100)),
         "more than 64 lines of trial 0"),
        # A finished trial without its end time: Optuna's replay raised a TypeError.
        ('{"op_code":4,"worker_id":"w","study_id":0,"datetime_start":null,"state":1,'
         '"value":0.5,"values":null,"distributions":{},"params":{},"user_attrs":{},'
         '"system_attrs":{},"intermediate_values":{},"datetime_complete":null}\n',
         "study.journal: Optuna cannot replay it (TypeError"),
    ],
)  # fmt: skip
def test_a_journal_of_more_trials_than_tune_runs_is_refused_before_optuna_replays_it(
    td3_study, capsys, lines, refusal
):
    """A journal (and its record, re-signed) of 250,000 trials in 48 MB: Optuna replayed it for
    a minute, silently, in 1 GB (a 1 GiB journal: 20 minutes, 22 GB)."""
    import hashlib

    from movielens_env.storage import checksum

    out, argv = td3_study
    with (out / "study.journal").open("a") as journal:
        journal.write(lines)
    data = (out / "study.journal").read_bytes()
    record = json.loads((out / "tune.json").read_text())
    record["journal"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    del record["checksum"]
    (out / "tune.json").write_text(json.dumps({**record, "checksum": checksum(record)}))
    assert main([*argv[:4], "2", *argv[5:]]) == 2
    assert refusal in cli_error(capsys)


def test_a_journal_lock_left_by_a_killed_tune_does_not_stop_the_next(td3_study):
    """Optuna locks the journal with a link beside it while it appends; a tune killed then
    leaves the link, and Optuna waits on it for ever (spinning, where the link dangles)."""
    import signal

    out, argv = td3_study
    (out / "study.journal.lock").symlink_to("elsewhere/study.journal")  # dangling, as left

    def hung(*_args):
        raise TimeoutError("tune waited on a stale journal lock")

    before = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)  # the hang, if it comes back, fails this test instead of the suite
    try:
        assert main([*argv[:4], "2", *argv[5:]]) == 0
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)
    assert json.loads((out / "tune.json").read_text())["trials_finished"] == 2


@pytest.mark.parametrize("name", ["study.journal.lock", "best_config.json"])
def test_a_folder_where_a_study_keeps_a_file_is_named_before_anything_is_removed(
    td3_study, capsys, name
):
    out, argv = td3_study
    (out / name).unlink(missing_ok=True)
    (out / name).mkdir()
    before = sorted(p.name for p in out.iterdir())
    for extra in ((), ("--force", "--seed", "3")):  # continued, or replaced as other settings
        assert main([*argv[:4], "2", *argv[5:], *extra]) == 2
        assert f"holds a folder named {name}, where tune keeps a file" in cli_error(capsys)
    assert sorted(p.name for p in out.iterdir()) == before


def test_force_keeps_a_study_when_the_new_one_could_not_run(td3_study, capsys):
    """Its first trial trains the base config, which the trainer refuses on these
    observations: the finished study was removed for a study that stopped at once."""
    out, argv = td3_study
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    slow = ["--set", "gradient_steps=1024", "--set", "net_arch=[400,300]", "--force"]
    assert main([*argv, *slow]) == 2
    assert "SB3Config: 1,024 gradient steps per collected batch" in cli_error(capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_force_never_replaces_a_folder_whose_tune_json_is_not_an_intact_studys(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    for name, text in (("tune.json", '{"mine": 1}'), ("trials.csv", "a,b\n"),
                       ("best_config.json", "{}")):  # fmt: skip
        (out / name).write_text(text)
    argv = ["tune", "--agent", "td3", "--trials", "1", "--timesteps", "40", "--out", str(out)]
    assert main([*argv, *TINY, "--force"]) == 2
    assert "nothing says this folder is a study" in cli_error(capsys)
    assert (out / "tune.json").read_text() == '{"mine": 1}' and len(list(out.iterdir())) == 3


def test_a_starting_config_the_search_would_drop_or_misread_is_refused(tmp_path, capsys):
    out = tmp_path / "s"
    for argv, message in (
        (["--agent", "td3", "--set", "learning_rate=0.5"], "learning_rate=0.5 (searched in"),
        (["--agent", "td3", "--set", "net_arch=[8]"], "net_arch=[8] (searched among"),
        (["--agent", "drr-ave", "--set", "state=drr-n"], "is a 'drr-n' config"),
        (["--agent", "sac", "--set", "action_noise=0.3"], "sac explores through its entropy"),
        (["--agent", "sac", "--set", "ent_coef=0.5"], "ent_coef=0.5 (searched among [None, 0.3"),
        (
            ["--agent", "td3", "--env-kwargs", '{"embedding_dim": 8, "unrated_reward": 0.3}'],
            "unrated_reward=0.3 is used by reward_model='logged' only",
        ),
    ):
        assert main(["tune", *TINY, *argv, "--out", str(out)]) == 2  # argv's --env-kwargs wins
        assert message in cli_error(capsys)
        assert not out.exists()


def test_the_discount_is_searched_from_zero_for_every_agent():
    from agents.sb3.config import SB3Config
    from agents.tune.space import base_params

    # No discount is right on a static user; a start there is the study's first trial.
    assert base_params("drr-ave", DRRConfig(gamma=0.0))["gamma"] == 0.0
    assert base_params("td3", SB3Config(gamma=0.0))["gamma"] == 0.0
    with pytest.raises(ArgumentError, match=r"gamma=0.995 \(searched in \[0, 0.99\]\)"):
        base_params("drr-ave", DRRConfig(gamma=0.995))


def test_a_trial_without_the_config_this_tool_writes_is_named():
    from types import SimpleNamespace

    from agents.drr.config import DRRConfig
    from agents.tune.study import TuneFolderError, _config_of

    for attrs in ({}, {"config_fields": {"no_such_field": 1}}):
        with pytest.raises(TuneFolderError, match="trial 3 of the study holds no config"):
            _config_of(SimpleNamespace(number=3, user_attrs=attrs), DRRConfig())


def test_sacs_learned_entropy_weight_is_the_first_trial_and_fixed_weights_are_searched():
    from agents.sb3.config import SACConfig
    from agents.tune.space import base_params, trial_config

    assert base_params("sac", SACConfig())["ent_coef"] is None  # SB3's default: trial 0
    assert base_params("sac", SACConfig(ent_coef=0.01))["ent_coef"] == 0.01

    class Drawing:  # a trial drawing the last choice of each categorical and each float's low
        def suggest_float(self, name, low, high, log=False):
            return low

        def suggest_categorical(self, name, choices):
            return choices[-1]

    config = trial_config("sac", Drawing())
    assert isinstance(config, SACConfig) and config.ent_coef == 0.001


def test_td3s_actor_head_is_searched_and_a_residual_start_is_its_first_trial():
    from agents.sb3.config import SB3Config
    from agents.tune.space import base_params, trial_config

    assert base_params("td3", SB3Config())["action_head"] == "tanh"
    assert "residual_scale" not in base_params("td3", SB3Config())  # not drawn with tanh
    residual = SB3Config(action_head="user-residual", residual_scale=0.05, action_noise=0.03)
    first = base_params("td3", residual)
    assert first["action_head"] == "user-residual" and first["residual_scale"] == 0.05

    class Drawing:  # a trial drawing the first choice of each categorical and each float's low
        def suggest_float(self, name, low, high, log=False):
            return low

        def suggest_categorical(self, name, choices):
            return choices[0]

    # From a residual base, a tanh trial takes the scale back to its default, as tanh requires.
    config = trial_config("td3", Drawing(), base=residual)
    assert config.action_head == "tanh" and config.residual_scale == SB3Config.residual_scale


def test_a_trial_left_running_by_an_interrupted_study_is_failed_and_trained_again(td3_study):
    import optuna

    from agents.tune import study as tuning
    from agents.tune.space import trial_config

    out, argv = td3_study
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "study.journal"))
    )
    study = optuna.load_study(study_name="tune", storage=storage)
    study.enqueue_trial({**study.trials[0].params, "gamma": 0.7})
    # Running when the study was interrupted, as trials side by side on Ray are.
    trial_config("td3", study.ask())
    record = json.loads((out / "tune.json").read_text())  # another trial then ended: marked
    tuning._save_record(out, record["settings"], record["trials_finished"], record["best"])

    assert main([*argv[:4], "2", *argv[5:]]) == 0
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [row["state"] for row in rows] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert rows[2]["gamma"] == rows[1]["gamma"] == "0.7"  # its parameters, trained again


RAY = "the 'ray' extra is not installed (pip install -e '.[ray]')"


def test_on_ray_a_study_is_the_local_one_in_kind_and_either_continues_it(td3_study, tmp_path):
    pytest.importorskip("ray.tune", reason=RAY)
    local, argv = td3_study
    out = tmp_path / "ray"
    argv = [*argv, "--out", str(out)]
    assert main([*argv, "--trials", "3", "--executor", "ray"]) == 0
    record, local_record = (json.loads((d / "tune.json").read_text()) for d in (out, local))
    assert record["settings"] == local_record["settings"] and record["trials_finished"] == 3
    rows = list(csv.DictReader((out / "trials.csv").open()))
    local_rows = list(csv.DictReader((local / "trials.csv").open()))
    # The starting config, trained alike: the same score. A column only one study has is a
    # conditional parameter another of its trials drew (the residual head's scale): empty here.
    drawn = [
        {key: value for key, value in found[0].items() if value} for found in (rows, local_rows)
    ]
    assert drawn[0] == drawn[1]
    assert {row["state"] for row in rows} <= {"COMPLETE", "PRUNED"}
    best = json.loads((out / "best_config.json").read_text())
    assert best == record["best"]["config"]
    assert main([*argv, "--trials", "4"]) == 0  # continued in this process
    assert json.loads((out / "tune.json").read_text())["trials_finished"] == 4


def test_on_ray_the_pruner_stops_a_trial_and_the_study_records_it_pruned(tmp_path, monkeypatch):
    pytest.importorskip("ray.tune", reason=RAY)
    import optuna

    from agents.sb3.config import SB3Config
    from agents.tune import study as tuning

    def prune_after_the_first(**_):  # any score is below this threshold from evaluation 2 on
        return optuna.pruners.ThresholdPruner(lower=1e9, n_warmup_steps=2)

    monkeypatch.setattr(optuna.pruners, "MedianPruner", prune_after_the_first)  # the driver's
    env_kwargs = {"dataset": "synthetic", **json.loads(TINY_ENV_JSON)}
    base = SB3Config(learning_starts=100, batch_size=32, net_arch=(64, 64), buffer_size=1000)
    on_ctrl_c = signal.getsignal(signal.SIGINT)
    with pytest.raises(ValueError, match=r"every trial of the study .* was pruned"):
        tuning.tune("td3", env_kwargs, 400, 1, tmp_path / "s", base_config=base, executor="ray")
    assert signal.getsignal(signal.SIGINT) is on_ctrl_c  # Ray Tune's own handler is gone
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "s" / "study.journal"))
    )
    trials = optuna.load_study(study_name="tune", storage=storage).trials
    assert [t.state.name for t in trials] == ["PRUNED"]  # stopped at its second of four
    assert sorted(trials[0].intermediate_values) == [1, 2]
    assert trials[0].user_attrs["pruned"].startswith("below the median at evaluation 2")
