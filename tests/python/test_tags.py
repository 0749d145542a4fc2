"""Queue tags: TagQueue, UntagQueue, ListQueueTags and CreateQueue's `tags` (CreateQueue (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html)), over
both protocols."""

from __future__ import annotations

from holdfast_testlib import NON_EXISTENT_QUEUE, expect_error, unique_name


def tags_of(sqs, url):
    return sqs.list_queue_tags(QueueUrl=url).get("Tags", {})


def test_new_queue_has_no_tags(sqs, queue_url):
    assert tags_of(sqs, queue_url) == {}


def test_tag_list_untag(sqs, queue_url):
    sqs.tag_queue(QueueUrl=queue_url, Tags={"env": "dev", "team": "core", "empty": ""})
    assert tags_of(sqs, queue_url) == {"env": "dev", "team": "core", "empty": ""}

    # Tagging again adds keys and overwrites existing ones.
    sqs.tag_queue(QueueUrl=queue_url, Tags={"env": "prod", "owner": "me@example.com"})
    assert tags_of(sqs, queue_url) == {"env": "prod", "team": "core", "empty": "", "owner": "me@example.com"}

    sqs.untag_queue(QueueUrl=queue_url, TagKeys=["team", "empty"])
    assert tags_of(sqs, queue_url) == {"env": "prod", "owner": "me@example.com"}

    # Removing a key that is not there is not an error.
    sqs.untag_queue(QueueUrl=queue_url, TagKeys=["never-set"])
    assert tags_of(sqs, queue_url) == {"env": "prod", "owner": "me@example.com"}

    sqs.untag_queue(QueueUrl=queue_url, TagKeys=["env", "owner"])
    assert tags_of(sqs, queue_url) == {}


def test_tag_values_keep_unicode_and_punctuation(sqs, queue_url):
    tags = {"Name": "my queue é", "path": "a/b:c=d+e-f@g_h.i", "Cost Center": "42"}
    sqs.tag_queue(QueueUrl=queue_url, Tags=tags)
    assert tags_of(sqs, queue_url) == tags


def test_tags_at_create_queue(sqs):
    name = unique_name("tagged")
    url = sqs.create_queue(QueueName=name, tags={"env": "dev", "app": "holdfast"})["QueueUrl"]
    assert tags_of(sqs, url) == {"env": "dev", "app": "holdfast"}
    sqs.tag_queue(QueueUrl=url, Tags={"extra": "1"})
    assert tags_of(sqs, url) == {"env": "dev", "app": "holdfast", "extra": "1"}


def test_tags_are_per_queue(sqs):
    first = sqs.create_queue(QueueName=unique_name("tag1"))["QueueUrl"]
    second = sqs.create_queue(QueueName=unique_name("tag2"))["QueueUrl"]
    sqs.tag_queue(QueueUrl=first, Tags={"k": "first"})
    assert tags_of(sqs, second) == {}
    sqs.tag_queue(QueueUrl=second, Tags={"k": "second"})
    assert tags_of(sqs, first) == {"k": "first"}


def test_tags_of_missing_queue(sqs, server):
    missing = server.queue_url(unique_name("missing"))
    expect_error(NON_EXISTENT_QUEUE, sqs.tag_queue, QueueUrl=missing, Tags={"k": "v"}, exception="QueueDoesNotExist")
    expect_error(NON_EXISTENT_QUEUE, sqs.untag_queue, QueueUrl=missing, TagKeys=["k"])
    expect_error(NON_EXISTENT_QUEUE, sqs.list_queue_tags, QueueUrl=missing)
