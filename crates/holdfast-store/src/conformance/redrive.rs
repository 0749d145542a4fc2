//! Conformance cases for dead-letter queues (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html>) and message move tasks (StartMessageMoveTask).

use holdfast_core::store::{DeadLetterTarget, MessageMove, MovableMessage, MoveStep, MoveTask, MoveTaskStatus};

use super::fifo::{fifo, fifo_params, send_fifo};
use super::*;

const SOURCE_ARN: &str = "arn:aws:sqs:us-east-1:000000000000:source";

fn target(dlq: &QueueRecord, max_receive_count: u32, reset_sent_at: bool) -> DeadLetterTarget {
    DeadLetterTarget { queue: dlq.id, max_receive_count, source_arn: SOURCE_ARN.to_owned(), reset_sent_at }
}

fn redriven(p: ReceiveParams, target: &DeadLetterTarget) -> ReceiveParams {
    ReceiveParams { dead_letter: Some(target.clone()), ..p }
}

pub async fn dead_letter_on_receive(store: &dyn Store) {
    let source = create(store, "source", T0).await;
    let dlq = create(store, "dlq", T0).await;
    let to_dlq = target(&dlq, 2, false);
    let sent = NewMessage {
        system_attributes: b"trace".to_vec(),
        group_id: Some("g".into()),
        deduplication_id: Some("d".into()),
        ..message("m", T0)
    };
    let original = send(store, &source, vec![sent.clone()]).await[0];
    // maxReceiveCount = 2: receives 1 and 2 deliver (timeout 0: visible again at once)...
    for round in 1..=2 {
        let got = receive(store, &source, redriven(params(10, 0, T0 + round), &to_dlq)).await;
        assert_eq!(ids(&got), ["m"]);
        assert_eq!(got.messages[0].receive_count, round as u32);
        assert_eq!(got.dead_lettered, 0);
    }
    // ...the third attempt moves it instead.
    let got = receive(store, &source, redriven(params(10, VT, T0 + 3), &to_dlq)).await;
    assert!(got.messages.is_empty(), "{:?}", ids(&got));
    assert_eq!(got.dead_lettered, 1);
    assert_eq!(got.next_visible_at, None, "nothing left in the source");
    assert_eq!(queue_counts(store, &source, T0 + 3).await, counts(0, 0, 0));
    assert_eq!(queue_counts(store, &dlq, T0 + 3).await, counts(1, 0, 0), "visible in the DLQ at once");

    let moved = receive(store, &dlq, params(10, VT, T0 + 3)).await.messages.remove(0);
    assert_eq!(moved.message_id, "m");
    assert_eq!(moved.body, sent.body);
    assert_eq!(moved.attributes, sent.attributes);
    assert_eq!(moved.system_attributes, sent.system_attributes);
    assert_eq!(moved.group_id, sent.group_id);
    assert_eq!(moved.deduplication_id, sent.deduplication_id);
    assert_eq!(moved.sender_id, sent.sender_id);
    assert_eq!(moved.sent_at, T0, "a standard DLQ keeps the original enqueue time");
    assert_eq!(moved.receive_count, 3, "the count carries over");
    assert_eq!(moved.first_received_at, Some(T0 + 1));
    assert_eq!(moved.dead_letter_source_arn.as_deref(), Some(SOURCE_ARN));
    assert!(moved.seq > original, "a new seq in the DLQ");
    // A message never dead-lettered has no source ARN.
    send(store, &source, vec![message("fresh", T0 + 4)]).await;
    let fresh = receive(store, &source, params(10, VT, T0 + 4)).await;
    assert_eq!(fresh.messages[0].dead_letter_source_arn, None);

    // Without a dead-letter target of its own, the DLQ just goes on counting.
    let again = receive(store, &dlq, params(10, VT, T0 + 3 + VT)).await;
    assert_eq!(again.messages[0].receive_count, 4);
    assert_eq!(again.messages[0].dead_letter_source_arn.as_deref(), Some(SOURCE_ARN));
}

pub async fn dead_letter_does_not_count_toward_max(store: &dyn Store) {
    let source = create(store, "source", T0).await;
    let dlq = create(store, "dlq", T0).await;
    let to_dlq = target(&dlq, 1, false);
    send(store, &source, vec![message("p1", T0), message("p2", T0), message("p3", T0)]).await;
    assert_eq!(receive(store, &source, params(10, 0, T0 + 1)).await.messages.len(), 3);
    send(store, &source, vec![message("fresh", T0 + 2)]).await;
    // Scanning goes on past the exhausted messages, which do not use up max_messages.
    let got = receive(store, &source, redriven(params(1, VT, T0 + 2), &to_dlq)).await;
    assert_eq!(ids(&got), ["fresh"]);
    assert_eq!(got.dead_lettered, 3);
    assert_eq!(queue_counts(store, &source, T0 + 2).await, counts(0, 1, 0));
    let moved = receive(store, &dlq, params(10, VT, T0 + 2)).await;
    assert_eq!(ids(&moved), ["p1", "p2", "p3"], "moved in the order they were met");
    assert!(moved.messages.windows(2).all(|w| w[0].seq < w[1].seq));
}

pub async fn dead_letter_fifo_resets_sent_at(store: &dyn Store) {
    let source = create(store, "source.fifo", T0).await;
    let dlq = create(store, "dlq.fifo", T0).await;
    let to_dlq = target(&dlq, 1, true);
    send_fifo(store, &source, vec![fifo("a", "g", T0), fifo("b", "g", T0), fifo("c", "h", T0)]).await;
    let got = receive(store, &source, redriven(fifo_params(1, 0, T0 + 1), &to_dlq)).await;
    assert_eq!(ids(&got), ["a"]);
    // a, now exhausted, is the head of g: it moves, and b behind it is delivered in the same call.
    // g became available again (a's zero timeout) after h, so h's c comes first.
    let got = receive(store, &source, redriven(fifo_params(10, VT, T0 + 2), &to_dlq)).await;
    assert_eq!(ids(&got), ["c", "b"]);
    assert_eq!(got.dead_lettered, 1);
    let moved = receive(store, &dlq, fifo_params(10, VT, T0 + 3)).await;
    assert_eq!(ids(&moved), ["a"]);
    let a = &moved.messages[0];
    assert_eq!(a.sent_at, T0 + 2, "a FIFO DLQ restarts the retention clock");
    assert_eq!(a.group_id.as_deref(), Some("g"));
    assert_eq!(a.receive_count, 2);
    assert_eq!(a.dead_letter_source_arn.as_deref(), Some(SOURCE_ARN));
    // b's group goes on in the source; a is gone from it for good.
    assert_eq!(delete(store, &source, got.messages.iter().map(lease).collect()).await.len(), 2);
    assert!(receive(store, &source, fifo_params(10, VT, T0 + 3 + VT)).await.messages.is_empty());
}

pub async fn dead_letter_target_deleted(store: &dyn Store) {
    let source = create(store, "source", T0).await;
    let dlq = create(store, "dlq", T0).await;
    let to_dlq = target(&dlq, 1, false);
    send(store, &source, vec![message("m", T0)]).await;
    receive(store, &source, redriven(params(10, 0, T0 + 1), &to_dlq)).await;
    store.delete_queue(dlq.id, T0 + 2).await.unwrap();
    let got = receive(store, &source, redriven(params(10, VT, T0 + 3), &to_dlq)).await;
    assert_eq!(ids(&got), ["m"], "a missing dead-letter queue is ignored");
    assert_eq!(got.messages[0].receive_count, 2);
    assert_eq!(got.dead_lettered, 0);
    // The sweep finds nowhere to move to either.
    let swept = store.dead_letter_exhausted(source.id, to_dlq.clone(), T0 + 3 + VT, 10).await.unwrap();
    assert_eq!(swept.moved, 0);
    assert_eq!(queue_counts(store, &source, T0 + 3 + VT).await, counts(1, 0, 0));
}

pub async fn dead_letter_exhausted_sweep(store: &dyn Store) {
    let source = create(store, "source", T0).await;
    let dlq = create(store, "dlq", T0).await;
    let to_dlq = target(&dlq, 2, false);
    // a, d and e end up received twice (exhausted), b once; d stays in flight; c is never received.
    send(store, &source, vec![message("a", T0), message("d", T0), message("e", T0), message("b", T0)]).await;
    assert_eq!(ids(&receive(store, &source, params(4, 0, T0 + 1)).await), ["a", "d", "e", "b"]);
    let second = receive(store, &source, params(3, VT, T0 + 2)).await;
    assert_eq!(ids(&second), ["a", "d", "e"]);
    assert_eq!(change(store, &source, &second.messages[0], 0, T0 + 3).await, ChangeVisibilityOutcome::Changed);
    assert_eq!(change(store, &source, &second.messages[2], 0, T0 + 3).await, ChangeVisibilityOutcome::Changed);
    send(store, &source, vec![message("c", T0 + 4)]).await;
    assert_eq!(queue_counts(store, &source, T0 + 5).await, counts(4, 1, 0));

    let swept = store.dead_letter_exhausted(source.id, to_dlq.clone(), T0 + 5, 10).await.unwrap();
    assert_eq!(swept.moved, 2, "a and e: visible and exhausted; d is in flight, b and c are not exhausted");
    assert_eq!(swept.next_due_at, Some(T0 + 2 + VT), "d is due when its visibility timeout runs out");
    assert_eq!(queue_counts(store, &source, T0 + 5).await, counts(2, 1, 0));
    assert_eq!(queue_counts(store, &dlq, T0 + 5).await, counts(2, 0, 0));
    let moved = receive(store, &dlq, params(10, VT, T0 + 5)).await;
    assert_eq!(ids(&moved), ["a", "e"]);
    assert!(moved.messages.iter().all(|m| m.dead_letter_source_arn.as_deref() == Some(SOURCE_ARN)));
    assert!(moved.messages.iter().all(|m| m.receive_count == 3 && m.sent_at == T0));
    assert_eq!(store.dead_letter_exhausted(source.id, to_dlq.clone(), T0 + 5, 10).await.unwrap().moved, 0);

    // The limit caps a sweep; d goes once its timeout runs out.
    assert_eq!(store.dead_letter_exhausted(source.id, to_dlq.clone(), T0 + 2 + VT, 0).await.unwrap().moved, 0);
    assert_eq!(store.dead_letter_exhausted(source.id, to_dlq.clone(), T0 + 2 + VT, 1).await.unwrap().moved, 1);
    assert_eq!(queue_counts(store, &source, T0 + 2 + VT).await, counts(2, 0, 0));
    let left = receive(store, &source, params(10, VT, T0 + 2 + VT)).await;
    assert_eq!(ids(&left), ["b", "c"]);

    // A missing source queue answers None.
    assert_gone(store.dead_letter_exhausted(source.id + 1_000, to_dlq, T0, 10).await);

    // FIFO: x has been received more often than y, but they reach the DLQ in group order.
    let source = create(store, "source.fifo", T0).await;
    let dlq = create(store, "dlq.fifo", T0).await;
    send_fifo(store, &source, vec![fifo("x", "g", T0), fifo("y", "g", T0)]).await;
    for (max, now) in [(2, T0 + 1), (2, T0 + 2), (1, T0 + 3)] {
        receive(store, &source, fifo_params(max, 0, now)).await;
    }
    let swept = store.dead_letter_exhausted(source.id, target(&dlq, 2, true), T0 + 4, 10).await.unwrap();
    assert_eq!(swept.moved, 2);
    let first = receive(store, &dlq, fifo_params(1, VT, T0 + 4)).await;
    assert_eq!(ids(&first), ["x"]);
    assert_eq!(first.messages[0].receive_count, 4);
    assert_eq!(first.messages[0].sent_at, T0 + 4);
}

pub async fn movable_and_move_messages(store: &dyn Store) {
    let source = create(store, "source", T0).await;
    let dlq = create(store, "dlq", T0).await;
    let other = create(store, "other", T0).await;
    // m1..m3 reach the DLQ by dead-lettering, p is sent to it directly.
    send(store, &source, vec![message("m1", T0), message("m2", T0), message("m3", T0)]).await;
    receive(store, &source, params(10, 0, T0 + 1)).await;
    let got = receive(store, &source, redriven(params(10, VT, T0 + 2), &target(&dlq, 1, false))).await;
    assert_eq!(got.dead_lettered, 3);
    let p = send(store, &dlq, vec![message("p", T0 + 3)]).await[0];

    let movable = store.movable_messages(dlq.id, T0 + 3, 10).await.unwrap();
    assert_eq!(movable.len(), 4);
    assert_eq!(movable[3], MovableMessage { seq: p, dead_letter_source_arn: None });
    assert!(movable[..3].iter().all(|m| m.dead_letter_source_arn.as_deref() == Some(SOURCE_ARN)));
    assert!(movable[..3].windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.movable_messages(dlq.id, T0 + 3, 2).await.unwrap(), movable[..2]);
    assert_eq!(queue_counts(store, &dlq, T0 + 3).await, counts(4, 0, 0), "listing leases nothing");
    assert_gone(store.movable_messages(dlq.id + 1_000, T0 + 3, 10).await);

    // m1 goes in flight: no longer movable.
    let m1 = receive(store, &dlq, params(1, VT, T0 + 4)).await.messages.remove(0);
    assert_eq!(m1.message_id, "m1");
    let movable = store.movable_messages(dlq.id, T0 + 4, 10).await.unwrap();
    assert_eq!(movable.len(), 3);
    assert!(movable.iter().all(|m| m.seq != m1.seq));
    assert_eq!(movable[2].seq, p);
    let (m2, m3) = (movable[0].seq, movable[1].seq);

    let moves = vec![
        MessageMove { seq: m1.seq, destination: source.id, reset_sent_at: false },
        MessageMove { seq: m2, destination: source.id, reset_sent_at: false },
        MessageMove { seq: m3, destination: other.id + 1_000, reset_sent_at: false },
        MessageMove { seq: p, destination: other.id, reset_sent_at: true },
    ];
    let now = T0 + 5;
    store.start_move_task(task("t", dlq.id, now)).await.unwrap();
    let step = |moves| async move { store.advance_move_task("t", MoveStep::Moved(moves), now).await.unwrap().unwrap() };
    assert_eq!(step(moves).await.moved, 2, "in flight and missing destination skipped");
    assert_eq!(queue_counts(store, &dlq, now).await, counts(1, 1, 0));
    assert_eq!(queue_counts(store, &source, now).await, counts(1, 0, 0));

    let back = receive(store, &source, params(10, VT, now)).await.messages.remove(0);
    assert_eq!(back.message_id, "m2");
    assert_eq!(back.body, "body of m2");
    assert_eq!(back.attributes, b"m2");
    assert_eq!(back.sent_at, T0, "enqueue time kept");
    assert_eq!(back.receive_count, 1, "the count starts over");
    assert_eq!(back.first_received_at, Some(now));
    assert_eq!(back.dead_letter_source_arn, None);
    assert!(back.seq > p, "a new seq in the destination");
    let p_moved = receive(store, &other, params(10, VT, now)).await.messages.remove(0);
    assert_eq!(p_moved.message_id, "p");
    assert_eq!(p_moved.sent_at, now, "reset_sent_at restarts the retention clock");

    // Moving again finds nothing, and no moves move nothing: the task's count stays.
    let again = vec![MessageMove { seq: m2, destination: source.id, reset_sent_at: false }];
    assert_eq!(step(again).await.moved, 2);
    assert_eq!(step(Vec::new()).await.moved, 2);
    // A task cannot start for a queue that is gone.
    assert_gone(store.start_move_task(task("t2", dlq.id + 1_000, now)).await);
    // The in-flight m1's lease still works where it is.
    assert_eq!(delete(store, &dlq, vec![lease(&m1)]).await, [DeleteOutcome::Deleted]);
}

fn task(handle: &str, source_queue: i64, started_at: Millis) -> MoveTask {
    MoveTask {
        handle: handle.to_owned(),
        source_queue,
        source_arn: format!("arn:aws:sqs:us-east-1:000000000000:q{source_queue}"),
        destination_arn: None,
        max_per_second: None,
        status: MoveTaskStatus::Running,
        moved: 0,
        to_move: 10,
        started_at,
        failure_reason: None,
    }
}

pub async fn move_tasks_saved_and_listed(store: &dyn Store) {
    let a = create(store, "a", T0).await;
    let b = create(store, "b", T0).await;
    assert!(store.move_tasks(None).await.unwrap().is_empty());
    let t1 = task("t1", a.id, T0 + 10);
    let t2 = MoveTask {
        destination_arn: Some("arn:aws:sqs:us-east-1:000000000000:x".into()),
        max_per_second: Some(50),
        ..task("t2", b.id, T0 + 20)
    };
    let t3 = task("t3", a.id, T0 + 20);
    assert!(store.start_move_task(t1.clone()).await.unwrap());
    assert!(store.start_move_task(t2.clone()).await.unwrap());
    assert!(!store.start_move_task(t3.clone()).await.unwrap(), "one active task per source queue");
    assert_eq!(store.move_tasks(Some(a.id)).await.unwrap(), std::slice::from_ref(&t1), "the refused task is not saved");

    // Cancelling answers the task as found and leaves it CANCELLING until the runner's next step.
    assert_eq!(store.cancel_move_task("t1").await.unwrap(), Some(t1.clone()));
    let cancelling = MoveTask { status: MoveTaskStatus::Cancelling, ..t1.clone() };
    assert_eq!(store.move_tasks(Some(a.id)).await.unwrap(), std::slice::from_ref(&cancelling));
    assert!(!store.start_move_task(t3.clone()).await.unwrap(), "a cancelling task is still active");
    let cancelled = store.advance_move_task("t1", MoveStep::Completed, T0 + 21).await.unwrap().unwrap();
    assert_eq!(cancelled, MoveTask { status: MoveTaskStatus::Cancelled, ..t1.clone() }, "the step is dropped");
    assert_eq!(store.cancel_move_task("t1").await.unwrap(), Some(cancelled.clone()), "an ended task stays as it is");
    assert!(store.start_move_task(t3.clone()).await.unwrap());

    let handles = |tasks: Vec<MoveTask>| tasks.into_iter().map(|t| t.handle).collect::<Vec<_>>();
    assert_eq!(handles(store.move_tasks(None).await.unwrap()), ["t3", "t2", "t1"], "newest first, then latest started");
    assert_eq!(handles(store.move_tasks(Some(a.id)).await.unwrap()), ["t3", "t1"]);
    assert_eq!(store.move_tasks(Some(b.id)).await.unwrap(), std::slice::from_ref(&t2));

    // A failing step ends the task with its reason; later steps change nothing.
    let failed = store.advance_move_task("t2", MoveStep::Failed("gone".into()), T0 + 22).await.unwrap().unwrap();
    let expected = MoveTask { status: MoveTaskStatus::Failed, failure_reason: Some("gone".into()), ..t2.clone() };
    assert_eq!(failed, expected);
    assert_eq!(store.advance_move_task("t2", MoveStep::Completed, T0 + 23).await.unwrap(), Some(expected.clone()));
    assert_eq!(store.advance_move_task("nope", MoveStep::Completed, T0).await.unwrap(), None);
    assert_eq!(store.cancel_move_task("nope").await.unwrap(), None);

    // Tasks outlive their source queue.
    store.delete_queue(a.id, T0 + 30).await.unwrap();
    assert_eq!(store.move_tasks(Some(a.id)).await.unwrap(), [t3, cancelled]);
    let completed = store.advance_move_task("t3", MoveStep::Completed, T0 + 31).await.unwrap().unwrap();
    assert_eq!(completed.status, MoveTaskStatus::Completed);
}
