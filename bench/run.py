"""Run the benches and write docs/benchmarks.md from what they measured.

Each bench script prints its figures and, as its last stdout line, one JSON object. This script
runs the scripts one after another (never two at once: they time things), keeps each JSON with
its command and date under ``bench/results/<name>.json`` (written atomically), and then renders
the page from every result file present, so re-running one bench (``--only search``) refreshes
its rows and keeps the others.

    python bench/run.py                       # everything, then the page (what `make bench` runs)
    python bench/run.py --only latency,search # some benches, then the page
    python bench/run.py --doc-only            # the page from the stored results
    python bench/run.py --import fidelity=LOG # store the JSON last line of a saved log as a result
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DOC = ROOT / "docs" / "benchmarks.md"

#: name -> (script and arguments, what it measures). The order is the order they run in.
BENCHES: dict[str, tuple[list[str], str]] = {
    "throughput": (["throughput.py"], "engine vs a plain spikingjelly training loop"),
    "overhead": (["overhead.py"], "statistics hooks on vs off"),
    "latency": (["latency.py"], "compact-model latency vs MACs"),
    # the search bench in two runs: parts 1-2 (hypervolume, multi-fidelity) do not depend on
    # time and may share the machine; parts 3-4 (cache, workers) time things and run alone
    "search-quality": (["search.py", "--parts", "1,2"], "hypervolume vs random, multi-fidelity saving"),
    "search-speed": (["search.py", "--parts", "3,4"], "dense-cache saving, 2 workers vs 1"),
    # part 2 again where validation accuracy is not saturated (digits' rung accuracy barely moves)
    # (the default, promote, arm only: the stop arm's default has not changed since it was measured)
    "search-mf-fashion": (["search.py", "--parts", "2", "--mf-data", "fashion-mnist", "--arms", "promote"],
                          "multi-fidelity saving on Fashion-MNIST"),
    # part 2 on the every-method space, whose many poor configurations are what rungs are for:
    # the default (promote) arm only, on four seeds (two seeds left one at 0.58, one at 0.37)
    "search-mf-compare": (["search.py", "--parts", "2", "--mf-space", "compare", "--trials", "32",
                           "--mf-seeds", "4", "--arms", "promote"],
                          "multi-fidelity saving on the every-method space"),
    # part 2 with three times the demo's fine-tune and a rung ladder of factor 3 (1, 3, 9): a
    # paused trial's share of a full one is what the rungs save, and it shrinks as fine-tuning grows
    "search-mf-long": (["search.py", "--parts", "2", "--finetune-epochs", "27", "--rungs", "1,3,9",
                        "--mf-seeds", "4", "--arms", "promote"], "multi-fidelity saving with a longer fine-tune"),
    # the same ladder on Fashion-MNIST, whose rung accuracies are not saturated, on four seeds
    # like search-mf-long (the first two left one at 1.16, one at 0.35; about 3.5 hours)
    "search-mf-long-fashion": (["search.py", "--parts", "2", "--mf-data", "fashion-mnist", "--finetune-epochs", "27",
                                "--rungs", "1,3,9", "--mf-seeds", "4", "--arms", "promote"],
                               "multi-fidelity saving with a longer fine-tune on Fashion-MNIST"),
    "fidelity": (["fidelity.py"], "the seeds' claims on Fashion-MNIST"),
}
#: Benches the page shows when their result is present, run only on request (they need a GPU).
OPTIONAL: dict[str, tuple[list[str], str]] = {
    "cifar": (["cifar.py", "--dataset", "fashion-mnist", "--pad", "32"], "VGG-16 on a GPU"),
}


def _command(name: str) -> str:
    args = {**BENCHES, **OPTIONAL}[name][0]
    return "python bench/" + " ".join(shlex.quote(a) for a in args)


def _atomic_write(path: Path, text: str) -> None:
    from snnprune.engine import atomic_write_bytes  # temp file and rename, as every store does

    atomic_write_bytes(path, text.encode("utf-8"))


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def store(name: str, payload: dict[str, Any], *, seconds: float | None, output: str,
          results: Path = RESULTS) -> None:
    record = {"name": name, "command": _command(name), "date": dt.datetime.now().isoformat(timespec="seconds"),
              "seconds": seconds, "result": payload, "output": output[-6000:]}
    _atomic_write(results / f"{name}.json", json.dumps(record, indent=1, default=float) + "\n")


def run_bench(name: str, results: Path = RESULTS) -> bool:
    """Run one bench, streaming its output; store its JSON. False if it failed."""
    args = {**BENCHES, **OPTIONAL}[name][0]
    print(f"=== {name}: {_command(name)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-u", str(HERE / args[0]), *args[1:]], cwd=HERE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout or ():
        lines.append(line)
        if not line.startswith("{"):
            sys.stdout.write(line)
            sys.stdout.flush()
    code = proc.wait()
    output = "".join(lines)
    if code != 0:
        print(f"bench {name} failed (exit {code}); its previous result, if any, is kept", file=sys.stderr)
        return False
    store(name, _last_json(output), seconds=time.perf_counter() - start,
          output="".join(line for line in lines if not line.startswith("{")), results=results)
    return True


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def load_results(results: Path = RESULTS) -> dict[str, dict[str, Any]]:
    out = {}
    for name in (*BENCHES, *OPTIONAL):
        path = results / f"{name}.json"
        if path.is_file():
            out[name] = json.loads(path.read_text(encoding="utf-8"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help=f"comma-separated, from {', '.join(BENCHES)}")
    parser.add_argument("--doc-only", action="store_true", help="render the page from stored results")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="NAME=LOG",
                        help="store the JSON last line of a saved log of NAME's default command")
    parser.add_argument("--doc", default=str(DOC))
    parser.add_argument("--results", default=str(RESULTS), help="folder of the stored results")
    args = parser.parse_args()
    for item in args.imports:
        name, _, log = item.partition("=")
        if name not in {**BENCHES, **OPTIONAL} or not Path(log).is_file():
            parser.error(f"--import wants NAME=LOG with NAME in {', '.join([*BENCHES, *OPTIONAL])} "
                         "and an existing log")
        text = Path(log).read_text(encoding="utf-8")
        store(name, _last_json(text), seconds=None, results=Path(args.results),
              output="".join(x for x in text.splitlines(keepends=True) if not x.startswith("{")))
    names = list(BENCHES)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHES and n not in OPTIONAL]
        if unknown:
            parser.error(f"unknown bench(es) {', '.join(unknown)}; choose from {', '.join([*BENCHES, *OPTIONAL])}")
    elif _has_gpu():
        names.append("cifar")
    failed = []
    if not args.doc_only and not args.imports:
        failed = [n for n in names if not run_bench(n, Path(args.results))]
    from _doc import render  # after the runs: nothing of the page's code is timed

    _atomic_write(Path(args.doc), render(load_results(Path(args.results))))
    print(f"wrote {args.doc}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
