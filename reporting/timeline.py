"""Scored recordings -> a picture of their anomaly scores over time with the decision threshold.

Reads `ScoreRow`s (the CSV of `04_score.sh`); writes one PNG: per machine type and section, the
scores against each file's modification time, clips above the threshold in red, and the threshold
as a line.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

from core.atomic import atomic_path  # noqa: E402
from reporting.score_log import ScoreRow  # noqa: E402


def plot_timeline(rows: list[ScoreRow], out: Path, title: str) -> Path:
    """Draw the scores of `rows` over time into the PNG `out` (atomically); return `out`."""
    groups = sorted({(r.machine, r.section) for r in rows}) or [("", "")]
    fig, axes = plt.subplots(len(groups), 1, figsize=(10, 3.2 * len(groups)), squeeze=False)
    for ax, (machine, section) in zip(axes[:, 0], groups):
        group = sorted((r for r in rows if (r.machine, r.section) == (machine, section)), key=lambda r: r.modified)
        times = [datetime.fromisoformat(r.modified) for r in group]
        flagged = [r.decision == 1 for r in group]
        ax.plot(
            times,
            [r.score for r in group],
            color="tab:blue",
            linewidth=0.8,
            marker="o",
            markersize=3,
            label="anomaly score",
        )
        ax.scatter(
            [t for t, f in zip(times, flagged) if f],
            [r.score for r, f in zip(group, flagged) if f],
            color="tab:red",
            zorder=3,
            label="judged anomalous",
        )
        if group:
            ax.step(
                times,
                [r.threshold for r in group],
                where="post",
                color="black",
                linestyle="--",
                label=f"threshold {group[-1].threshold:.4g}",
            )
        ax.set(
            title=f"{title}: {machine} section {section}" if machine else title,
            xlabel="file modified",
            ylabel="anomaly score",
        )
        ax.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    with atomic_path(Path(out)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(out)
