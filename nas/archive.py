"""Archive a finished study for committing: small, read-only, and out of the way of new runs.

A study's journal repeats every user attribute of every trial as its own JSON record, so a
2-hour search writes about 3.5 MB of it; gzipped it is about 20x smaller, and Optuna reads it
back through ``studyio.GzipJournalBackend``. The weights of every fully trained trial are
another 40 KB each: an archive keeps those that anyone exports again (the winner, the
Pareto front, the best by validation). Any other trial, the race's runners-up included, can
be trained again from its spec and recipe (`nas verify STUDY --trial N`), and no reported
figure comes from a search's own weights: verify runs keep theirs. One, not ten or three: a
committed proof must leave room in a clone of at most 20 MB (tests/test_repo.py); ten weights
of a 25,000-parameter net are 1 MB, and the runners-up of 24 archived proofs took 1.3 MB that
nobody had reloaded. For the same reason the search's log, a line per epoch (~100 KB for
two hours), is kept gzipped as ``search.log.gz``: 5x smaller, and ``zless``/``zgrep`` read it.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

from optuna.trial import TrialState

from nas.errors import NasError
from nas.studyio import (
    ARCHIVED_JOURNAL,
    completed,
    journal_records,
    load_study,
    study_dir,
    weights_path,
)


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def kept_trials(study, meta: dict, keep: int) -> set[int]:
    """Trial numbers whose weights an archive keeps: the race's winner, the Pareto front of a
    multi-objective study, and the ``keep`` best by validation."""
    done = completed(study)
    numbers = set()
    if meta.get("winner"):
        numbers.add(meta["winner"]["trial"])
    if len(study.directions) > 1:
        numbers.update(t.number for t in study.best_trials)
    ranked = sorted(done, key=lambda t: (-t.values[0], t.user_attrs.get("n_params", 0)))
    numbers.update(t.number for t in ranked[:keep])
    return numbers


def _write_gzip(out: Path, data: bytes) -> None:
    """Reproducible gzip (no name, no time in the header), written whole or not at all."""
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                               mtime=0, compresslevel=9) as f:
        f.write(data)
    tmp.replace(out)


def gzip_log(log: Path) -> Path:
    """search.log -> search.log.gz; appended to an existing .gz (a log moved in twice)."""
    out = log.with_name(log.name + ".gz")
    old = gzip.decompress(out.read_bytes()) if out.is_file() else b""
    _write_gzip(out, old + log.read_bytes())
    log.unlink()
    return out


def gzip_journal(journal: Path) -> tuple[int, int]:
    """journal.log -> journal.log.gz (reproducible bytes: no name, no time). A torn last record
    (a crash mid-write), which Optuna skips, is dropped; a corrupt one before it is refused.
    Returns the records kept and dropped."""
    records, torn = journal_records(journal)
    _write_gzip(journal.with_name(ARCHIVED_JOURNAL), b"\n".join(records) + b"\n")
    journal.unlink()
    return len(records), int(torn)


def _repoint_pages(folder: Path, new_root: Path) -> int:
    """Point the moved HTML pages at the plotly.min.js that nas.plots shares in ``new_root``
    or a folder above it, so they still open offline."""
    from nas.plots import plotly_src

    n = 0
    for page in folder.rglob("*.html"):
        text = page.read_text()
        new = plotly_src(page, new_root)
        text2 = re.sub(r'src="[^"]*plotly\.min\.js"', f'src="{new}"', text, count=1)
        if text2 != text:
            page.write_text(text2)
            n += 1
    return n


def archive_study(results_dir: Path, name: str, into: Path | None = None,
                  keep: int = 1) -> dict:
    """Compact results_dir/name (gzip its journal, drop the weights nobody will reload), after
    moving it to into/name if ``into`` is given. Refuses a study that is still running."""
    results_dir = Path(results_dir)
    src = study_dir(results_dir, name)
    meta_path = src / "study.json"
    if not meta_path.is_file():
        raise NasError(f"unknown study {name!r}: no {meta_path}")
    meta = json.loads(meta_path.read_text())
    if meta.get("storage") and not str(meta["storage"]).endswith("journal.log"):
        raise NasError(f"study {name!r} lives in {meta['storage']}, not in a journal file; "
                       "nas archive handles journal studies")
    if keep < 0:
        raise NasError(f"--keep-weights must be >= 0, got {keep}")
    study = load_study(results_dir, name)
    from nas.search import fail_stale_trials

    if (src / "journal.log").exists():
        fail_stale_trials(study)  # left by a dead process: not running any more
    running = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    if running:
        raise NasError(f"study {name!r} is still running (trials {running}); archive it once "
                       "the search has ended")
    before = _tree_bytes(src)
    keep_set = kept_trials(study, meta, keep)
    dest = src
    if into is not None:
        dest = Path(into) / name
        if dest.exists():
            raise NasError(f"{dest} exists already")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dest))
        log = results_dir / f"{name}.log"  # bench/prove.sh's log of the search and its verifies
        if log.is_file():
            shutil.move(str(log), str(dest / "search.log"))
        _repoint_pages(dest, Path(into))
    if (dest / "search.log").is_file():
        gzip_log(dest / "search.log")
    records = torn = 0
    if (dest / "journal.log").exists():
        records, torn = gzip_journal(dest / "journal.log")
    removed = 0
    for pt in sorted((dest / "trials").glob("*.pt")):
        if int(pt.stem) not in keep_set:
            pt.unlink()
            removed += 1
    kept = sorted(n for n in keep_set if weights_path(dest, n).is_file())
    return {"study": name, "path": str(dest), "bytes_before": before,
            "bytes_after": _tree_bytes(dest), "journal_records": records, "torn": torn,
            "weights_kept": kept, "weights_removed": removed}
