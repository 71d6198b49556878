"""Drift of review embeddings as ONE signal, on real sentences: false alarms, detection, time.

    .venv/bin/python benchmarks/reviews_drift.py                       # 20 draws, hours of 30 and 100
    .venv/bin/python benchmarks/reviews_drift.py --draws 60 --methods distance,model,mmd
    .venv/bin/python benchmarks/reviews_drift.py --level 0.0167 --reference 1000   # the domain's test

The data is the SemEval-2014 Task 4 training sentences (``Restaurants_Train_v2.xml``,
``Laptop_Train_v2.xml``; ``../shared/data/real/semeval2014`` beside the repository),
read with ``absa.read_semeval`` and embedded once with the project's encoder
(all-MiniLM-L6-v2, 384 dimensions, ``embed_texts`` without cache). Each draw (seeded)
shuffles the restaurant sentences and runs ``drift.drift_report`` with the 384 columns
as one embedding group, the way the reviews domain does:

- reference: 2,000 random restaurant sentences;
- same distribution: an hour of N OTHER restaurant sentences (disjoint from the
  reference): a flag here is a false alarm;
- topic shift: an hour of N random laptop sentences;
- half shift: an hour of N - N/2 other restaurant and N/2 laptop sentences.

N is one scoring hour (30 by default) and, for context, 100. Prints per method and N the
share of draws flagged (Evidently's decision), the median drift score against the
median threshold it was compared with, and the wall time per report (the whole
``drift_report``: Evidently's report, the decision, the HTML). Then the time of one
report of 2,000 reference rows x 40 current rows. ``drift.EMBEDDING_DRIFT`` holds the
chosen method; its comment quotes these figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = Path(__file__).resolve().parents[1].parent / "shared/data/real/semeval2014"
FILES = {"restaurants": "Restaurants_Train_v2.xml", "laptops": "Laptop_Train_v2.xml"}
GROUP = "text_embedding"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--hours", default="30,100", help="current sample sizes (rows per hour)")
    parser.add_argument("--reference", type=int, default=2000)
    parser.add_argument("--methods", default=None, help="keys of drift.EMBEDDING_DRIFT (default: the chosen one, then model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--level", type=float, default=None,
                        help="test the embedding at this level (drift_report's false_alarm_rate; the reviews domain: 0.05 / 3 "
                             "= 0.0167); default: the method's own 95%% bootstrap quantile")
    args = parser.parse_args(argv)

    missing = [name for name in FILES.values() if not (DATA / name).exists()]
    if missing:
        print(f"SemEval-2014 data not found: {', '.join(str(DATA / m) for m in missing)}", file=sys.stderr)
        print("Put Restaurants_Train_v2.xml and Laptop_Train_v2.xml there (shared/data/real/semeval2014).", file=sys.stderr)
        return 2

    import numpy as np
    import pandas as pd

    from smartstream_assets.ml.absa import read_semeval
    from smartstream_assets.ml.drift import EMBEDDING_DRIFT, EMBEDDING_METHOD, drift_report
    from smartstream_assets.ml.embeddings import EMBEDDING_COLUMNS, embed_texts

    warnings.filterwarnings("ignore")  # sklearn / Evidently chatter on every report
    methods = args.methods.split(",") if args.methods else [EMBEDDING_METHOD] + (["model"] if EMBEDDING_METHOD != "model" else [])
    hours = [int(h) for h in args.hours.split(",") if h.strip()]
    columns = list(EMBEDDING_COLUMNS)

    vectors = {}
    for domain, name in FILES.items():
        texts = read_semeval(DATA / name)["text"].tolist()
        started = time.perf_counter()
        vectors[domain] = embed_texts(texts, cache=None)[0]
        print(f"{domain}: {len(texts)} sentences embedded in {time.perf_counter() - started:.1f}s", flush=True)
    restaurants, laptops = vectors["restaurants"], vectors["laptops"]
    if len(restaurants) < args.reference + 2 * max(hours):
        print(f"only {len(restaurants)} restaurant sentences: too few for --reference {args.reference}", file=sys.stderr)
        return 2

    def frame(rows) -> pd.DataFrame:
        return pd.DataFrame(np.asarray(rows), columns=columns)

    def report(reference, current, method):
        started = time.perf_counter()
        summary, _ = drift_report(reference, current, numerical=[], categorical=[], embeddings={GROUP: columns}, embedding_method=method,
                                  false_alarm_rate=args.level)
        [signal] = summary.columns
        return signal, time.perf_counter() - started

    drift_report(frame(restaurants[:200]), frame(laptops[:20]), numerical=[], categorical=[], embeddings={GROUP: columns})  # imports
    cases = ("same distribution", "laptops", "half laptops")
    rows = []
    for method in methods:
        for n in hours:
            flags = {c: [] for c in cases}
            scores = {c: [] for c in cases}
            thresholds, seconds = [], []
            for draw in range(args.draws):
                rng = np.random.default_rng([args.seed, n, draw])
                order = rng.permutation(len(restaurants))
                reference = frame(restaurants[order[: args.reference]])
                rest = order[args.reference :]
                half = n // 2
                currents = {
                    "same distribution": frame(restaurants[rest[:n]]),
                    "laptops": frame(laptops[rng.choice(len(laptops), n, replace=False)]),
                    "half laptops": frame(np.vstack([restaurants[rest[n : 2 * n - half]], laptops[rng.choice(len(laptops), half, replace=False)]])),
                }  # fmt: skip
                for case, current in currents.items():
                    signal, took = report(reference, current, method)
                    flags[case].append(signal.drifted)
                    scores[case].append(signal.statistic)
                    thresholds.append(signal.threshold)
                    seconds.append(took)
            rows.append((method, signal.statistic_method, n, flags, scores, thresholds, seconds))
            print(f"{method}, hours of {n}: false alarms {sum(flags[cases[0]])}/{args.draws}, "
                  f"laptops flagged {sum(flags[cases[1]])}/{args.draws}, half laptops {sum(flags[cases[2]])}/{args.draws}, "
                  f"{statistics.median(seconds):.2f}s per report", flush=True)  # fmt: skip

    print()
    level = f"level {args.level:g} (bootstrap quantile {1 - args.level:.4f})" if args.level else "the method's own level (95% quantile)"
    print(f"Reference: {args.reference} restaurant sentences; {args.draws} seeded draws per cell; Evidently's decision at {level}.")
    print()
    print("| method | hour (rows) | false alarms (restaurants) | laptops flagged | half laptops flagged | median score: same / laptops / half | median threshold | s per report (median, max) |")
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for method, name, n, flags, scores, thresholds, seconds in rows:
        rate = {c: f"{sum(f)}/{len(f)} ({100 * sum(f) / len(f):.0f}%)" for c, f in flags.items()}
        median = " / ".join(f"{statistics.median(scores[c]):.3f}" for c in cases)
        print(f"| {name} | {n} | {rate[cases[0]]} | {rate[cases[1]]} | {rate[cases[2]]} | {median} | "
              f"{statistics.median(thresholds):.3f} | {statistics.median(seconds):.2f}, {max(seconds):.2f} |")  # fmt: skip

    print()
    reference, current = frame(restaurants[: args.reference]), frame(restaurants[args.reference : args.reference + 40])
    for method in methods:
        times = [report(reference, current, method)[1] for _ in range(5)]
        print(f"{method}: one report of {args.reference} x 40 rows x {len(columns)} dimensions: "
              f"median {statistics.median(times):.2f}s (min {min(times):.2f}s) over 5")  # fmt: skip
    print()
    print(f"chosen (drift.EMBEDDING_METHOD): {EMBEDDING_METHOD} {EMBEDDING_DRIFT[EMBEDDING_METHOD]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
