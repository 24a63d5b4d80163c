"""The leaderboard: mean and 95% interval over seeds of every metric, as text, Markdown and CSV."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from movielens_env.errors import ArgumentError
from movielens_env.evaluation import names
from movielens_env.evaluation.headroom import normalized_score
from movielens_env.storage import atomic_write

from .stats import mean_ci95

BASELINES = ("random", "popularity", "mf")
# How the references table names its rows, in order.
REFERENCE_ROWS = {
    "random": "random (seed 0)",
    "greedy": "greedy (MF ranking)",
    "myopic": "myopic (best rating now)",
    "myopic-mf": "myopic on MF's ratings (state known, log not)",
    "planner": "planner (beam search)",
    "planner-mf": "planner on MF's ratings (state known, log not)",
    "ceiling": "static ceiling (top-T static ratings)",
}


def aggregate(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """agent -> metric -> (mean, 95% half-width, number of seeds), agents in record order."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for metric, value in record["metrics"].items():
            values[record["agent"]][metric].append(value)
    return {
        agent: {metric: (*mean_ci95(v), len(v)) for metric, v in metrics.items()}
        for agent, metrics in values.items()
    }


def metric_names(table: dict[str, dict[str, tuple[float, float, int]]]) -> list[str]:
    """Every metric in the table, in a stable order (protocols, then online)."""
    found = {metric for metrics in table.values() for metric in metrics}
    return sorted(found, key=lambda m: names.ALL.index(m) if m in names.ALL else len(names.ALL))


def baseline_comparison(table) -> list[str]:
    """For each agent other than the baselines: on how many offline precision/NDCG metrics
    (both protocols, k = 5 and 10) its mean is above popularity's and above MF's."""
    headline = names.RANKING
    lines = []
    for agent, values in table.items():
        if agent in BASELINES or not all(b in table for b in ("popularity", "mf")):
            continue
        above = {
            b: sum(values[m][0] > table[b][m][0] for m in headline if m in values)
            for b in ("popularity", "mf")
        }
        verdict = (
            "meets" if above["popularity"] == above["mf"] == len(headline) else "does NOT meet"
        )
        lines.append(
            f"- `{agent}` {verdict} the bar: above popularity on {above['popularity']} and "
            f"above MF on {above['mf']} of the {len(headline)} offline precision/NDCG means."
        )
    return lines


def check_metrics(requested: Sequence[str]) -> list[str]:
    """The requested metrics, or an error listing the valid names."""
    valid = names.ALL
    unknown = [m for m in requested if m not in valid]
    if unknown:
        raise ArgumentError(f"unknown metrics {unknown}; valid metrics: {', '.join(valid)}")
    return list(requested)


def _cell(mean: float, half: float) -> str:
    return f"{mean:.4f}" if math.isnan(half) else f"{mean:.4f} ± {half:.4f}"


def format_table(table, metrics: Sequence[str], markdown: bool = False) -> str:
    """One row per agent, one column per metric: ``mean ± 95% half-width``."""
    header = ["agent", "seeds", *metrics]
    rows = []
    for agent, values in table.items():
        seeds = max(n for _, _, n in values.values())
        rows.append(
            [agent, str(seeds), *(_cell(*values[m][:2]) if m in values else "-" for m in metrics)]
        )
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    )


def references_table(references: dict[str, Any]) -> str:
    """Markdown: each reference's online return per reward model, mean ± 95% interval over
    users, and the share of the planner's return over random that it reaches."""
    models = list(references["returns"])
    header = ["reference", *(f"return_{m}" for m in models), *(f"normalized_{m}" for m in models)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, label in REFERENCE_ROWS.items():
        if name not in references["returns"][models[0]]:
            continue  # stored before this reference existed
        cells = [label]
        for model in models:
            cells.append(_cell(*references["returns"][model][name]))
        for model in models:
            refs = references["returns"][model]
            score = normalized_score(refs[name][0], refs["random"][0], refs["planner"][0])
            cells.append(f"{score:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# Below this many test users a leaderboard describes those users rather than the data: its
# intervals are over seeds, with the users fixed, so they do not show how few there are.
FEW_USERS = 30


def few_users_warning(n_users: int) -> str | None:
    """The warning a leaderboard over ``n_users`` test users carries, if they are few."""
    if n_users >= FEW_USERS:
        return None
    return (
        f"only {n_users} test user{'s' if n_users != 1 else ''} evaluated: the numbers describe "
        f"{'them' if n_users != 1 else 'that user'}, not the dataset (the intervals are over "
        f"seeds, not users); compare agents on at least {FEW_USERS}"
    )


def write_leaderboard(
    table,
    out_dir: Path,
    title: str,
    command: str,
    machine: str,
    data: str = "",
    references: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``leaderboard.md`` (one table per protocol, online, and the references) and
    ``leaderboard.csv``."""
    listed = metric_names(table)
    sections = []
    for group, heading in (
        ("rerank/", "Offline, `rerank` protocol (candidates: the user's test-rated items)"),
        ("full/", "Offline, `full` protocol (candidates: every item not rated in train)"),
        ("online/", "Online: mean return of one test episode per test user"),
    ):
        metrics = [m for m in listed if m.startswith(group)]
        if metrics:
            shown = [m.removeprefix(group) for m in metrics]
            renamed = {
                agent: {m.removeprefix(group): v for m, v in values.items() if m.startswith(group)}
                for agent, values in table.items()
            }
            sections.append(f"## {heading}\n\n{format_table(renamed, shown, markdown=True)}\n")
    if references is not None:
        sections.append(
            "## References (privileged: they read the simulator)\n\n"
            f"Mean ± half-width of the 95% t-interval over the {references['n_users']} test "
            "users (each reference is deterministic: one run). `normalized` is "
            "`100 * (R - R_random) / (R_planner - R_random)`, as D4RL reports it; the agents' "
            "`normalized_*` columns above use the same random and planner returns.\n\n"
            f"{references_table(references)}\n"
        )
    markdown = (
        f"# {title}\n\nMean over seeds ± half-width of the 95% t-interval over seeds. "
        "Relevance: test rating >= 4.\n\n"
        f"Command:\n\n```bash\n{command}\n```\n\nMachine: {machine}\n\n"
        + (f"Data: {data}\n\n" if data else "")
        + "\n".join(sections)
    )
    comparison = baseline_comparison(table)
    if comparison:
        markdown += "\n## Against the non-RL baselines\n\n" + "\n".join(comparison) + "\n"
    md_path, csv_path = out_dir / "leaderboard.md", out_dir / "leaderboard.csv"
    atomic_write(md_path, lambda tmp: tmp.write_text(markdown), suffix=".md")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["agent", "metric", "mean", "ci95_low", "ci95_high", "seeds"])
    for agent, values in table.items():
        for metric in listed:
            if metric in values:
                mean, half, n = values[metric]
                bounds = (
                    ("", "") if math.isnan(half) else (f"{mean - half:.6f}", f"{mean + half:.6f}")
                )
                writer.writerow([agent, metric, f"{mean:.6f}", *bounds, n])
    atomic_write(csv_path, lambda tmp: tmp.write_text(buffer.getvalue()), suffix=".csv")
    return md_path, csv_path
