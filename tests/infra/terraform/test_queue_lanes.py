"""The two queue lanes of modules/queues (live: jobs, bulk: jobs-bulk), one for_each definition.

The module is evaluated per lane with tools/lib/harness/tfeval.py, so each test reads what
`terraform plan` would set on each of the four queues (names, redrive, policies), not the shared
expression text. What only apply knows (ARNs, URLs) comes from stand-ins named after the keyed
addresses. The last tests check moved.tf: every address a stack applied before the lanes were
one definition holds moves to the instance that is the same AWS object.
"""

from __future__ import annotations

import json
import sys

import pytest

from tfhcl import REPO, SAMPLE_ARNS, TERRAFORM, Tree, attr

sys.path.insert(0, str(REPO / "tools" / "lib"))

from harness import tfeval  # noqa: E402

QUEUES = TERRAFORM / "modules" / "queues"
NAME = "image-service-test"
ACCOUNT = "123456789012"
VARIABLES = {
    "name": NAME,
    "kms_key_arn": SAMPLE_ARNS["kms_key_arn"],
    "bucket_id": f"{NAME}-media",
    "bucket_arn": SAMPLE_ARNS["bucket_arn"],
}
# lane -> the AWS names of its queue and its DLQ; these never change (the services and the
# dashboards know them).
LANES = {
    "live": (f"{NAME}-jobs", f"{NAME}-jobs-dlq"),
    "bulk": (f"{NAME}-jobs-bulk", f"{NAME}-jobs-bulk-dlq"),
}
KINDS = ("queue", "dlq")  # aws_sqs_queue.queue[lane] and aws_sqs_queue.dlq[lane]


def arn(name: str) -> str:
    return f"arn:aws:sqs:eu-west-1:{ACCOUNT}:{name}"


def url(name: str) -> str:
    return f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/{name}"


def aws_name(kind: str, lane: str) -> str:
    return LANES[lane][KINDS.index(kind)]


STAND_INS: dict[str, object] = {"data.aws_caller_identity.current.account_id": ACCOUNT}
for _lane in LANES:
    for _kind in KINDS:
        _name = aws_name(_kind, _lane)
        STAND_INS[f'aws_sqs_queue.{_kind}["{_lane}"].arn'] = arn(_name)
        STAND_INS[f'aws_sqs_queue.{_kind}["{_lane}"].id'] = url(_name)
        STAND_INS[f'aws_sqs_queue.{_kind}["{_lane}"].url'] = url(_name)
        STAND_INS[f'aws_sqs_queue.{_kind}["{_lane}"].name'] = _name


def queues(**variables) -> tfeval.Module:
    return tfeval.Module(QUEUES, dict(VARIABLES, **variables), "", STAND_INS)


@pytest.fixture(scope="module")
def module() -> tfeval.Module:
    return queues()


def instances(module: tfeval.Module, kind: str, name: str, data: bool = False) -> dict:
    found = module.resource(kind, name, data=data)
    assert isinstance(found, dict), f"{kind}.{name} is not a for_each resource"
    return found


def statements(doc: tfeval.Instance) -> list[tfeval.Instance]:
    return doc.attr("statement") if any(b.kind == "statement" for b in doc.block.blocks) else []


def conditions(statement: tfeval.Instance) -> set[tuple]:
    found = statement.attr("condition") if any(b.kind == "condition" for b in statement.block.blocks) else []
    return {(c.attr("test"), c.attr("variable"), tuple(c.attr("values"))) for c in found}


def principals(statement: tfeval.Instance) -> set[tuple]:
    return {(p.attr("type"), tuple(p.attr("identifiers"))) for p in statement.attr("principals")}


# --- One definition, two lanes ---------------------------------------------------------------


def test_both_lanes_keep_their_aws_names(module):
    for kind in KINDS:
        found = instances(module, "aws_sqs_queue", kind)
        assert set(found) == set(LANES), kind
        for lane, instance in found.items():
            assert instance.attr("name") == aws_name(kind, lane), (kind, lane)


@pytest.mark.parametrize("lane", sorted(LANES))
def test_each_lane_redrives_to_its_own_dlq_after_max_receive_count(lane):
    for count in (5, 7):  # the default, and whatever the caller sets
        queue = instances(queues(max_receive_count=count), "aws_sqs_queue", "queue")[lane]
        redrive = json.loads(tfeval.known(queue.attr("redrive_policy"), queue.ref))
        assert redrive == {"deadLetterTargetArn": arn(aws_name("dlq", lane)), "maxReceiveCount": count}


@pytest.mark.parametrize("lane", sorted(LANES))
def test_each_dlq_admits_only_its_own_lane(module, lane):
    """A DLQ's redrive allow policy names the queues that may dead-letter into it: its lane's."""
    allows = instances(module, "aws_sqs_queue_redrive_allow_policy", "dlq")
    assert set(allows) == set(LANES)
    allow = allows[lane]
    assert allow.attr("queue_url") == url(aws_name("dlq", lane))
    policy = json.loads(tfeval.known(allow.attr("redrive_allow_policy"), allow.ref))
    assert policy == {"redrivePermission": "byQueue", "sourceQueueArns": [arn(aws_name("queue", lane))]}


@pytest.mark.parametrize("lane", sorted(LANES))
def test_each_dlq_keeps_its_retention_precondition(lane):
    """SQS keeps the original enqueue time when it dead-letters a message: a DLQ that retains
    less than the queue drops poison jobs before anyone replays them."""

    def holds(**variables) -> list[bool]:
        dlq = instances(queues(**variables), "aws_sqs_queue", "dlq")[lane]
        return [p.attr("condition") for lc in dlq.attr("lifecycle") for p in lc.attr("precondition")]

    assert holds() == [True]
    assert holds(dlq_message_retention_seconds=345600, message_retention_seconds=345600) == [False]
    assert holds(dlq_message_retention_seconds=1209600, message_retention_seconds=86400) == [True]


def test_both_lanes_have_the_same_settings(module):
    """A replayed job runs as long as a live one: the same visibility timeout, retention, long
    polling and key on both queues, and the same settings on both DLQs."""
    for kind in KINDS:
        live, bulk = (instances(module, "aws_sqs_queue", kind)[lane] for lane in ("live", "bulk"))
        settings = set(live.block.attributes) - {"for_each", "name", "redrive_policy"}
        assert settings, kind
        for setting in settings:
            assert bulk.attr(setting) == live.attr(setting), (kind, setting)
    queue = instances(module, "aws_sqs_queue", "queue")["bulk"]
    assert queue.attr("visibility_timeout_seconds") == 600  # 120 s worst case * 5
    assert queue.attr("receive_wait_time_seconds") == 20


def policy_doc(module: tfeval.Module, kind: str, lane: str) -> tfeval.Instance:
    """The aws_iam_policy_document that aws_sqs_queue_policy.<kind>[lane] renders."""
    policy = instances(module, "aws_sqs_queue_policy", kind)[lane]
    assert policy.attr("queue_url") == url(aws_name(kind, lane)), policy.ref
    rendered = policy.attr("policy")
    assert isinstance(rendered, tfeval.Unknown), rendered
    assert rendered.ref == f'data.aws_iam_policy_document.{kind}["{lane}"].json', rendered.ref
    return instances(module, "aws_iam_policy_document", kind, data=True)[lane]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lane", sorted(LANES))
def test_every_queue_has_a_policy_that_denies_insecure_transport(module, lane, kind):
    doc = policy_doc(module, kind, lane)
    denies = [
        st for st in statements(doc)
        if st.attr("effect") == "Deny" and st.attr("actions") == ["sqs:*"]
        and st.attr("resources") == [arn(aws_name(kind, lane))]
        and principals(st) == {("*", ("*",))}
        and conditions(st) == {("Bool", "aws:SecureTransport", ("false",))}
    ]
    assert denies, f"{doc.ref}: no Deny of insecure transport on its own queue"


def test_only_the_live_queue_admits_s3_events(module):
    """uploads/ notifications feed the live queue; nothing may send to the bulk pair or either
    DLQ but the roles' own grants (no Allow in their queue policies)."""
    for kind in KINDS:
        for lane in LANES:
            doc = policy_doc(module, kind, lane)
            assert [st.attr("effect") for st in statements(doc)] == ["Deny"], doc.ref
            sources = doc.attr("source_policy_documents") if "source_policy_documents" in doc.block.attributes else []
            if (kind, lane) == ("queue", "live"):
                assert [s.ref for s in sources] == ["data.aws_iam_policy_document.s3_events.json"], sources
            else:
                assert sources == [], (doc.ref, sources)
    events = module.resource("aws_iam_policy_document", "s3_events", data=True)
    (allow,) = statements(events)
    assert "effect" not in allow.block.attributes  # Allow, the default
    assert allow.attr("actions") == ["sqs:SendMessage"]
    assert allow.attr("resources") == [arn(aws_name("queue", "live"))]
    assert principals(allow) == {("Service", ("s3.amazonaws.com",))}
    assert conditions(allow) == {
        ("ArnEquals", "aws:SourceArn", (SAMPLE_ARNS["bucket_arn"],)),
        ("StringEquals", "aws:SourceAccount", (ACCOUNT,)),
    }
    (queue,) = module.resource("aws_s3_bucket_notification", "uploads").attr("queue")
    assert queue.attr("queue_arn") == arn(aws_name("queue", "live"))


# Every output keeps its name and its value, so nothing outside the module changes.
OUTPUTS = {
    "queue_url": url(f"{NAME}-jobs"),
    "queue_arn": arn(f"{NAME}-jobs"),
    "queue_name": f"{NAME}-jobs",
    "dlq_url": url(f"{NAME}-jobs-dlq"),
    "dlq_arn": arn(f"{NAME}-jobs-dlq"),
    "dlq_name": f"{NAME}-jobs-dlq",
    "visibility_timeout_seconds": 600,
    "bulk_queue_url": url(f"{NAME}-jobs-bulk"),
    "bulk_queue_arn": arn(f"{NAME}-jobs-bulk"),
    "bulk_queue_name": f"{NAME}-jobs-bulk",
    "bulk_dlq_url": url(f"{NAME}-jobs-bulk-dlq"),
    "bulk_dlq_arn": arn(f"{NAME}-jobs-bulk-dlq"),
    "bulk_dlq_name": f"{NAME}-jobs-bulk-dlq",
}


def test_every_output_keeps_its_name_and_value(module):
    assert set(module.outputs) == set(OUTPUTS)
    for name, value in OUTPUTS.items():
        assert module.output(name) == value, name


# --- moved.tf ----------------------------------------------------------------------------------
# Each address of the module before the lanes were one definition, and the instance that is the
# same AWS object now: the queue or DLQ of that name, or the policy on that queue.
OLD_ADDRESSES = {
    "aws_sqs_queue.jobs": ('aws_sqs_queue.queue["live"]', f"{NAME}-jobs"),
    "aws_sqs_queue.dlq": ('aws_sqs_queue.dlq["live"]', f"{NAME}-jobs-dlq"),
    "aws_sqs_queue.bulk": ('aws_sqs_queue.queue["bulk"]', f"{NAME}-jobs-bulk"),
    "aws_sqs_queue.bulk_dlq": ('aws_sqs_queue.dlq["bulk"]', f"{NAME}-jobs-bulk-dlq"),
    "aws_sqs_queue_redrive_allow_policy.dlq": ('aws_sqs_queue_redrive_allow_policy.dlq["live"]', f"{NAME}-jobs-dlq"),
    "aws_sqs_queue_redrive_allow_policy.bulk_dlq": ('aws_sqs_queue_redrive_allow_policy.dlq["bulk"]', f"{NAME}-jobs-bulk-dlq"),
    "aws_sqs_queue_policy.jobs": ('aws_sqs_queue_policy.queue["live"]', f"{NAME}-jobs"),
    "aws_sqs_queue_policy.dlq": ('aws_sqs_queue_policy.dlq["live"]', f"{NAME}-jobs-dlq"),
    "aws_sqs_queue_policy.bulk": ('aws_sqs_queue_policy.queue["bulk"]', f"{NAME}-jobs-bulk"),
    "aws_sqs_queue_policy.bulk_dlq": ('aws_sqs_queue_policy.dlq["bulk"]', f"{NAME}-jobs-bulk-dlq"),
}


def moves(tree: Tree) -> dict[str, str]:
    """The module's moved blocks, from -> to, as python-hcl2 gives them ("${address}")."""
    found: dict[str, str] = {}
    for tf, parsed in tree.files.items():
        if tree.rel(tf) != "modules/queues":
            continue
        for block in parsed.get("moved", []):
            source, target = (attr(block, key) for key in ("from", "to"))
            assert source.startswith("${") and source.endswith("}"), source
            assert target.startswith("${") and target.endswith("}"), target
            assert source[2:-1] not in found, f"two moved blocks from {source}"
            found[source[2:-1]] = target[2:-1]
    return found


def test_every_old_address_has_a_moved_block_to_its_lane(tree):
    assert moves(tree) == {old: new for old, (new, _) in OLD_ADDRESSES.items()}


@pytest.mark.parametrize("old", sorted(OLD_ADDRESSES))
def test_every_moved_block_targets_an_instance_that_exists(module, old):
    """The target is an instance of a for_each resource of the module, and the same AWS object
    the old address managed; the old address is no longer a resource of its own."""
    new, queue_name = OLD_ADDRESSES[old]
    kind, rest = new.split(".", 1)
    name, key = rest.split("[", 1)
    key = json.loads(key.rstrip("]"))
    instance = instances(module, kind, name).get(key)
    assert instance is not None, f"moved to {new}, which this configuration does not declare"
    assert instance.ref == new
    if kind == "aws_sqs_queue":
        assert instance.attr("name") == queue_name
    else:
        assert instance.attr("queue_url") == url(queue_name)
    old_kind, old_name = old.split(".")
    if (old_kind, old_name) in module.resources:
        # Only as the same resource with for_each added, which Terraform moves (no key -> key).
        assert (old_kind, old_name) == (kind, name), old
        assert "for_each" in module.resources[(old_kind, old_name)].attributes, old
