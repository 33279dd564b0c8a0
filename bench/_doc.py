"""docs/benchmarks.md from the stored bench results (`bench/run.py` calls `render`).

Nothing here measures; every figure comes from a result file, and every verdict about a seed's
claim was computed by the bench that measured it. A bench whose result is missing gets a line
saying how to produce it, never an old figure typed in by hand.
"""

from __future__ import annotations

from typing import Any

from run import _command  # the command each bench runs, from its one table (run.BENCHES)

Results = dict[str, dict[str, Any]]


def _f(value: Any, fmt: str = ".3f") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        return format(float(value), fmt)
    except (TypeError, ValueError):
        return str(value)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f} %"


def _ms(d: dict[str, Any]) -> str:
    return f"{100 * d['mean']:.2f} ± {100 * d['spread']:.2f}"


def _met(value: Any, target: float, *, below: bool) -> str:
    if value is None:
        return "n/a"
    ok = float(value) <= target if below else float(value) >= target
    return "met" if ok else "**missed**"


def _missing(name: str, command: str) -> list[str]:
    return [f"*Not measured yet: run `{command}` (or `python bench/run.py --only {name}`).*", ""]


def _machine_of(m: dict[str, Any]) -> str:
    return (f"{m.get('cores')} cores, {m.get('cpu') or 'unknown CPU'}, torch {m.get('torch')}, "
            f"Python {m.get('python')}" + (f", GPU {m['cuda']}" if m.get("cuda") else ", no GPU"))


def _machine(results: Results) -> str:
    """The machine the results were measured on; each one with its benches when they differ (a
    bench re-run on another machine must not be read as measured beside the others)."""
    seen: dict[str, list[str]] = {}
    for name, record in results.items():
        m = record["result"].get("machine")
        if m:
            seen.setdefault(_machine_of(m), []).append(name)
    if not seen:
        return "unknown"
    if len(seen) == 1:
        return next(iter(seen))
    return "; ".join(f"{machine} ({', '.join(names)})" for machine, names in seen.items())


def _performance(results: Results) -> list[str]:
    out = ["## Performance", "",
           "| what | figure | target | status | command (measured on) |", "|---|---|---|---|---|"]

    def row(what: str, figure: str, target: str, status: str, name: str) -> None:
        rec = results.get(name)
        cmd = f"`{rec['command']}` ({rec['date'][:10]})" if rec else f"`python bench/run.py --only {name}`"
        out.append(f"| {what} | {figure} | {target} | {status} | {cmd} |")

    tp = results.get("throughput", {}).get("result")
    if tp:
        row("engine / plain spikingjelly loop, samples per second", _f(tp["ratio"]), "≈ 1", "context", "throughput")
    ov = results.get("overhead", {}).get("result")
    if ov:
        for key, label in (("ratio_activity", "activity (SCA)"), ("ratio_criticality", "criticality")):
            row(f"step time with {label} hooks / without (median of per-round paired ratios)", _f(ov[key]), "≤ 1.05",
                _met(ov[key], 1.05, below=True), "overhead")
        for key, label in (("ratio_activity_every4", "activity"), ("ratio_criticality_every4", "criticality")):
            if key in ov:
                row(f"the same, {label}, `stat_every=4`", _f(ov[key]), "context", "context", "overhead")
    lat = results.get("latency", {}).get("result")
    if lat:
        for r in lat.get("rows", []):
            row(f"compact latency / dense at {_pct(r.get('pruned'))} channels removed, batch {r.get('batch')}",
                f"{_f(r.get('latency_ratio'))} (MACs {_f(r.get('macs_ratio'))})",
                "≈ MACs ratio", f"latency/MACs {_f(r.get('quotient'), '.2f')}", "latency")
    sq = results.get("search-quality", {}).get("result")
    if sq:
        r = sq.get("ratios", {})
        row("Pareto hypervolume, TPE / random, equal trials", _f(r.get("hv_tpe_over_random")), "≥ 1.10",
            _met(r.get("hv_tpe_over_random"), 1.10, below=False), "search-quality")
        row("compute (fine-tune epochs) to 95 % of the final hypervolume, multi-fidelity / none",
            _f(r.get("mf_epochs_to_95")), "≤ 0.5", _met(r.get("mf_epochs_to_95"), 0.5, below=True), "search-quality")
        _promote_row(row, sq, "the same with `rungs.mode: promote` (paused trials resumed, as ASHA)", "search-quality")
        p2 = sq.get("part2_multifidelity") or {}
        if p2.get("oracle_ratio") is not None:
            row("the same for an oracle that knows every trial's outcome (floor of any rule stopping at the "
                "first rung)", _f(p2["oracle_ratio"]), "context", "context", "search-quality")
    for name in MF_RERUNS:
        _rerun_rows(row, name, results.get(name, {}).get("result"))
    ss = results.get("search-speed", {}).get("result")
    if ss:
        r = ss.get("ratios", {})
        row("per-trial wall, dense cache hit / no cache", _f(r.get("cache_hit_over_nocache")), "≤ 0.5",
            _met(r.get("cache_hit_over_nocache"), 0.5, below=True), "search-speed")
        row("trials per hour, 2 workers (1 thread each) / 1 worker (2 threads): the whole 2-core machine",
            _f(r.get("workers_2_over_1")), "≥ 1.6", _met(r.get("workers_2_over_1"), 1.6, below=False), "search-speed")
        if r.get("workers_2_over_1_equal_threads") is not None:
            row("trials per hour, 2 workers / 1 worker, 1 thread per worker (scaling at equal resources)",
                _f(r.get("workers_2_over_1_equal_threads")), "≥ 1.6",
                _met(r.get("workers_2_over_1_equal_threads"), 1.6, below=False), "search-speed")
    out.append("")
    for name in ("throughput", "overhead", "latency", "search-quality", "search-speed", *MF_RERUNS):
        if name not in results:
            out += _missing(name, _command(name))
    if lat:
        out += ["Why compact latency falls less than MACs (profiled with `python bench/latency.py --profile`, "
                "torch.profiler, 1 thread): at batch 64 the convolutions are only about a third of the dense "
                "network's time; the LIF neurons (an elementwise loop over T) take about half, pooling and "
                "BatchNorm the rest. MACs shrink with the square of the kept channel share (inputs x outputs), "
                "neuron and pooling work only linearly, and convolutions at odd widths (10/19/38) run at about "
                "half the dense MAC rate. At batch 1 the time is mostly a fixed cost per operator call, "
                "independent of width, so the ratio flattens near 0.5.", ""]
    out += _search_notes(sq, ss, {name: results.get(name, {}).get("result") for name in MF_RERUNS})
    return out


#: Part 2 of the search bench run again in other settings (bench/run.py), in page order; each
#: row names its setting from the stored settings (`_setting`).
MF_RERUNS = ("search-mf-fashion", "search-mf-compare", "search-mf-long", "search-mf-long-fashion")


def _setting(name: str, result: dict[str, Any]) -> tuple[str, str]:
    """How a rerun's rows name its setting, and the oracle row's short form."""
    settings = result.get("settings", {})
    if name == "search-mf-compare":
        return f"the every-method space (`compare`, {settings.get('trials')} trials)", "every-method space"
    if name.startswith("search-mf-long"):  # digits or Fashion-MNIST, from the settings
        ft = settings.get("finetune_epochs_part2")
        data = "Fashion-MNIST" if settings.get("mf_data") == "fashion-mnist" else "digits"
        return (f"{data} with a {ft}-epoch fine-tune",
                f"{ft}-epoch fine-tune" + (", Fashion-MNIST" if data == "Fashion-MNIST" else ""))
    return "Fashion-MNIST", "Fashion-MNIST"


def _rerun_rows(row: Any, name: str, result: dict[str, Any] | None) -> None:
    """A part-2 rerun's rows: the stop arm where it ran (not with ``--arms promote``), the promote
    arm with its cost with pruning counted in, and the oracle."""
    if not result:
        return
    r, p2 = result.get("ratios", {}), result.get("part2_multifidelity") or {}
    where, short = _setting(name, result)
    if name.startswith("search-mf-long"):  # the others run the bench's default rungs, said in their notes
        epochs = _promote_rungs(result.get("settings", {})).get("epochs") or []
        where += f" (rungs at {', '.join(map(str, epochs))})"
    where += _seeds(p2)
    if r.get("mf_epochs_to_95") is not None:
        row(f"the same on {where}, multi-fidelity / none", _f(r.get("mf_epochs_to_95")), "≤ 0.5",
            _met(r.get("mf_epochs_to_95"), 0.5, below=True), name)
    _promote_row(row, result, f"the same on {where}, `promote`", name)
    if p2.get("oracle_ratio") is not None:
        row(f"the same for the oracle, {short}", _f(p2["oracle_ratio"]), "context", "context", name)


def _seeds(p2: dict[str, Any]) -> str:
    """The words " on N seeds" for a part-2 row, where the result lists them (a pooled ratio hides how many)."""
    count = len(p2.get("per_seed") or [])
    return f" on {count} seed{'' if count == 1 else 's'}" if count else ""


def _promote_row(row: Any, result: dict[str, Any], what: str, name: str) -> None:
    """The promote arm's row, where the stored result has one (results from before it have not),
    with the fraction it ran at, and beside it the same ratio with every trial's pruning epochs
    counted in and in trial seconds: the rungs cut fine-tuning only."""
    value = result.get("ratios", {}).get("mf_epochs_to_95_promote")
    if value is None:
        return
    settings = result.get("settings", {})
    row(f"{what}, fraction {_promote_fraction(settings)}, margin {_margin(_promote_rungs(settings))}", _f(value), "≤ 0.5", _met(value, 0.5, below=True), name)
    promote = (result.get("part2_multifidelity") or {}).get("promote") or {}
    if promote.get("ratio_trial_epochs") is not None:
        row("the same, `promote`, with pruning epochs counted in / in trial seconds",
            f"{_f(promote['ratio_trial_epochs'])} / {_f(promote.get('ratio_seconds'))}", "context", "context", name)


def _promote_rungs(settings: dict[str, Any]) -> dict[str, Any]:
    """The promote arm's rung block; results from before it had its own ran on the stop arm's."""
    return settings.get("promote_rungs_part2") or settings.get("rungs_part2") or {}


def _promote_fraction(settings: dict[str, Any]) -> Any:
    """The promote arm's dominated fraction."""
    return _promote_rungs(settings).get("dominated_fraction")


def _margin(block: dict[str, Any]) -> str:
    """A rung block's accuracy margin as the space writes it; results from before margins judged
    by plain dominance (0)."""
    margin = block.get("margin", 0)
    return margin if isinstance(margin, str) else f"{margin:g}"


def _margin_words(block: dict[str, Any]) -> str:
    margin = _margin(block)
    if margin == "auto":
        return "an accuracy margin of one standard error (`rungs.margin: auto`)"
    return "plain dominance, no accuracy margin" if margin == "0" else f"an accuracy margin of {margin}"


def _search_notes(sq: dict[str, Any] | None, ss: dict[str, Any] | None,
                  reruns: dict[str, dict[str, Any] | None] | None = None) -> list[str]:
    """Why the search rows are what they are, from the stored figures (nothing typed in);
    ``reruns``: the `MF_RERUNS` results by name, each noted under its setting's name."""
    out = _mf_note(sq, "Multi-fidelity (digits)")
    for name, result in (reruns or {}).items():
        if result:
            where = "the every-method space" if name == "search-mf-compare" else _setting(name, result)[0]
            out += _mf_note(result, f"Multi-fidelity on {where}")
    p3 = (ss or {}).get("part3_cache")
    if p3:
        out += [f"Dense cache: a cache hit still runs the trial's own pruning and fine-tuning; a miss adds the "
                f"pre-training ({p3['miss_seconds']:.1f} s for the miss against {p3['mean_hit']:.1f} s per hit here), "
                "so the ratio is the trial's share of pre-training + trial"
                + (f": in epochs {p3['trial_epochs']} / ({p3['pretrain_epochs']} + {p3['trial_epochs']}) = "
                   f"{p3['epoch_bound']:.2f} at this budget, about the least any cache can reach when a pruning "
                   "epoch costs what a pre-training epoch does (a little more: the pruners' hooks; a trial without "
                   "the cache also measures the dense network once, a little less)"
                   if p3.get("epoch_bound") is not None else "")
                + ". It falls as pre-training grows longer than the search's per-trial epochs."
                + (f" The measured {p3['ratio']:.3f} sits on that bound: over {len(p3['hit_seconds'])} configs it "
                   "moves by a few hundredths from run to run, so on which side of 0.5 it lands is noise, not a "
                   "saving found." if p3.get("epoch_bound") is not None
                   and abs(p3["ratio"] - p3["epoch_bound"]) < 0.03 else ""), ""]
    p4 = (ss or {}).get("part4_workers")
    if p4 and "w1t1" in p4:
        speedup = p4["w1t1"]["mean_trial_seconds"] / p4["w1"]["mean_trial_seconds"] \
            if p4["w1"].get("mean_trial_seconds") and p4["w1t1"].get("mean_trial_seconds") else None
        out += ["Workers: a single worker already uses both cores through torch's intra-op threads"
                + (f" ({speedup:.2f}x faster per trial than with 1 thread)" if speedup else "")
                + ", so on 2 cores 2 workers can add little; with the same threads per worker (each worker "
                "on its own cores, as on a cluster) 2 workers give "
                f"{p4['ratio_equal_threads']:.2f}x the trials per hour of 1.", ""]
    return out


def _mf_note(result: dict[str, Any] | None, label: str) -> list[str]:
    """What part 2 of the search bench stopped and why its ratio is where it is (all from the figures);
    a run of the promote arm alone (``--arms promote``) has no stop-arm sentences."""
    p2 = (result or {}).get("part2_multifidelity")
    settings = (result or {}).get("settings", {})
    if not p2 or not p2.get("per_seed"):
        return []
    seeds = p2["per_seed"]
    ft = settings.get("finetune_epochs_part2")
    block = settings.get("rungs_part2") or {}
    epochs = block.get("epochs") or []
    text = f"{label}: rungs at fine-tune epochs {', '.join(map(str, epochs))} of {ft}, {len(seeds)} seeds. "
    if all("rungs" in p for p in seeds):
        text += _stop_sentences(p2, seeds, block)
    reach = [p["none"].get("epochs_to_95_of_none_final") for p in seeds]
    if ft and None not in reach and settings.get("trials"):
        from snnprune.search._optuna import startup_trials

        text += (f"The no-stop arm reached 95 % of its final hypervolume after "
                 f"{', '.join(str(round(r / ft)) for r in reach)} trials (per seed); the first "
                 f"{startup_trials(settings['trials'])} trials of every arm are the sampler's random start-up, "
                 f"the same configurations, and the rule compares a trial only with trials that reached the rung "
                 f"before it (at least {block.get('min_trials')}). ")
    if p2.get("oracle_ratio") is not None:
        text += (f"An oracle that knows every trial's outcome and runs in full only the fewest front points that "
                 f"reach the target would need {_f(p2['oracle_ratio'])} of the no-stop compute. In a two-objective "
                 "search whose cost (MACs) is fixed by the configuration, the trials that make the front are the "
                 "cheap ones no earlier trial dominates; what the rule saves goes to trials that would have ended "
                 "off the front, which buys hypervolume at equal compute rather than reaching 95 % sooner.")
    promote = p2.get("promote")
    if promote and all("promote" in p for p in seeds):
        text += (_promote_sentences(promote, seeds, _promote_fraction(settings), _margin_words(_promote_rungs(settings)))
                 + _pruning_floor(settings))
    merged = (result or {}).get("merged_from")
    if merged:  # seeds added by a later run (--mf-first-seed): said, not hidden in the pooled figure
        text += (f" The seeds ran in {len(merged)} runs ({'; '.join(merged)}); each seed's arms ran side by side "
                 "in its run, and the pooled figures are the same computation over all the seeds' studies "
                 "(trial seconds come from runs under different loads).")
    return [text.rstrip(), ""]


def _stop_sentences(p2: dict[str, Any], seeds: list[dict[str, Any]], block: dict[str, Any]) -> str:
    """The stop arm's part of `_mf_note`."""
    stopped = sum(p["rungs"]["pruned"] for p in seeds)
    trials = sum(p["rungs"]["trials"] for p in seeds)
    per_trial = (sum(p["rungs"]["finetune_epochs_total"] for p in seeds) / trials) / (
        sum(p["none"]["finetune_epochs_total"] for p in seeds) / sum(p["none"]["trials"] for p in seeds))
    text = (f"The rule (stop when dominated by at least {block.get('dominated_fraction')} of the trials seen at the "
            f"rung, with {_margin_words(block)}) stopped {stopped} of the {trials} trials the stopping arm ran within the no-stop arm's "
            f"fine-tune epochs, so a trial cost {per_trial:.2f} of the no-stop arm's fine-tune epochs on average")
    if p2.get("ratio_final_hv"):
        text += (f", and the stopping arm ended with {p2['ratio_final_hv']:.3f}x the no-stop arm's final "
                 "hypervolume (mean over seeds)")
    text += ". "
    if p2.get("ratio_trial_epochs") is not None:
        text += (f"With pruning epochs counted in, the ratio to 95 % is {_f(p2.get('ratio_trial_epochs'))}; in "
                 f"trial seconds {_f(p2.get('ratio_seconds'))}. ")
    return text


def _pruning_floor(settings: dict[str, Any]) -> str:
    """Why the rungs save less with pruning counted in: every trial prunes in full before its first rung."""
    prune = ((settings.get("mf_space") or {}).get("budget") or {}).get("prune_epochs")
    ft = settings.get("finetune_epochs_part2")
    first = (_promote_rungs(settings).get("epochs") or [None])[0]
    if not prune or not ft or not first:
        return ""
    return (f" Every trial runs its whole pruning phase ({prune} epochs here) before the first rung, so one paused "
            f"at fine-tune epoch {first} still costs ({prune} + {first}) / ({prune} + {ft}) = "
            f"{(prune + first) / (prune + ft):.2f} of a full trial's epochs; the ratios with pruning epochs counted "
            "in and in trial seconds carry that cost, the fine-tune one does not.")


def _promote_sentences(promote: dict[str, Any], seeds: list[dict[str, Any]], fraction: Any, margin: str) -> str:
    """The promote arm's part of `_mf_note`, with each seed's ratio (a pooled figure can hide a wide spread)."""
    ran = sum(p["promote"]["trials"] for p in seeds)
    resumed = sum(p["promote"]["resumed"] for p in seeds)
    configurations = sum(p["promote"]["configurations"] for p in seeds)
    per_seed = [p.get("promote_ratio_epochs_to_95_of_none_final") for p in seeds]
    return (f" In promote mode (`rungs.mode: promote`, same rungs, the rule with a fraction of {fraction} and {margin}) a "
            f"trial that the rule stops, or that too few trials judge yet, pauses and goes on when the rule allows: "
            f"within the same compute the arm ran {configurations} configurations in {ran} trials, {resumed} of "
            f"them resuming a paused one, a trial cost {_f(promote.get('ratio_epochs_per_trial'), '.2f')} of the "
            f"no-stop arm's fine-tune epochs on average, reaching 95 % took {_f(promote.get('ratio'))} of the "
            f"no-stop compute (pooled; per seed {', '.join(_f(r, '.2f') for r in per_seed)}; "
            f"{_f(promote.get('ratio_trial_epochs'))} with pruning epochs counted in, "
            f"{_f(promote.get('ratio_seconds'))} in trial seconds), and it "
            f"ended with {_f(promote.get('ratio_final_hv'))}x the no-stop arm's final hypervolume (mean over seeds).")


def _fidelity(results: Results) -> list[str]:
    rec = results.get("fidelity")
    out = ["## Fidelity: the seeds' claims on Fashion-MNIST", ""]
    if not rec:
        return out + _missing("fidelity", "python bench/fidelity.py")
    r = rec["result"]
    s, summ = r["settings"], r["summary"]
    load = r.get("loadavg")
    out += [f"Command: `{rec['command']}` ({rec['date'][:10]}); suite wall time {r['wall_minutes']:.1f} min "
            f"with {s['jobs']} processes of 1 thread"
            + (f" (1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end)." if load else "."),
            "",
            f"Setting: spiking CNN at width {s['width']}, T = {s['T']}, Fashion-MNIST subset of {s['subset']} "
            f"training images (10 % of them for validation) and 1000 test images, batch {s['batch_size']}; "
            f"dense pre-training {s['pretrain']} epochs, pruning {s['prune']}, fine-tuning {s['finetune']} "
            f"(PQ trains sparse from scratch for {s['pretrain'] + s['prune']} + {s['finetune']}). "
            f"Accuracy is test accuracy in %, mean ± spread ((max - min) / 2) over {s['seeds']} seeds where "
            "seeds are given, one seed (0) otherwise. At this scale a difference below about 1.5 points is "
            "within the noise of 1000 test images.", ""]
    if "dense" in summ:
        out += [f"**Dense accuracy**: {_ms(summ['dense'])} % ({summ['dense']['n']} seeds).", ""]
    if "gmp" in summ:
        g = summ["gmp"]
        out += ["### Criticality regeneration vs plain GMP", "",
                "| sparsity | criticality-unstructured | GMP | difference |", "|---|---|---|---|"]
        for sp in s["sparsities"]:
            c, m = g["table"][f"criticality|{sp}"], g["table"][f"gmp|{sp}"]
            out.append(f"| {_pct(sp)} | {_ms(c)} | {_ms(m)} | {100 * g['delta'][str(sp)]:+.2f} |")
        ahead = [_pct(float(k)) for k, v in g["beats_beyond_spread"].items() if v]
        behind = [_pct(float(k)) for k, d in g["delta"].items() if d < 0]
        detail = (f"criticality ahead by more than the seeds' spread at {', '.join(ahead)}" if ahead else
                  "criticality ahead by more than the seeds' spread at no sparsity")
        if behind:
            detail += f"; behind GMP on average at {', '.join(behind)}"
        out += ["", f"Claim: regeneration beats GMP at the same sparsity, most at 95-98 %. Here: "
                f"**{g['verdict']}** ({detail}).", ""]
    if "regen" in summ:
        g = summ["regen"]
        out += ["### Regeneration by criticality vs gradient vs random (95 %, seed 0)", "",
                "| r | criticality | gradient | random | best |", "|---|---|---|---|---|"]
        for ratio in s["regen_ratios"]:
            cells = [f"{100 * g['table'][f'{how}|{ratio}']['mean']:.2f}"
                     for how in ("criticality", "gradient", "random")]
            out.append(f"| {ratio} | {' | '.join(cells)} | {g['best'][str(ratio)]} |")
        out += ["", f"Claim: regeneration by criticality beats gradient and random for r in 0.1-0.6. Here: "
                f"**{g['verdict']}** (one seed per cell).", ""]
    if "aggregation" in summ:
        g = summ["aggregation"]
        out += ["### Aggregation of criticality over a channel's map (95 %)", "",
                f"max: {_ms(g['table']['max'])}; mean: {_ms(g['table']['mean'])}; max - mean = "
                f"{100 * g['max_minus_mean']:+.2f} points. The paper keeps max.", ""]
    if "sca" in summ:
        out += ["### SCA (structured, channels removed physically)", "",
                "| p (channels pruned) | accuracy | MACs / dense | weight sparsity |", "|---|---|---|---|"]
        for p, v in summ["sca"].items():
            out.append(f"| {p} | {100 * v['accuracy']:.2f} | {_f(v['macs_ratio'])} | {_pct(v['sparsity'])} |")
        out.append("")
    if "pq" in summ:
        out += ["### PQ-index rewiring: neuron-wise vs layer-wise", "",
                "| scope | initial sparsity | final connectivity | accuracy | MACs / dense |", "|---|---|---|---|---|"]
        for v in summ["pq"]:
            out.append(f"| {v['scope']} | {_pct(v['initial_sparsity'])} | {_pct(v['connectivity'])} | "
                       f"{100 * v['accuracy']:.2f} | {_f(v['macs_ratio'])} |")
        out += ["", "Reported (ResNet-19, CIFAR-10): 92.1-92.5 % at 27-41 % connectivity; compare the "
                "connectivity each scope reaches and the accuracy it keeps.", ""]
    if "imp" in summ:
        g = summ["imp"]
        c, i = g["criticality"], g["imp"]
        reached = g["imp_epochs_to_equal_val_accuracy"]
        out += ["### Epochs against iterative magnitude pruning (lottery ticket)", "",
                "| method | sparsity | test accuracy | epochs |", "|---|---|---|---|",
                f"| criticality-unstructured | {_pct(c['sparsity'])} | {100 * c['accuracy']:.2f} | {c['epochs']} |",
                f"| IMP, {int(100 * s['imp_rate'])} % per round, rewind to init | {_pct(i['sparsity'])} | "
                f"{100 * i['accuracy']:.2f} | {i['epochs']} ({i['rounds']} rounds) |", "",
                ("IMP reached the criticality run's validation accuracy after "
                 f"{reached} epochs: **{g['epoch_ratio_imp_over_criticality']:.1f}x** the epochs." if reached else
                 "IMP never reached the criticality run's validation accuracy in its final round; the ratio "
                 f"of all its epochs is a lower bound: **≥ {g['epoch_ratio_imp_over_criticality']:.1f}x**."),
                f"Claim: {g['claim']}.", ""]
    return out


def _contradictions(results: Results) -> list[str]:
    rec = results.get("fidelity")
    if not rec:
        return []
    summ = rec["result"]["summary"]
    lines = []
    for key, claim in (("gmp", "regeneration beats GMP at equal sparsity"),
                       ("regen", "criticality is the best regeneration choice")):
        verdict = summ.get(key, {}).get("verdict")
        if verdict and verdict != "agrees":
            lines.append(f"- *{claim}*: {verdict} at this scale.")
    imp = summ.get("imp")
    if imp and imp["epoch_ratio_imp_over_criticality"] < 11:
        lines.append(f"- *11-15x fewer epochs than lottery-ticket pruning*: "
                     f"{imp['epoch_ratio_imp_over_criticality']:.1f}x here"
                     + (" (a lower bound)." if not imp["equal_accuracy_reached"] else "."))
    if not lines:
        return ["## Where the figures contradict the seeds", "", "Nowhere in this run.", ""]
    return ["## Where the figures contradict the seeds", "",
            "Said plainly, as measured; no method was tuned on this benchmark to make it agree.", "", *lines, ""]


def _gpu(results: Results) -> list[str]:
    out = ["## GPU path: CIFAR-10 VGG-16", "",
           "`python bench/cifar.py --data-root DIR` reproduces the seeds' CIFAR-10 VGG-16 unstructured row "
           "(criticality regeneration at 90 % sparsity; reported about 93 %) on a GPU; "
           "`python bench/cifar.py --dataset fashion-mnist --pad 32` is the shortened VGG-16 on Fashion-MNIST "
           "padded to 32x32.", ""]
    rec = results.get("cifar")
    if rec:
        r = rec["result"]
        out += [f"Measured on {r.get('device_name') or r.get('device')}: `{rec['command']}` ({rec['date'][:10]}): "
                f"dense {_pct(r.get('dense_accuracy'))}, pruned {_pct(r.get('pruned_accuracy'))} at "
                f"{_pct(r.get('sparsity'))} sparsity, MACs {_f(r.get('macs_ratio'))} of dense.", ""]
    else:
        out += ["Not run for this page: the machine that wrote it has no GPU, and none was lent to this task.", ""]
    return out


def render(results: Results) -> str:
    """The whole page."""
    dates = sorted(rec["date"] for rec in results.values())
    head = ["# Benchmarks", "",
            "Written by `make bench` (`python bench/run.py`), which runs every script in `bench/` and "
            "rewrites this page from what they printed. Every figure is a ratio or a comparison "
            "measured side by side in one run; absolute times are context only. Each row names the "
            "command that gives it.", "",
            f"- Measured: {dates[0][:16] if dates else 'nothing yet'}"
            + (f" to {dates[-1][:16]}" if len(dates) > 1 else ""),
            f"- Machine: {_machine(results)}", ""]
    return "\n".join(head + _performance(results) + _fidelity(results) + _contradictions(results)
                     + _gpu(results)) + "\n"
