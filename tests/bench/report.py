"""The bench's results as one JSON-ready dict, and the table printed from that same dict."""

from __future__ import annotations

from typing import Any

from tests.bench.phases import CommitCheck, PhaseResult, RunOptions

RATIO_TARGET = 0.5
BATCH_EVENTS_TARGET = 50_000
HOT_GENERATOR_PERCENT = 85.0  # above this the generator may have set the figure
SATURATED_PERCENT = 85.0  # a floor below this was held back by something else


def summary(
    options: RunOptions,
    floor: dict[int, PhaseResult],
    leadbot: dict[int, PhaseResult],
    checks: list[CommitCheck],
    context: dict[str, Any],
) -> dict[str, Any]:
    """Everything measured, as JSON-ready data; `context` says on what (code, machine)."""
    single_ratio = leadbot[1].rps / floor[1].rps if floor[1].rps else 0.0
    result: dict[str, Any] = {
        **context,
        "generator": "wrk" if options.use_wrk else "python-aiohttp",
        "generator_threads": options.threads,
        "connections": options.connections,
        "duration_s": options.duration,
        "warmup_s": options.warmup,
        "single": {
            "floor": floor[1].to_json(),
            "leadbot": leadbot[1].to_json(),
            "ratio": round(single_ratio, 3),
            "target_ratio": RATIO_TARGET,
            "meets_target": single_ratio >= RATIO_TARGET,
        },
        "batch": None,
        "committed": {
            "ok": all(c.ok for c in checks),
            "phases": {c.phase: c.to_json() for c in checks},
        },
    }
    if len(floor) > 1:
        batch = max(floor)
        events = leadbot[batch].events_per_second
        result["batch"] = {
            "events_per_request": batch,
            "floor": floor[batch].to_json(),
            "leadbot": leadbot[batch].to_json(),
            "target_events_per_second": BATCH_EVENTS_TARGET,
            "meets_target": events >= BATCH_EVENTS_TARGET,
        }
    result["committed_lines"] = [c.describe() for c in checks]
    return result


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _lat(phase: dict[str, Any]) -> str:
    m = phase["measured"]
    return f"{m['p50_ms']:.1f} / {m['p99_ms']:.1f}"


def _mb(phase: dict[str, Any]) -> str:
    return f"{phase.get('peak_rss_mb', 0.0):,.0f}"


def _cpu(phase: dict[str, Any]) -> str:
    gen = 100.0 * phase["measured"]["generator_cpu_s"] / phase["measured"]["duration_s"]
    flag = " (!)" if gen > HOT_GENERATOR_PERCENT else ""
    return f"{phase['server_cpu_percent']:.0f} / {gen:.0f}{flag}"


def _row(label: str, floor: str, leadbot: str, note: str = "") -> str:
    return f"  {label:<30}{floor:>16}{leadbot:>16}   {note}".rstrip()


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "BELOW TARGET"


def render(result: dict[str, Any]) -> str:
    s = result["single"]
    gen = result["generator"]
    if gen == "wrk":
        threads = result["generator_threads"]
        gen += f" ({threads} thread{'s' if threads > 1 else ''})"
    lines = [
        "",
        f"leadbot ingest benchmark — generator {gen}, {result['connections']} connections, "
        f"{result['duration_s']:g} s measured after {result['warmup_s']:g} s warm-up",
        _context_line(result),
        _row("", "floor", "leadbot"),
        _row("single events: req/s", _n(s["floor"]["rps"]), _n(s["leadbot"]["rps"]),
             f"ratio {s['ratio']:.2f} (target ≥ {s['target_ratio']}: "
             f"{_verdict(s['meets_target'])})"),
        _row("  p50 / p99 latency ms", _lat(s["floor"]), _lat(s["leadbot"])),
        _row("  CPU % server / generator", _cpu(s["floor"]), _cpu(s["leadbot"])),
        _row("  peak RSS MB (with the writer)", _mb(s["floor"]), _mb(s["leadbot"])),
    ]  # fmt: skip
    b = result["batch"]
    if b is not None:
        size = b["events_per_request"]
        lines += [
            _row(f"{size}-event batches: batches/s",
                 _n(b["floor"]["rps"]), _n(b["leadbot"]["rps"])),
            _row("  events/s", _n(b["floor"]["events_per_second"]),
                 _n(b["leadbot"]["events_per_second"]),
                 f"(target ≥ {b['target_events_per_second']:,}: {_verdict(b['meets_target'])})"),
            _row("  p50 / p99 latency ms", _lat(b["floor"]), _lat(b["leadbot"])),
            _row("  CPU % server / generator", _cpu(b["floor"]), _cpu(b["leadbot"])),
            _row("  peak RSS MB (with the writer)", _mb(b["floor"]), _mb(b["leadbot"])),
        ]  # fmt: skip
    lines += _warnings(result)
    lines.append("every acknowledged event committed:")
    lines += [f"  {line}" for line in result["committed_lines"]]
    return "\n".join(lines) + "\n"


def _context_line(result: dict[str, Any]) -> str:
    code = result["code"]
    where = f"leadbot {code['commit'] or code['source']}"
    if code["uncommitted"]:
        where += f" + uncommitted changes in {', '.join(code['uncommitted'])}"
    box = result["machine"]
    load = f"{box['cpus']} CPUs, load average {box['load_average_1m']} before the run"
    return f"{where}; {load}"


def _warnings(result: dict[str, Any]) -> list[str]:
    phases = [("single", result["single"])]
    if result["batch"] is not None:
        phases.append(("batch", result["batch"]))
    return [
        f"  note: {note}"
        for kind, block in phases
        for server in ("floor", "leadbot")
        for note in _notes(f"{server} ({kind})", block[server])
    ]


def _notes(name: str, phase: dict[str, Any]) -> list[str]:
    """What makes a figure suspect: errors, resent duplicates, a floor held back, a busy
    generator."""
    m = phase["measured"]
    notes = []
    if m["errors"] or m["status_other"]:
        notes.append(f"{name}: {m['errors']} socket errors, other statuses {m['status_other']}")
    if name.startswith("leadbot") and m["wraps"]:
        notes.append(f"{name}: the pool ran out {m['wraps']}× and was resent "
                     "(duplicates are acknowledged with accepted=0)")  # fmt: skip
    cpu = phase["server_cpu_percent"]
    if name.startswith("floor") and cpu < SATURATED_PERCENT:
        notes.append(f"{name} used {cpu:.0f} % of a core: not saturated, so its rate (and the "
                     "ratio) understate what it can do (box busy? no wrk?)")  # fmt: skip
    if 100.0 * m["generator_cpu_s"] / m["duration_s"] > HOT_GENERATOR_PERCENT:
        notes.append(f"(!) the generator used most of a core against {name}: "
                     "it may have set that figure")  # fmt: skip
    return notes
