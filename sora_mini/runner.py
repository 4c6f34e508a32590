"""Run the workbook: every notebook in order with papermill, and every benchmark.

``run_notebooks("tiny")`` executes ``notebooks/NN_*.ipynb`` into ``runs/<scale>/notebooks/`` with a
per-cell timeout, stops at the first failure naming the notebook and the failing cell (papermill
keeps the partial notebook, with an error banner, where the output would have been), and ends
with a table of wall times, also written to ``runs/<scale>/notebooks/timings.json``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

from sora_mini.paths import notebooks_dir, project_root, run_dir

# seconds one cell may take, by scale (a hung cell fails instead of blocking CI forever)
CELL_TIMEOUT = {"tiny": 600, "small": 4 * 3600, "base": 24 * 3600}


class NotebookFailed(RuntimeError):
    """A notebook raised: names the notebook, the cell and where the partial output is."""


def list_notebooks(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in order; ``only`` filters by prefix or name (``["00", "01_compression"]``)."""
    books = sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if only:
        books = [p for p in books if any(p.stem.startswith(o) or p.name == o for o in only)]
        if not books:
            raise ValueError(f"no notebook matches {only}; have: {[p.stem for p in list_notebooks()]}")
    return books


def run_notebooks(scale: str = "tiny", only: list[str] | None = None, seed: int = 0,
                  run_dir_name: str = "runs", cell_timeout: int | None = None,
                  paths: list[Path] | None = None) -> list[dict]:
    """Execute the notebooks in order at ``scale``; raise :class:`NotebookFailed` at the first failure.

    ``paths`` runs these notebook files instead of the workbook's (tests use it).
    """
    import papermill as pm

    from sora_mini.config import get_config

    get_config(scale)  # a clear error for an unknown scale before anything runs
    out_dir = run_dir(run_dir_name, scale) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    timeout = cell_timeout or CELL_TIMEOUT.get(scale, 3600)
    rows: list[dict] = []
    for nb in (paths if paths is not None else list_notebooks(only)):
        nb = Path(nb)
        out = out_dir / nb.name
        print(f"[sora-mini] running {nb.name} at scale={scale} -> {out}", flush=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(nb), str(out), kernel_name="python3", cwd=str(nb.parent), progress_bar=False,
                parameters={"SCALE": scale, "SEED": seed, "RUN_DIR": str(run_dir(run_dir_name, create=False))},
                execution_timeout=timeout, log_output=False,
            )
        except pm.PapermillExecutionError as e:
            rows.append({"notebook": nb.name, "seconds": round(time.perf_counter() - t0, 1), "status": "failed"})
            _write_timings(out_dir, scale, rows)
            raise NotebookFailed(
                f"{nb.name} failed in cell {e.cell_index} (execution count {e.exec_count}): "
                f"{e.ename}: {e.evalue}\nthe partial notebook is kept at {out}"
            ) from None
        seconds = round(time.perf_counter() - t0, 1)
        holes = _missing_listings(out)
        rows.append({"notebook": nb.name, "seconds": seconds, "status": "ok" if not holes else "failed"})
        _write_timings(out_dir, scale, rows)
        if holes:
            raise NotebookFailed(f"{nb.name}: cell(s) {holes} call show_source but show no listing; "
                                 f"call it as a statement (it displays itself); the notebook is at {out}")
    print(format_table(rows, scale))
    return rows


def _missing_listings(executed: Path) -> list[int]:
    import nbformat

    from sora_mini.viz import missing_listings

    return missing_listings(nbformat.read(str(executed), as_version=4).cells)


def _write_timings(out_dir: Path, scale: str, rows: list[dict]) -> None:
    (out_dir / "timings.json").write_text(json.dumps({"scale": scale, "notebooks": rows}, indent=2))


def format_table(rows: list[dict], scale: str) -> str:
    width = max([len(r["notebook"]) for r in rows] + [8])
    lines = [f"\nnotebook wall times at scale={scale}", f"{'notebook':<{width}}  {'seconds':>8}  status"]
    lines += [f"{r['notebook']:<{width}}  {r['seconds']:>8.1f}  {r['status']}" for r in rows]
    lines.append(f"{'total':<{width}}  {sum(r['seconds'] for r in rows):>8.1f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Benchmarks
# ----------------------------------------------------------------------------------------------
def list_benchmarks(only: list[str] | None = None) -> list[Path]:
    benches = sorted((project_root() / "benchmarks").glob("bench_*.py"))
    if only:
        benches = [b for b in benches if any(b.stem.removeprefix("bench_").startswith(o.removeprefix("bench_"))
                                             for o in only)]
        if not benches:
            raise ValueError(f"no benchmark matches {only}; have: {[b.stem for b in list_benchmarks()]}")
    return benches


def run_benchmarks(only: list[str] | None = None, quick: bool = False, run_dir_name: str = "runs") -> dict:
    """Run each ``benchmarks/bench_<name>.py`` ``main(quick)``; write ``runs/bench/<name>.json``."""
    out_dir = run_dir(run_dir_name) / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    results, failed = {}, []
    for path in list_benchmarks(only):
        name = path.stem.removeprefix("bench_")
        print(f"\n=== benchmark {name} ({path.name}) ===", flush=True)
        spec = importlib.util.spec_from_file_location(f"sora_mini_bench_{name}", path)
        module = importlib.util.module_from_spec(spec)
        t0 = time.perf_counter()
        try:
            spec.loader.exec_module(module)
            figures = module.main(quick=quick)
        except Exception as e:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
            print(f"benchmark {name} FAILED: {type(e).__name__}: {e}", file=sys.stderr)
            failed.append(name)
            continue
        figures = {"benchmark": name, "seconds": round(time.perf_counter() - t0, 1), **(figures or {})}
        (out_dir / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))
        results[name] = figures
        print(f"-> {out_dir / (name + '.json')}")
    if failed:
        raise RuntimeError(f"benchmarks failed: {', '.join(failed)} (figures of the others are in {out_dir})")
    return results
