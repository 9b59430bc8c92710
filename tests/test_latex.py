"""Every analysis table of the three papers in LaTeX: free of the known faults (raw Unicode that pdflatex rejects,
ỹ and y^ER as escaped text, a caption that repeats the paper's number, no label) and, where pdflatex is installed
(.ci/run installs it for the slow pass), compiled into one document."""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest
from test_analysis import Store, biamat
from test_biamat_tables import COUNTS, hours, log_counts
from test_uiat_tables import sweep_of, table4_sweeps, uiat

from analysis.afs import tables as afs_tables
from analysis.biamat.names import PAPER_AUX_ORDER
from analysis.biamat.selection import table14
from analysis.biamat.tables import table1, table2, table4, table9, table12, table13
from analysis.biamat.training_time import table11
from analysis.cells import Table
from analysis.render import latex_document, latex_label, to_latex
from analysis.uiat import tables as uiat_tables
from runstore.reader import SweepRuns, load_sweep

AT_RECIPE = {"params.model": "wrn-28-10", "params.epochs": 100, "params.weight_decay": 2e-4}


def frame(rows: list[dict]) -> SweepRuns:
    return SweepRuns("s", "parent", "exp", pd.DataFrame(rows), {}, client=None)


def scores(aa: float) -> dict[str, float]:
    return {"metrics.best/clean": aa + 0.35, "metrics.best/pgd20": aa + 0.05, "metrics.best/autoattack": aa}


def gated(variant: str, aux: str, **extra) -> dict:
    return {"tags.method": "biamat", "params.labels": "gated", "params.variant": variant, "params.dataset": "cifar10",
            "params.aux_datasets": aux, "params.alpha": 1.0, **extra}


def biamat_frame_tables() -> list[Table]:
    """Tables 1, 4, 12 and 13, from frames shaped like MLflow's (they read no history)."""
    labels = [gated("at", aux, **{"params.labels": labels, **AT_RECIPE, **scores(0.47 + i / 100 + j / 200)})
              for i, aux in enumerate(PAPER_AUX_ORDER) for j, labels in enumerate(("aux", "uniform"))]
    baseline = {"tags.method": "baseline", "params.training": "pgd_at", "params.dataset": "cifar10", **AT_RECIPE,
                **scores(0.4853)}
    pis = [gated(v, "imagenet32", **{"params.pi": pi, "metrics.train/high_fraction": 0.5, **scores(0.5 + pi / 10)})
           for v in ("at", "trades") for pi in (0.45, 0.5)]
    search = [gated("at", "imagenet32", run_name=f"biamat pi={pi}", **{"params.pi": pi, "metrics.select/pgd10": pi,
                                                                      **scores(0.5)}) for pi in (0.5, 0.55)]
    aux_sets = [gated("at", aux, **{"params.aux_mix": mix, **AT_RECIPE, **scores(0.49)})
                for aux, mix in (("svhn", "concatenated"), ("svhn,cifar100", "equal"))]
    main = [gated("at", aux, **{"params.pi": 0.55, **AT_RECIPE, **scores(0.49)}) for aux in ("svhn", "imagenet32")]
    oat = [gated("at", "imagenet32", **{"params.labels": labels, "params.pi": 0.55, "params.aux_n": 100000,
                                        **scores(0.5)}) for labels in ("uniform", "gated")]
    return [table1(frame([*labels, baseline])), table13(frame(pis)),
            table12(frame(search)), table4(frame([*aux_sets, baseline])),
            table2(frame([*main, baseline])), table9(frame(oat))]


def uiat_frame_tables() -> list[Table]:
    ablation = [uiat(c, clean=0.8, pgd20=0.5, autoattack=0.45) for c in ("none", "uag", "uag+fr", "uag+iam",
                                                                         "uag+fr+iam")]
    eps = [uiat("uag+fr+iam", clean=0.8, autoattack=0.4) | {"params.eps": 12 / 255},
           {"tags.method": "baseline", "params.training": "trades", "params.eps": 12 / 255, "metrics.best/clean": 0.7,
            "metrics.best/autoattack": 0.3}]
    lam = [uiat("uag+fr", oneoff=True, clean=0.85, pgd20=0.4) | {"params.lam": lam} for lam in (1.0, 3.5)]
    return [uiat_tables.table6(sweep_of(ablation)), uiat_tables.table3(sweep_of(eps)),
            uiat_tables.lambda_table(sweep_of(lam)), uiat_tables.table4(table4_sweeps())]


def afs_frame_tables() -> list[Table]:
    def extractor(eps: int) -> dict:
        return {"tags.method": "afs_extractor", "params.model": "wrn-28-10", "params.eps": str(eps / 255),
                "params.eval_eps": "0.0313725", "params.train_eps_range": "",  # as MLflow keeps 8/255 "metrics.model/params": 36.5e6,
                "metrics.model/macs": 5.2e9, "metrics.best/pgd10": 0.5, **scores(0.5)}

    def merger(mask: str, alpha: float) -> dict:
        return {"tags.method": "afs", "params.mask": mask, "params.alpha": alpha, "params.alpha_mode": "batch",
                "metrics.model/params": 218e6, "metrics.model/macs": 31e9, "metrics.best/pgd10": 0.5, **scores(0.5)}

    extractors = frame([extractor(eps) for eps in range(10)])
    mergers = frame([merger("000111111", a) for a in (0.0, 0.5)] + [merger("100010001", 0.5)])
    return [afs_tables.table1(extractors), afs_tables.table2(frame([merger("000111111", a) for a in (0.0, 0.5)])),
            afs_tables.table3(frame([merger(m, 0.5) for m in ("000111111", "100010001")])),
            afs_tables.tradeoff(mergers, extractors), afs_tables.table6(extractors, mergers)]


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> list[Table]:
    """Every table of the three papers' analysis scripts; those that read epoch times or artifacts from a store."""
    folder = tmp_path_factory.mktemp("mlflow")
    store = Store(f"sqlite:///{folder / 'mlflow.db'}")
    store.client.create_experiment("biamat-labels", artifact_location=(folder / "artifacts").as_uri())
    times = store.sweep("biamat-labels", "times")
    store.trial(times, "baseline", {"training": "pgd_at", "dataset": "cifar10", "model": "wrn-28-10", "seed": 0},
                {}, history=hours(1.0, 1.5))
    store.trial(times, "biamat", biamat("at", 0.55, 0, labels="uniform"), {}, history=hours(2.0, 2.0))
    store.trial(times, "uiat", {"components": "uag+fr+iam", "oneoff": "False", "model": "resnet18", "seed": 0}, {},
                history=hours(0.01, 0.01))
    run_id = store.trial(times, "biamat", biamat("at", 0.55, 0), {}, history=hours(2.0, 2.5))
    log_counts(store, run_id, {2: COUNTS[2][0]})
    mapping = tmp_path_factory.mktemp("mapping") / "imagenet_cifar10.csv"
    mapping.write_text("aux_class,primary_class\n0,airplane\n2,ship\n")
    sweep = load_sweep("times", tracking_uri=store.uri)
    return [*biamat_frame_tables(), table11([sweep]), table14(sweep, mapping, aux="imagenet32"),
            *uiat_frame_tables(), uiat_tables.table2([sweep]), *afs_frame_tables()]


def body_lines(tex: str) -> list[str]:
    return [line for line in tex.splitlines() if not line.startswith("%")]


def test_afs_table1_reads_its_eval_eps_back_as_k_over_255():
    # A param keeps 6 significant digits: 8/255 is stored as 0.0313725, which is 7.99999/255.
    assert "accuracy (%) at 8/255," in afs_frame_tables()[0].title


def test_every_tables_latex_is_free_of_the_known_faults(tables):
    labels = [latex_label(table) for table in tables]
    assert len(set(labels)) == len(tables), f"labels repeat: {labels}"
    for table in tables:
        tex = to_latex(table)
        body = "\n".join(body_lines(tex))
        assert body.isascii(), f"{table.title}: pdflatex rejects {sorted({c for c in body if not c.isascii()})}"
        assert "textasciitilde" not in body and "textasciicircum" not in body, table.title
        caption = re.search(r"\\caption\{(.*)\}\n", body).group(1)
        assert not re.match(r"(Table|Fig\.) [0-9]+", caption), f"the caption repeats the paper's number: {caption}"
        assert body.count("\\label{tab:") == 1 and f"\\label{{{latex_label(table)}}}" in body
        columns = len(re.search(r"\\begin\{tabular\}\{([lr]+)\}", body).group(1))
        rows = body.split("\\midrule\n")[1].split("\\bottomrule")[0].splitlines() + [body.split("\\toprule\n")[1]
                                                                                     .splitlines()[0]]
        for row in rows:
            assert row.count(" & ") == columns - 1, row
            assert row.count("$") % 2 == 0 and row.count("{") == row.count("}"), row
        if "\\checkmark" in body:
            assert tex.startswith("% needs \\usepackage{booktabs}, \\usepackage{graphicx}, \\usepackage{amssymb}"), \
                table.title
    by_label = {latex_label(t): to_latex(t) for t in tables}
    assert "\\midrule\n$\\tilde{y}$ & " in by_label["tab:biamat-table1"]
    assert "$y^{ER}$ & " in by_label["tab:biamat-table1"]
    assert "$\\tilde{y}$ / $y^{ER}$ & SVHN & CIFAR-100 & Places365 & ImageNet & Baseline (AT)" in by_label[
        "tab:biamat-table1"]
    assert by_label["tab:biamat-table13"].split("\\toprule\n")[1].startswith("$\\pi$ & AT+BiaMAT")
    assert "\\caption{Ablation on $\\pi$ (primary CIFAR-10, auxiliary ImageNet)" in by_label["tab:biamat-table13"]
    assert "$\\alpha$ & $\\pi$" in by_label["tab:biamat-table12"]
    uiat6 = next(tex for label, tex in by_label.items() if label.startswith("tab:table-6-ablation"))
    assert "$\\checkmark$" in uiat6


@pytest.mark.slow  # needs pdflatex, which .ci/run installs before the slow pass; the run itself takes about 2 s
def test_every_tables_latex_compiles_with_pdflatex(tables, tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (Debian: texlive-latex-base texlive-latex-recommended)")
    (tmp_path / "tables.tex").write_text(latex_document(tables), encoding="utf-8")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "tables.tex"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    log = (tmp_path / "tables.log").read_text(errors="replace")
    assert result.returncode == 0, log[-3000:]
    assert "multiply defined" not in log and "Missing character" not in log
    assert "Overfull \\hbox" not in log, "a table is wider than the page"
    # Each table got a number of LaTeX's own under its label: \newlabel{tab:...}{{N}{page}...}.
    numbered = re.findall(r"\\newlabel\{(tab:[^}]*)\}\{\{([0-9]+)\}", (tmp_path / "tables.aux").read_text())
    assert [label for label, _ in numbered] == [latex_label(t) for t in tables]
    assert [int(n) for _, n in numbered] == list(range(1, len(tables) + 1))
    assert (tmp_path / "tables.pdf").stat().st_size > 10_000
