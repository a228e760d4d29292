"""The SLO burn-rate alarms, the metrics route to CloudWatch and the runbook links, read from
terraform/ and checked against what docs/operations.md and docs/runbooks/ state (issue #24)."""

from __future__ import annotations

import re

import pytest
import yaml

from tfhcl import REPO, attr, blocks

OPERATIONS = REPO / "docs" / "operations.md"
RUNBOOKS = REPO / "docs" / "runbooks"
RULES = REPO / "docker" / "prometheus" / "rules.yml"
UNITS = {"m": 60, "h": 3600, "d": 86400}
ALARM_TYPES = ("aws_cloudwatch_metric_alarm", "aws_cloudwatch_composite_alarm")


def seconds(window: str) -> int:
    return int(window[:-1]) * UNITS[window[-1]]


def docs_burn_rate_table() -> dict[str, dict]:
    """The rows of docs/operations.md's burn-rate table: alert -> long, short, factor, severity."""
    text = OPERATIONS.read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\w+) \| (\d+[mhd]) \| (\d+[mhd]) \| ([\d.]+) \| [^|]+ \| (page|ticket) \|$", text, re.M)
    assert rows, "docs/operations.md has no burn-rate table"
    return {
        name: {"long": seconds(long), "short": seconds(short), "factor": float(factor), "severity": severity}
        for name, long, short, factor, severity in rows
    }


def docs_objectives() -> dict[str, float]:
    text = OPERATIONS.read_text(encoding="utf-8")
    found = dict(re.findall(r"^\| ([12])\. [^|]+ \| ([\d.]+)% of ", text, re.M))
    assert set(found) == {"1", "2"}, found
    return {"job-events": round(float(found["1"]) / 100, 6), "api-availability": round(float(found["2"]) / 100, 6)}


def observability_alarms(tree):
    return [a for t in ALARM_TYPES for a in tree.resources(t, "modules/observability")]


def runbook_pages_named(tree, description: str) -> list[str]:
    """The runbook pages an alarm description links to, with `each.value.slo` expanded."""
    pages = re.findall(r'local\.runbook_url\["([^"]+)"\]', description)
    slos = tree.locals("modules/observability")["slos"]
    return [p.replace("${each.value.slo}", slo) for p in pages for slo in slos] if any("${each" in p for p in pages) else pages


def test_every_alarm_links_to_its_runbook_page_and_the_page_exists(tree):
    local = tree.locals("modules/observability")
    assert local["runbook_url"] == '${{for page in local.runbook_pages : page => "${trimsuffix(var.runbook_base_url, "/")}/${page}.md"}}'
    assert tree.variables("modules/observability")["runbook_base_url"]["default"] == ["docs/runbooks"]
    assert attr(tree.module_calls("modules/stack")["observability"], "runbook_base_url") == "${var.runbook_base_url}"
    alarms = observability_alarms(tree)
    assert len(alarms) >= 9
    linked = set()
    for alarm in alarms:
        description = attr(alarm.body, "alarm_description")
        pages = runbook_pages_named(tree, description)
        assert pages and description.rstrip('}"').endswith("]"), f"{alarm}: the description must end with its runbook link"
        if not attr(alarm.body, "for_each"):
            # A single alarm's page is named like the alarm.
            assert pages == [alarm.name.replace("_", "-")], alarm
        for page in pages:
            assert page in local["runbook_pages"], (alarm, page)
            assert (RUNBOOKS / f"{page}.md").is_file(), f"docs/runbooks/{page}.md is missing"
        linked |= set(pages)
    on_disk = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"}
    assert linked == set(local["runbook_pages"]) == on_disk
    index = (RUNBOOKS / "README.md").read_text(encoding="utf-8")
    for page in on_disk:
        assert f"]({page}.md)" in index, f"docs/runbooks/README.md does not list {page}"


@pytest.mark.parametrize("page", sorted(p.stem for p in RUNBOOKS.glob("*.md") if p.stem != "README"))
def test_each_runbook_says_what_it_means_how_to_confirm_and_what_to_do(page):
    text = (RUNBOOKS / f"{page}.md").read_text(encoding="utf-8")
    assert text.startswith(f"# {page}\n")
    assert "**Means:**" in text and "## Confirm" in text and "## Do" in text
    assert "```sh" in text or "```promql" in text, "confirm with commands"


def test_burn_rate_windows_and_objectives_are_the_ones_the_docs_state(tree):
    local = tree.locals("modules/observability")
    assert {name: {**w, "factor": float(w["factor"])} for name, w in local["burn_rate_windows"].items()} == docs_burn_rate_table()
    assert {slo: s["objective"] for slo, s in local["slos"].items()} == docs_objectives()


def test_each_pair_is_a_composite_of_its_long_and_short_window(tree):
    local = tree.locals("modules/observability")
    # From the text: python-hcl2 renders the expression without its parentheses.
    assert "threshold = local.burn_rate_windows[pair[1]].factor * (1 - local.slos[pair[0]].objective)" in tree.text("modules/observability")
    assert "'period': '${local.burn_rate_windows[pair.window][span]}'" in local["burn_rate_window_alarms"]
    assert "for span in ['long', 'short']" in local["burn_rate_window_alarms"]
    window = tree.resource("aws_cloudwatch_metric_alarm", "burn_rate_window", "modules/observability")
    assert attr(window.body, "for_each") == "${local.burn_rate_window_alarms}"
    assert attr(window.body, "threshold") == "${each.value.threshold}"
    assert attr(window.body, "comparison_operator") == "GreaterThanThreshold"
    assert attr(window.body, "evaluation_periods") == 1
    assert attr(window.body, "treat_missing_data") == "notBreaching"
    periods = [attr(m, "period") for d in blocks(window.body, "dynamic") for q in [d["metric_query"]] for c in blocks(q, "content") for m in blocks(c, "metric")]
    assert len(periods) == 2 and set(periods) == {"${each.value.period}"}, periods
    composite = tree.resource("aws_cloudwatch_composite_alarm", "burn_rate", "modules/observability")
    assert attr(composite.body, "for_each") == "${local.burn_rate_pairs}"
    rule = attr(composite.body, "alarm_rule")
    assert re.fullmatch(
        r'\$\{"ALARM\(\\"\$\{aws_cloudwatch_metric_alarm\.burn_rate_window\["\$\{each\.key\}-long"\]\.alarm_name\}\\"\) AND '
        r'ALARM\(\\"\$\{aws_cloudwatch_metric_alarm\.burn_rate_window\["\$\{each\.key\}-short"\]\.alarm_name\}\\"\)"\}',
        rule,
    ), rule


def test_the_job_events_slo_reads_the_sidecars_metric_and_the_api_slo_the_alb(tree):
    window = tree.resource("aws_cloudwatch_metric_alarm", "burn_rate_window", "modules/observability")
    metrics = {
        (attr(m, "namespace"), attr(m, "metric_name"))
        for d in blocks(window.body, "dynamic")
        for q in [d["metric_query"]]
        for c in blocks(q, "content")
        for m in blocks(c, "metric")
    }
    assert metrics == {("${local.metric_namespace}", "image_worker_events_total"), ("AWS/ApplicationELB", "${metric_query.value.metric}")}
    text = tree.text("modules/observability")
    for alb_metric in ("HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "RequestCount"):
        assert f'metric = "{alb_metric}"' in text, alb_metric
    assert 'bad  = "false"' in text and 'good = "true"' in text
    assert "image_worker_events_total" in docs_metric_names()


def docs_metric_names() -> set[str]:
    """Every metric the metrics tables of docs/operations.md list (first column)."""
    rows = re.findall(r"^\| (`image_[^|]+)\|", OPERATIONS.read_text(encoding="utf-8"), re.M)
    return {name for row in rows for name in re.findall(r"`(image_\w+)", row)}


def test_prometheus_rules_use_the_docs_windows_factors_and_budgets():
    table, objectives = docs_burn_rate_table(), docs_objectives()
    suffix = {"BurnRateFast": "fast", "BurnRateSlow": "slow", "BudgetBurn": "budget"}
    prefix = {"JobEvents": ("job_events_errors", "job-events"), "ApiAvailability": ("api_errors", "api-availability")}
    rules = [r for g in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"] for r in g["rules"]]
    records = {r["record"]: r["expr"] for r in rules if "record" in r}
    alerts = [r for r in rules if "alert" in r]
    assert len(alerts) == len(table) * len(prefix)
    for alert in alerts:
        (pre,) = [p for p in prefix if alert["alert"].startswith(p)]
        row = table[suffix[alert["alert"][len(pre):]]]
        series, slo = prefix[pre]
        found = re.fullmatch(
            rf"slo:{series}:ratio_rate(\w+) > \(([\d.]+) \* ([\d.]+)\) and slo:{series}:ratio_rate(\w+) > \(\2 \* \3\)",
            alert["expr"],
        )
        assert found, alert
        long, factor, budget, short = found.groups()
        assert (seconds(long), seconds(short), float(factor)) == (row["long"], row["short"], row["factor"]), alert["alert"]
        assert float(budget) == pytest.approx(1 - objectives[slo]), alert["alert"]
        assert alert["labels"]["severity"] == row["severity"], alert["alert"]
        assert (RUNBOOKS / alert["annotations"]["runbook_url"].removeprefix("docs/runbooks/")).is_file()
        for window in (long, short):
            expr = records[f"slo:{series}:ratio_rate{window}"]
            assert re.findall(r"\[(\w+)\]", expr) == [window, window], expr


# --- The metrics route: ADOT sidecars -----------------------------------------------------------


@pytest.mark.parametrize("role", ["api", "worker"])
def test_api_and_worker_tasks_run_the_metrics_sidecar(tree, role):
    definitions = attr(tree.resource("aws_ecs_task_definition", role).body, "container_definitions")
    assert f"local.adot_containers.{role}" in definitions and f"local.{role}_container" in definitions
    local = tree.locals("modules/compute/ecs")
    assert local["metrics_targets"] == {"api": "localhost:${local.api_port}", "worker": "localhost:${local.metrics}"}
    # The worker's METRICS_ADDR listens on the port its collector scrapes.
    assert re.search(r"'METRICS_ADDR':\s*'0\.0\.0\.0:\$\{local\.metrics\}'", local["worker_environment"])
    assert re.search(r"'LISTEN_ADDR':\s*'0\.0\.0\.0:\$\{local\.api_port\}'", local["api_environment"])
    sidecar = local["adot_containers"]
    assert "'image': '${var.adot_collector_image}'" in sidecar and "'essential': False" in sidecar
    assert "'readonlyRootFilesystem': True" in sidecar and "AOT_CONFIG_CONTENT" in sidecar


def test_the_collector_image_is_pinned_by_digest(tree):
    variable = tree.variables("modules/compute/ecs")["adot_collector_image"]
    (default,) = variable["default"]
    assert re.fullmatch(r"public\.ecr\.aws/aws-observability/aws-otel-collector:v[\d.]+@sha256:[0-9a-f]{64}", default)
    assert variable.get("validation"), "a digest is required"


def test_the_collector_exports_emf_into_the_alarms_namespace(tree):
    config = tree.locals("modules/compute/ecs")["adot_config"]
    assert "'awsemf': {'namespace': '${var.metrics_namespace}', 'log_group_name': '${var.metrics_log_group.name}'" in config
    assert "'dimension_rollup_option': 'NoDimensionRollup'" in config
    call = tree.module_calls("modules/stack")["compute"]
    assert attr(call, "metrics_namespace") == "${module.observability.metric_namespace}"
    assert attr(call, "metrics_log_group") == "${module.observability.metrics_log_group}"
    assert attr(tree.outputs("modules/observability")["metric_namespace"], "value") == "${local.metric_namespace}"
    declared = set(re.findall(r"\^(image_\w+)\$", str(tree.locals("modules/compute/ecs")["metric_declarations"])))
    assert "image_worker_events_total" in declared
    assert declared <= docs_metric_names(), declared - docs_metric_names()


def test_the_collector_may_only_write_to_the_metrics_log_group(tree):
    doc = tree.data("aws_iam_policy_document", "modules/compute/ecs")
    (metrics,) = [d for d in doc if d.name == "metrics"]
    (statement,) = blocks(metrics.body, "statement")
    assert set(attr(statement, "actions")) == {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}
    assert attr(statement, "resources") == ["${var.metrics_log_group.arn}", "${var.metrics_log_group.arn}:log-stream:*"]
    policy = tree.resource("aws_iam_role_policy", "metrics", "modules/compute/ecs")
    assert attr(policy.body, "for_each") == "${local.metrics_roles}"
    group = tree.resource("aws_cloudwatch_log_group", "metrics", "modules/observability")
    assert attr(group.body, "kms_key_id") == "${var.kms_key_arn}"
