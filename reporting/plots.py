"""Scores and ground truth of a results folder -> pictures a person would rather look at.

Writes one PNG per machine type: per section, the ROC curves of the source and target domains
(normals of that domain against all anomalies, as AUC (source/target) is defined), the range of
false positive rates the run's pAUC covers (`metrics.max_fpr`), and the score distributions of
normal and anomalous clips per domain, with the decision threshold. The PNG's `Description` text
says what it shows, that range included, for readers that do not see the picture.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from reporting.evaluation import SectionScores  # noqa: E402
from reporting.metrics import DOMAINS, SectionMetrics  # noqa: E402

COLOURS = {"source": "tab:blue", "target": "tab:orange"}


def plot_machine(
    sections: list[SectionScores], results: list[SectionMetrics], title: str, out: Path, max_fpr: float
) -> Path:
    """Draw the ROC curves and score distributions of one machine type's sections into `out`.

    Args:
        results: the sections' metrics, their pAUC computed over false positive rates up to `max_fpr`
            (the run's `metrics.max_fpr`), the range shaded on the ROC curves.
    """
    fig, axes = plt.subplots(len(sections), 2, figsize=(11, 4 * len(sections)), squeeze=False)
    for (roc_ax, hist_ax), section, result in zip(axes, sections, results):
        s, anomaly, target = section.scores, section.is_anomaly, section.is_target
        flagged = section.decisions == 1
        for domain in DOMAINS:
            in_domain = target if domain == "target" else ~target
            pick = in_domain | anomaly
            if anomaly[pick].any() and (~anomaly[pick]).any():
                fpr, tpr, _ = roc_curve(anomaly[pick], s[pick])
                roc_ax.plot(fpr, tpr, color=COLOURS[domain], label=f"{domain} (AUC {100 * result.auc[domain]:.1f}%)")
            bins = np.linspace(s.min(), s.max(), 30)
            for is_anomaly, style in ((False, "step"), (True, "stepfilled")):
                values = s[in_domain & (anomaly == is_anomaly)]
                if values.size:
                    hist_ax.hist(
                        values,
                        bins=bins,
                        histtype=style,
                        alpha=0.5 if is_anomaly else 1.0,
                        color=COLOURS[domain],
                        label=f"{domain} {'anomaly' if is_anomaly else 'normal'}",
                    )
        roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        roc_ax.axvspan(
            0, max_fpr, color="grey", alpha=0.1, label=f"pAUC range, FPR 0-{max_fpr:g} ({100 * result.pauc:.1f}%)"
        )
        roc_ax.set(
            title=f"{title}: {section.machine} section {section.section}",
            xlabel="false positive rate",
            ylabel="true positive rate",
            xlim=(0, 1),
            ylim=(0, 1.01),
        )
        roc_ax.legend(loc="lower right", fontsize="small")
        if flagged.any():
            hist_ax.axvline(s[flagged].min(), color="black", linestyle="--", label="lowest score judged anomalous")
        hist_ax.set(title="anomaly score distribution", xlabel="anomaly score", ylabel="clips")
        hist_ax.legend(fontsize="small")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = sections[0].machine
    description = (
        f"{title}, {machine}: per section, ROC curves of the source and target domains with the pAUC range "
        f"(false positive rate 0 to {max_fpr:g}) shaded, and the anomaly score distributions"
    )
    fig.savefig(out, dpi=90, metadata={"Title": f"{title}: {machine}", "Description": description})
    plt.close(fig)
    return out
