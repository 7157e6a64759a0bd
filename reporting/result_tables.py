"""Section metrics -> the official tables, as lists of CSV rows (and Markdown).

Three layouts, each the one the DCASE community knows:
- `result.csv` of the official baseline: per machine type a block with the header
  `section,AUC (source),AUC (target),pAUC,pAUC (source),pAUC (target),precision (source),...`,
  one row per section, then `arithmetic mean` and `harmonic mean` rows; our file adds the
  machine name above each block and the official score at the end;
- the official evaluator's `<system>_result.csv`;
- the official summary table `System,metric,h-mean,a-mean,<machine>...`.
An undefined value (NaN: a section or domain without normal or anomalous clips) is an empty cell
in every table; means leave it out. Pure functions; nothing is read or written.
"""

from __future__ import annotations

import math

import numpy as np

from reporting.metrics import DOMAINS, SectionMetrics, amean, hmean, official_score, score_values

BASELINE_COLUMNS = [
    "section",
    "AUC (source)",
    "AUC (target)",
    "pAUC",
    "pAUC (source)",
    "pAUC (target)",
    "precision (source)",
    "precision (target)",
    "recall (source)",
    "recall (target)",
    "F1 score (source)",
    "F1 score (target)",
]
EVALUATOR_COLUMNS = [
    "section",
    "AUC (all)",
    "AUC (source)",
    "AUC (target)",
    "pAUC",
    "precision (source)",
    "precision (target)",
    "recall (source)",
    "recall (target)",
    "F1 score (source)",
    "F1 score (target)",
]
# The per-section rows of the official summary table (a TOTAL score row follows them).
SUMMARY_METRICS = {
    "AUC (source)": lambda r: r.auc["source"],
    "AUC (target)": lambda r: r.auc["target"],
    "pAUC (source, target)": lambda r: r.pauc,
}


def _baseline_values(r: SectionMetrics) -> list[float]:
    return [
        r.auc["source"],
        r.auc["target"],
        r.pauc,
        r.pauc_domain["source"],
        r.pauc_domain["target"],
        r.precision["source"],
        r.precision["target"],
        r.recall["source"],
        r.recall["target"],
        r.f1["source"],
        r.f1["target"],
    ]


def machine_result_rows(results: list[SectionMetrics]) -> list[list]:
    """The official baseline's per-machine block for the sections of one machine type."""
    values = np.array([_baseline_values(r) for r in results], dtype=float)
    rows: list[list] = [list(BASELINE_COLUMNS)]
    rows += [[r.section] + [_cell(v) for v in row] for r, row in zip(results, values)]
    rows.append(["arithmetic mean"] + [_cell(amean(col)) for col in values.T])
    rows.append(["harmonic mean"] + [_cell(hmean(col)) for col in values.T])
    rows.append([])
    return rows


def result_rows(results: list[SectionMetrics], ranking: str, score: float) -> list[list]:
    """`result.csv`: a baseline block per machine type, then the official score."""
    rows: list[list] = []
    for machine in _machines_in_order(results):
        rows.append([machine])
        rows += machine_result_rows([r for r in results if r.machine == machine])
    rows.append(["official score", _cell(score)])
    rows.append(["ranking", ranking])
    return rows


def evaluator_rows(results: list[SectionMetrics], ci95: float) -> list[list]:
    """The official evaluator's `<system>_result.csv` (its layout, row labels and means)."""
    rows: list[list] = []
    for machine in _machines_in_order(results):
        mine = [r for r in results if r.machine == machine]
        rows.append([machine])
        rows.append(list(EVALUATOR_COLUMNS))
        for r in mine:
            rows.append(
                [r.section]
                + [
                    _cell(v)
                    for v in (
                        r.auc_all,
                        r.auc["source"],
                        r.auc["target"],
                        r.pauc,
                        r.precision["source"],
                        r.precision["target"],
                        r.recall["source"],
                        r.recall["target"],
                        r.f1["source"],
                        r.f1["target"],
                    )
                ]
            )
        rows += _evaluator_means(mine, suffix="")
        rows.append([])
    rows += _evaluator_means(results, suffix=" over all machine types, sections, and domains")
    rows.append([])
    rows.append(["official score", "", _cell(official_score(results))])
    rows.append(["official score ci95", "", _cell(ci95)])
    rows.append([])
    return rows


def _evaluator_means(results: list[SectionMetrics], suffix: str) -> list[list]:
    # Per metric, the list of source values followed by target values (pAUC appears in both halves).
    perf = np.array(
        [
            [r.auc[d] for d in DOMAINS for r in results],
            [r.pauc for _ in DOMAINS for r in results],
            [r.precision[d] for d in DOMAINS for r in results],
            [r.recall[d] for d in DOMAINS for r in results],
            [r.f1[d] for d in DOMAINS for r in results],
        ],
        dtype=float,
    )
    half = perf.shape[1] // 2
    return [
        ["", "", "AUC", "pAUC", "precision", "recall", "F1 score"],
        [f"arithmetic mean{suffix}", ""] + [_cell(amean(p)) for p in perf],
        [f"harmonic mean{suffix}", ""] + [_cell(hmean(p)) for p in perf],
        [f"source harmonic mean{suffix}", ""] + [_cell(hmean(p[:half])) for p in perf],
        [f"target harmonic mean{suffix}", ""] + [_cell(hmean(p[half:])) for p in perf],
    ]


def summary_rows(
    systems: dict[str, list[SectionMetrics]], machines: list[str], rankings: dict[str, str] | None = None
) -> list[list]:
    """The official summary table: per system the rows AUC (source), AUC (target),
    pAUC (source, target) and TOTAL score, with h-mean, a-mean and a column per machine type
    (the arithmetic mean over that machine's sections; empty where a system has no result).

    Args:
        rankings: system -> the ranking whose values its TOTAL score averages (default `dcase2022`),
            so a 2020 or 2021 run's total is the official score of its `result.csv`.
    """
    rows: list[list] = [["System", "metric", "h-mean", "a-mean"] + machines]
    for system, results in systems.items():
        for metric, get in SUMMARY_METRICS.items():
            values = [get(r) for r in results]
            by_machine = [
                _cell(amean([get(r) for r in results if r.machine == m])) for m in machines
            ]  # NaN (empty) if none
            rows.append([system, metric, _cell(hmean(values)), _cell(amean(values))] + by_machine)
        flat = score_values(results, (rankings or {}).get(system, "dcase2022"))
        rows.append([system, "TOTAL score", _cell(hmean(flat)), _cell(amean(flat))] + [""] * len(machines))
    return rows


def markdown_table(rows: list[list], digits: int = 4) -> str:
    """A CSV-style table as GitHub Markdown, numbers rounded for reading (percent for scores)."""
    header, body = rows[0], rows[1:]
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    for row in body:
        cells = [f"{100 * c:.{digits - 2}f}" if isinstance(c, float) else str(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _machines_in_order(results: list[SectionMetrics]) -> list[str]:
    return list(dict.fromkeys(r.machine for r in results))


def _cell(value: float) -> float | str:
    """Numbers as Python writes them (full precision, like the official files); NaN as empty."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
