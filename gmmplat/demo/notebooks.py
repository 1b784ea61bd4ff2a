"""Run the ordered notebooks (``notebooks/NN_*.ipynb``) headless with papermill.

Every notebook's first code cell is tagged ``parameters`` and holds ``SMOKE``,
``DATA_DIR`` and ``OUT_DIR``; :func:`run_notebooks` injects values for them, runs
the notebooks in order (each reads what the earlier ones wrote under ``OUT_DIR``),
writes each executed copy to ``out_dir`` and a ``run_report.json`` with one entry
per notebook (seconds, status, error).  Widget state is not stored in the copies (each
plotly ``FigureWidget`` would add its 5 MB front-end bundle); open them in JupyterLab
or Voila with a kernel to get the live viewers back.  The first failure stops the run: later
notebooks depend on its outputs.

:func:`ensure_sample_data` simulates the sample datasets that are missing, or stale
(simulated before the current origin convention; ``SMOKE``: tiny ones, a few seconds each).
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import GmmplatError, InputError

NOTEBOOK_NAME = re.compile(r"^(\d\d)_[^/]+\.ipynb$")
DATASETS = ("hinge", "bend", "coupled")
#: a sample dataset's name with this suffix is its realistic variant (gmmplat.synthetic.nuisance.REALISTIC)
REALISTIC_SUFFIX = "_realistic"
# SMOKE datasets: box 32 at 4 Å/px still holds every molecule (radius ≤ 46 Å + shifts + blur);
# two stacks per dataset so multi-stack reading is exercised.
SMOKE_SIMULATION = dict(n_particles=128, box=32, pixel_size_angstrom=4.0, images_per_stack=64, n_consensus=5)
REPORT_NAME = "run_report.json"
# the kernel's own log: errors only (ipykernel warns on every start that local TCP is unencrypted)
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]

Progress = Callable[[str], None]


class NotebookFailed(GmmplatError):
    """A notebook raised; ``name`` is the notebook, ``output_path`` the executed copy."""

    def __init__(self, name: str, output_path: str, detail: str):
        self.name, self.output_path, self.detail = name, output_path, detail
        super().__init__(f"notebook {name} failed: {detail} (executed copy: {output_path})")


@dataclass
class NotebookResult:
    """One notebook of a run: ``status`` is ``"ok"``, ``"failed"`` or ``"not run"``."""

    name: str
    output_path: str
    seconds: float
    status: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def list_notebooks(notebook_dir: str | os.PathLike) -> list[Path]:
    """``NN_*.ipynb`` in ``notebook_dir``, ordered by name (00, 01, ...)."""
    d = Path(notebook_dir)
    if not d.is_dir():
        raise InputError(d, "notebook folder not found")
    return sorted(p for p in d.iterdir() if NOTEBOOK_NAME.match(p.name))


def _printer(progress: bool | Progress) -> Progress:
    if callable(progress):
        return progress
    if progress:
        return lambda line: print(line, flush=True)
    return lambda line: None


def _metadata(data_dir: str | os.PathLike, name: str) -> dict:
    """``data_dir/name/metadata.json``, or {} when it is missing or unreadable."""
    try:
        meta = json.loads((Path(data_dir) / name / "metadata.json").read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def dataset_ready(data_dir: str | os.PathLike, name: str) -> bool:
    """True when ``data_dir/name/metadata.json`` says the dataset is complete and was simulated
    with the current origin convention (:data:`gmmplat.synthetic.simulate.ORIGIN_CONVENTION`)."""
    from ..synthetic.simulate import ORIGIN_CONVENTION

    meta = _metadata(data_dir, name)
    return bool(meta.get("complete")) and meta.get("origin_convention") == ORIGIN_CONVENTION


def ensure_sample_data(data_dir: str | os.PathLike, datasets: tuple[str, ...] = DATASETS, smoke: bool = False,
                       progress: bool | Progress = True) -> list[str]:
    """Simulate each dataset of ``data_dir`` that is missing, incomplete or stale (``smoke``:
    :data:`SMOKE_SIMULATION`); returns those made.  A name ending in ``_realistic`` (``bend_realistic``) is
    the dataset with the nuisances of real data (:data:`gmmplat.synthetic.nuisance.REALISTIC`).

    A complete dataset whose metadata lacks the current origin convention was simulated
    with another origin sign: its images would silently disagree with every projector, so
    it is simulated again, saying so in one line.
    """
    from ..synthetic.nuisance import REALISTIC
    from ..synthetic.simulate import ORIGIN_CONVENTION, simulate_dataset

    say = _printer(progress)
    made = []
    for name in datasets:
        if dataset_ready(data_dir, name):
            continue
        t0 = time.perf_counter()
        folder = Path(data_dir) / name
        size = " (smoke size)" if smoke else ""
        if _metadata(data_dir, name).get("complete"):
            say(f"simulating sample dataset {name!r} again into {folder}{size}: it predates the origin "
                f"convention {ORIGIN_CONVENTION!r} ...")
        else:
            say(f"simulating sample dataset {name!r} into {folder}{size} ...")
        simulate_dataset(name.removesuffix(REALISTIC_SUFFIX), folder, progress=bool(progress) and not smoke,
                         nuisances=REALISTIC if name.endswith(REALISTIC_SUFFIX) else None,
                         **(SMOKE_SIMULATION if smoke else {}))
        say(f"  {name} done in {time.perf_counter() - t0:.1f} s")
        made.append(name)
    return made


def _jsonable(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _error_text(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename is not None:
        cell = getattr(exc, "exec_count", None)
        return f"{ename}: {str(evalue).strip().splitlines()[0] if str(evalue).strip() else ''} (cell [{cell}])"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def run_notebooks(notebook_dir: str | os.PathLike, out_dir: str | os.PathLike, parameters: dict | None = None,
                  smoke: bool = False, progress: bool | Progress = True, kernel_name: str = "python3",
                  raise_on_failure: bool = False) -> list[NotebookResult]:
    """Execute every ``NN_*.ipynb`` of ``notebook_dir`` in order; executed copies go to ``out_dir``.

    Args:
        parameters: injected into each notebook's ``parameters`` cell (e.g. ``DATA_DIR``,
            ``OUT_DIR``; paths are best absolute: notebooks run with ``notebook_dir`` as cwd).
        smoke: the value of ``SMOKE``.
        progress: print a line per notebook (start, seconds), or a callable taking each line.
        raise_on_failure: raise :class:`NotebookFailed` instead of returning the failed result.

    Returns:
        One :class:`NotebookResult` per notebook (those after a failure are ``"not run"``);
        the same list is written to ``out_dir/run_report.json``.
    """
    import papermill

    say = _printer(progress)
    notebooks = list_notebooks(notebook_dir)
    if not notebooks:
        raise InputError(notebook_dir, "no notebooks named NN_*.ipynb")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = {k: _jsonable(v) for k, v in (parameters or {}).items()}
    params["SMOKE"] = bool(smoke)
    show_cells = bool(progress) and not callable(progress) and sys.stderr.isatty()
    results: list[NotebookResult] = []
    failed: NotebookResult | None = None
    t_all = time.perf_counter()
    for k, nb in enumerate(notebooks, 1):
        target = out / nb.name
        if failed is not None:
            results.append(NotebookResult(nb.name, str(target), 0.0, "not run", f"{failed.name} failed before it"))
            continue
        say(f"[{k}/{len(notebooks)}] {nb.name} ...")
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(str(nb), str(target), parameters=params, kernel_name=kernel_name,
                                       cwd=str(nb.parent), progress_bar=show_cells, log_output=False,
                                       store_widget_state=False, extra_arguments=KERNEL_ARGUMENTS)
            result = NotebookResult(nb.name, str(target), time.perf_counter() - t0, "ok")
            say(f"[{k}/{len(notebooks)}] {nb.name} done in {result.seconds:.1f} s")
        except Exception as exc:  # papermill raises PapermillExecutionError and kernel errors
            result = NotebookResult(nb.name, str(target), time.perf_counter() - t0, "failed", _error_text(exc))
            failed = result
            say(f"[{k}/{len(notebooks)}] {nb.name} FAILED after {result.seconds:.1f} s: {result.error}")
        results.append(result)
    write_report(out, results)
    total = time.perf_counter() - t_all
    say(f"{sum(r.ok for r in results)}/{len(results)} notebooks ran in {total:.1f} s; executed copies in {out}")
    if failed is not None and raise_on_failure:
        raise NotebookFailed(failed.name, failed.output_path, failed.error)
    return results


def write_report(out_dir: str | os.PathLike, results: list[NotebookResult]) -> None:
    from ..io.atomic import write_json

    write_json(Path(out_dir) / REPORT_NAME, [asdict(r) for r in results])


def read_report(out_dir: str | os.PathLike) -> list[NotebookResult] | None:
    """The results of an earlier :func:`run_notebooks` into ``out_dir``, or None."""
    path = Path(out_dir) / REPORT_NAME
    if not path.is_file():
        return None
    return [NotebookResult(**row) for row in json.loads(path.read_text())]


def run_once(notebook_dir: str | os.PathLike, work_dir: str | os.PathLike, smoke: bool = True,
             progress: bool | Progress = False) -> tuple[list[NotebookResult], Path, Path, Path]:
    """Run the notebooks into ``work_dir`` unless an earlier call already did (its report exists).

    For test suites that share one run: data in ``work_dir/data``, outputs in
    ``work_dir/out``, executed notebooks in ``work_dir/notebooks``.
    Returns ``(results, data_dir, out_dir, executed_dir)``.
    """
    work = Path(work_dir)
    data, out, executed = work / "data", work / "out", work / "notebooks"
    results = read_report(executed)
    if results is None:
        results = run_notebooks(notebook_dir, executed, parameters={"DATA_DIR": str(data), "OUT_DIR": str(out)},
                                smoke=smoke, progress=progress)
    return results, data, out, executed
