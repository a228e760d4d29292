#!/usr/bin/env python3
"""Writes docker/prometheus/rules{,-6h,-3d}.test.yml, the `promtool test rules` unit tests of
docker/prometheus/rules.yml, from the burn-rate table below (the SRE workbook's, as
docs/operations.md states it). Run it after changing a window or a factor:

    python3 tools/observability/gen_rules_test.py && promtool test rules docker/prometheus/rules*.test.yml

Each alert gets four cases, so a wrong threshold or a wrong window fails one of them. With r the
alert's threshold (factor x error budget), L its long window and S its short one:

- fires:       errors at 1.05 r over the last L (a higher threshold on either window, or a long
               window longer than L, misses it);
- below:       errors at 0.95 r for 2 L (a lower threshold on both windows fires);
- short-burst: errors at 0.85 r throughout and at 2.05 r over the last S: 0.95 r over L, 1.05 r
               over L/2, 2.05 r over S (a lower threshold on the long window, or a long window of
               L/2 or shorter, fires);
- recovered:   errors at 4 r for L/2, ended S ago, then 0.95 r: about 2 r over L, 0.95 r over S,
               2.5 r over 2 S (a lower threshold on the short window, or a short window of 2 S or
               longer, fires).

Counters start at 1000 so that rate()'s extrapolation is never clamped at zero.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docker" / "prometheus" / "rules.yml"
# promtool evaluates every rule at every evaluation_interval of a file up to its last eval_time, so
# each pair of windows gets a file with its own interval (the 3-day tests at 1m: minutes of CPU).
# Each short window still spans six samples or more.
OUT = {
    60: ROOT / "docker" / "prometheus" / "rules.test.yml",
    300: ROOT / "docker" / "prometheus" / "rules-6h.test.yml",
    1800: ROOT / "docker" / "prometheus" / "rules-3d.test.yml",
}

# alert suffix: (long window s, short window s, burn-rate factor, sample interval s)
WINDOWS = {
    "BurnRateFast": (3600, 300, 14.4, 60),
    "BurnRateSlow": (21600, 1800, 6, 300),
    "BudgetBurn": (259200, 21600, 1, 1800),
}
# alert prefix: (objective, bad series, good series, events per interval)
SLOS = {
    "JobEvents": (0.99, 'image_worker_events_total{within_objective="false"}', 'image_worker_events_total{within_objective="true"}', 100),
    "ApiAvailability": (0.999, 'image_api_http_requests_total{method="GET",route="/v1/images/{id}",status="500"}',
                        'image_api_http_requests_total{method="GET",route="/v1/images/{id}",status="200"}', 1000),
}
START = 1000


def duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def series(steps: list[float]) -> str:
    """Counter samples START, START + steps[0], ... in promtool's `a+bxn` notation."""
    parts, value, i = [f"{START}"], START, 0
    while i < len(steps):
        j = i
        while j < len(steps) and steps[j] == steps[i]:
            j += 1
        first = value + steps[i]
        parts.append(f"{round(first, 6):g}+{round(steps[i], 6):g}x{j - i - 1}")
        value += steps[i] * (j - i)
        i = j
    return " ".join(parts)


def cases(threshold: float, n_long: int, n_short: int, per: float) -> dict[str, tuple[list[float], bool]]:
    """Per-interval error counts over 2 L for each case, and whether the alert must fire."""
    total = 2 * n_long
    base, burst = 0.85 * threshold, 0.85 * threshold + 0.1 * threshold * n_long / n_short
    assert burst <= 1 and 4 * threshold <= 1, "the cases need error ratios of at most 100%"
    return {
        "fires": ([0.0] * n_long + [1.05 * threshold * per] * n_long, True),
        "below": ([0.95 * threshold * per] * total, False),
        "short-burst": ([base * per] * (total - n_short) + [burst * per] * n_short, False),
        "recovered": (
            [0.0] * (total - n_short - n_long // 2)
            + [4 * threshold * per] * (n_long // 2)
            + [0.95 * threshold * per] * n_short,
            False,
        ),
    }


def main() -> None:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests: dict[int, list] = {interval: [] for interval in OUT}
    for prefix, (objective, bad, good, per) in SLOS.items():
        for suffix, (long_s, short_s, factor, interval) in WINDOWS.items():
            name = prefix + suffix
            rule = alerts[name]
            threshold = factor * (1 - objective)
            n_long, n_short = long_s // interval, short_s // interval
            for case, (errors, fires) in cases(threshold, n_long, n_short, per).items():
                expected = [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}] if fires else []
                tests[interval].append(
                    {
                        "name": f"{name} {case}: {duration(long_s)}/{duration(short_s)} at {factor}x",
                        "interval": duration(interval),
                        "input_series": [
                            {"series": bad, "values": series(errors)},
                            {"series": good, "values": series([per - e for e in errors])},
                        ],
                        "alert_rule_test": [
                            {"eval_time": duration(2 * long_s), "alertname": name, "exp_alerts": expected}
                        ],
                    }
                )
    header = (
        "# Generated by tools/observability/gen_rules_test.py from its burn-rate table: edit that,\n"
        "# then run it. `promtool test rules docker/prometheus/rules*.test.yml` (scripts/check-infra).\n"
        "# Four cases per alert (fires, below, short-burst, recovered): see the generator's docstring.\n"
    )
    for interval, path in OUT.items():
        doc = {"rule_files": ["rules.yml"], "evaluation_interval": duration(interval), "tests": tests[interval]}
        path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=200), encoding="utf-8")


if __name__ == "__main__":
    main()
