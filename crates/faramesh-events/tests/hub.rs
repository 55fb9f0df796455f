//! Behaviour of the in-process hub: numbering, replay, resume, filters,
//! slow-client eviction and unregistration.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test stops at the first setup step or expectation that fails"
)]

use std::sync::Arc;
use std::time::Duration;

use faramesh_events::{
    EventHub, EventKind, Gap, HubConfig, StreamFilter, StreamMessage, Subscription,
};
use futures::StreamExt;
use serde_json::{json, Value};

/// Upper bound on any single await; only reached if the code under test hangs.
const LIMIT: Duration = Duration::from_secs(10);

fn action(n: u64) -> Value {
    json!({
        "id": format!("act-{n}"),
        "status": "pending_approval",
        "decision": "require_approval",
        "agent_id": "agent-a",
        "tool": "http",
        "operation": "get",
        "reason": null,
        "risk_level": "low",
    })
}

fn publish_n(hub: &EventHub, n: u64) {
    for i in 1..=n {
        hub.publish(EventKind::Updated, action(i));
    }
}

async fn next(sub: &mut Subscription) -> Option<Arc<StreamMessage>> {
    tokio::time::timeout(LIMIT, sub.next())
        .await
        .expect("stream produced nothing within the limit")
}

async fn next_id(sub: &mut Subscription) -> u64 {
    next(sub).await.expect("stream ended unexpectedly").id
}

async fn take_ids(sub: &mut Subscription, n: usize) -> Vec<u64> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(next_id(sub).await);
    }
    ids
}

#[test]
fn kinds_serialise_to_wire_names() {
    assert_eq!(EventKind::Created.as_str(), "action.created");
    assert_eq!(EventKind::Updated.as_str(), "action.updated");
    assert_eq!(
        serde_json::to_value(EventKind::Created).unwrap(),
        json!("action.created")
    );
}

#[test]
fn defaults_match_the_contract() {
    let c = HubConfig::default();
    assert!(
        c.buffer >= 1000,
        "the contract keeps at least the last 1,000"
    );
    assert_eq!(c.replay_on_connect, 10);
    // A group commit's burst (up to 512 actions) fits a queue, and a client dropped for a full
    // queue can still resume from the buffer without a gap.
    assert!(c.client_queue >= 512 && c.client_queue * 2 <= c.buffer);
    assert_eq!(c.ping_interval, Duration::from_secs(15));
}

// A plain #[test] with no runtime: publish must work without an executor,
// i.e. it never awaits.
#[test]
fn ids_increase_from_one_and_messages_are_well_formed() {
    let hub = EventHub::new(HubConfig::default());
    assert_eq!(hub.last_id(), 0);
    let first = hub.publish(EventKind::Created, action(1));
    let second = hub.publish(EventKind::Updated, action(1));
    assert_eq!(first.id, 1);
    assert_eq!(second.id, 2);
    assert_eq!(hub.last_id(), 2);
    assert_eq!(first.kind, "action.created");
    assert_eq!(second.kind, "action.updated");
    assert_eq!(first.data, action(1));

    for m in [&first, &second] {
        assert_eq!(m.timestamp.len(), "2024-01-01T00:00:00.000000Z".len());
        assert!(m.timestamp.ends_with('Z'));
        chrono::NaiveDateTime::parse_from_str(&m.timestamp, "%Y-%m-%dT%H:%M:%S%.6fZ")
            .expect("timestamp format");
    }
    assert!(first.timestamp <= second.timestamp);

    let v = serde_json::to_value(&first).unwrap();
    assert_eq!(v["type"], "action.created");
    assert_eq!(v["id"], 1);
}

#[tokio::test]
async fn replays_last_ten_on_connect_then_goes_live() {
    let hub = EventHub::new(HubConfig::default());
    publish_n(&hub, 15);
    let mut sub = hub.subscribe(None, StreamFilter::default()).unwrap();
    assert_eq!(take_ids(&mut sub, 10).await, (6..=15).collect::<Vec<_>>());
    hub.publish(EventKind::Created, action(16));
    assert_eq!(next_id(&mut sub).await, 16);
}

#[tokio::test]
async fn replay_of_fewer_messages_than_the_window() {
    let hub = EventHub::new(HubConfig::default());
    publish_n(&hub, 3);
    let mut sub = hub.subscribe(None, StreamFilter::default()).unwrap();
    assert_eq!(take_ids(&mut sub, 3).await, vec![1, 2, 3]);
    hub.publish(EventKind::Updated, action(4));
    assert_eq!(next_id(&mut sub).await, 4);
}

#[tokio::test]
async fn resumes_after_last_event_id() {
    let hub = EventHub::new(HubConfig::default());
    publish_n(&hub, 20);
    let mut sub = hub.subscribe(Some(12), StreamFilter::default()).unwrap();
    assert_eq!(take_ids(&mut sub, 8).await, (13..=20).collect::<Vec<_>>());
    hub.publish(EventKind::Updated, action(21));
    assert_eq!(next_id(&mut sub).await, 21);
}

#[tokio::test]
async fn resume_from_an_id_older_than_the_buffer_gets_everything_buffered() {
    let hub = EventHub::new(HubConfig {
        buffer: 1000,
        client_queue: 256,
        ..HubConfig::default()
    });
    publish_n(&hub, 1100);
    let mut sub = hub.subscribe(Some(5), StreamFilter::default()).unwrap();
    // 1,000 replayed messages exceed the 256-slot live queue: replay must not
    // go through (and overflow) that queue.
    assert_eq!(
        take_ids(&mut sub, 1000).await,
        (101..=1100).collect::<Vec<_>>()
    );
    hub.publish(EventKind::Updated, action(1101));
    assert_eq!(next_id(&mut sub).await, 1101);
    assert_eq!(hub.client_count(), 1);
}

#[tokio::test]
async fn resume_from_the_latest_id_replays_nothing() {
    let hub = EventHub::new(HubConfig::default());
    publish_n(&hub, 5);
    let mut sub = hub.subscribe(Some(5), StreamFilter::default()).unwrap();
    hub.publish(EventKind::Updated, action(6));
    assert_eq!(next_id(&mut sub).await, 6);
}

#[tokio::test]
async fn filters_by_status_agent_and_action_including_replay() {
    let hub = EventHub::new(HubConfig::default());
    // 30 messages: statuses alternate, agents cycle through three, and every
    // message concerns one of five actions.
    for i in 1..=30u64 {
        hub.publish(
            EventKind::Updated,
            json!({
                "id": format!("act-{}", i % 5),
                "status": if i % 2 == 0 { "approved" } else { "denied" },
                "agent_id": format!("agent-{}", i % 3),
            }),
        );
    }

    let by_status = StreamFilter {
        status: Some("approved".into()),
        ..Default::default()
    };
    let mut sub = hub.subscribe(None, by_status).unwrap();
    // The last 10 *matching* messages, not the matching part of the last 10.
    assert_eq!(
        take_ids(&mut sub, 10).await,
        vec![12, 14, 16, 18, 20, 22, 24, 26, 28, 30]
    );

    let by_agent = StreamFilter {
        agent_id: Some("agent-0".into()),
        ..Default::default()
    };
    let mut agent_sub = hub.subscribe(Some(20), by_agent).unwrap();
    assert_eq!(take_ids(&mut agent_sub, 4).await, vec![21, 24, 27, 30]);

    let by_action = StreamFilter {
        action_id: Some("act-2".into()),
        ..Default::default()
    };
    let mut action_sub = hub.subscribe(Some(0), by_action).unwrap();
    assert_eq!(
        take_ids(&mut action_sub, 6).await,
        vec![2, 7, 12, 17, 22, 27]
    );

    // Live messages are filtered too: the non-matching one is skipped.
    hub.publish(
        EventKind::Updated,
        json!({"id": "act-9", "status": "denied", "agent_id": "agent-9"}),
    );
    hub.publish(
        EventKind::Updated,
        json!({"id": "act-2", "status": "approved", "agent_id": "agent-0"}),
    );
    assert_eq!(next_id(&mut sub).await, 32);
    assert_eq!(next_id(&mut agent_sub).await, 32);
    assert_eq!(next_id(&mut action_sub).await, 32);
}

#[test]
fn filter_matching_rules() {
    let data = json!({"id": "a1", "agent_id": "ag", "status": "pending", "n": 7});
    assert!(StreamFilter::default().matches(&data));
    let f = StreamFilter {
        action_id: Some("a1".into()),
        agent_id: Some("ag".into()),
        status: Some("pending".into()),
    };
    assert!(f.matches(&data));
    let wrong_status = StreamFilter {
        status: Some("approved".into()),
        ..f.clone()
    };
    assert!(!wrong_status.matches(&data));
    // A missing field, or data that is not an object at all, never matches a
    // set filter (and never panics).
    assert!(!f.matches(&json!({"id": "a1"})));
    assert!(!f.matches(&json!(null)));
    assert!(!f.matches(&json!([1, 2, 3])));
    assert!(StreamFilter::default().matches(&json!("anything")));
    // Numeric ids compare by their JSON spelling.
    let numeric = StreamFilter {
        action_id: Some("42".into()),
        ..Default::default()
    };
    assert!(numeric.matches(&json!({"id": 42})));
}

#[tokio::test]
async fn slow_client_is_disconnected_without_affecting_others() {
    let hub = EventHub::new(HubConfig {
        client_queue: 4,
        ..HubConfig::default()
    });
    let mut slow = hub.subscribe(None, StreamFilter::default()).unwrap();
    let mut reader = hub.subscribe(None, StreamFilter::default()).unwrap();
    assert_eq!(hub.client_count(), 2);

    // The reader consumes each message before the next is published, so it
    // never has more than one queued and its outcome does not depend on
    // scheduling; the slow client never reads at all.
    for i in 1..=100u64 {
        let published = hub.publish(EventKind::Updated, action(i));
        assert_eq!(published.id, i);
        assert_eq!(next_id(&mut reader).await, i);
    }
    // Evicted as soon as its queue overflowed; the reader is still there.
    assert_eq!(hub.client_count(), 1);

    // The evicted client gets what was queued before it overflowed, in
    // order, and then its stream ends.
    let mut drained = Vec::new();
    while let Some(msg) = next(&mut slow).await {
        drained.push(msg.id);
    }
    assert_eq!(drained, vec![1, 2, 3, 4]);

    drop(reader);
    assert_eq!(hub.client_count(), 0);
}

#[tokio::test]
async fn publishing_into_a_full_queue_never_blocks() {
    let hub = EventHub::new(HubConfig {
        client_queue: 4,
        ..HubConfig::default()
    });
    let mut slow = hub.subscribe(None, StreamFilter::default()).unwrap();
    // Run the burst on a blocking thread: if publish could wait on the full
    // queue this would never complete and the bounded await below fails.
    let publisher = hub.clone();
    tokio::time::timeout(
        LIMIT,
        tokio::task::spawn_blocking(move || publish_n(&publisher, 100)),
    )
    .await
    .expect("publish blocked")
    .expect("publisher panicked");
    assert_eq!(hub.last_id(), 100);
    assert_eq!(hub.client_count(), 0);

    let mut count = 0;
    while next(&mut slow).await.is_some() {
        count += 1;
    }
    assert!(count <= 4, "got {count} messages, queue holds 4");
    assert_eq!(hub.client_count(), 0);
}

#[tokio::test]
async fn dropping_a_subscription_unregisters_it() {
    let hub = EventHub::new(HubConfig::default());
    let a = hub.subscribe(None, StreamFilter::default()).unwrap();
    let b = hub.subscribe(Some(3), StreamFilter::default()).unwrap();
    assert_eq!(hub.client_count(), 2);
    drop(a);
    assert_eq!(hub.client_count(), 1);
    drop(b);
    assert_eq!(hub.client_count(), 0);
    // Publishing with nobody listening is fine.
    hub.publish(EventKind::Created, action(1));
}

#[tokio::test]
async fn dropping_the_hub_ends_subscriptions() {
    let hub = EventHub::new(HubConfig::default());
    let mut sub = hub.subscribe(None, StreamFilter::default()).unwrap();
    hub.publish(EventKind::Created, action(1));
    drop(hub);
    assert_eq!(next_id(&mut sub).await, 1);
    assert!(next(&mut sub).await.is_none());
}

#[tokio::test]
async fn degenerate_configs_do_not_panic() {
    let hub = EventHub::new(HubConfig {
        buffer: 0,
        replay_on_connect: 0,
        client_queue: 0,
        ping_interval: Duration::ZERO,
        batch_window: Duration::ZERO,
        buffer_bytes: 0,
        client_queue_bytes: usize::MAX,
        max_subscribers: 1,
        remembered_order: 0,
        start_after: 0,
    });
    publish_n(&hub, 3);
    // Nothing buffered, so nothing replayed, with or without Last-Event-ID.
    let mut sub = hub
        .subscribe(Some(u64::MAX), StreamFilter::default())
        .unwrap();
    // A zero queue is treated as one slot.
    hub.publish(EventKind::Updated, action(4));
    assert_eq!(next_id(&mut sub).await, 4);
    assert_eq!(hub.client_count(), 1);

    let small = EventHub::new(HubConfig {
        buffer: 5,
        replay_on_connect: 100,
        ..HubConfig::default()
    });
    publish_n(&small, 12);
    let mut sub = small.subscribe(None, StreamFilter::default()).unwrap();
    // Replay is limited by what the buffer holds.
    assert_eq!(take_ids(&mut sub, 5).await, (8..=12).collect::<Vec<_>>());
}

#[tokio::test]
async fn concurrent_publishers_yield_strictly_increasing_ids_to_each_client() {
    let hub = EventHub::new(HubConfig {
        client_queue: 1000,
        ..HubConfig::default()
    });
    let mut sub = hub.subscribe(None, StreamFilter::default()).unwrap();
    let mut handles = Vec::new();
    for t in 0..4u64 {
        let hub = hub.clone();
        handles.push(std::thread::spawn(move || {
            for i in 0..100u64 {
                hub.publish(EventKind::Updated, action(t * 1000 + i));
            }
        }));
    }
    for h in handles {
        h.join().expect("publisher thread panicked");
    }
    let ids = take_ids(&mut sub, 400).await;
    assert_eq!(ids, (1..=400).collect::<Vec<_>>());
}

#[tokio::test]
async fn close_ends_every_stream_and_later_ones_after_replay() {
    use futures::StreamExt;
    let hub = EventHub::new(HubConfig::default());
    hub.publish(EventKind::Created, serde_json::json!({"id": "a"}));
    let mut live = hub.subscribe(None, StreamFilter::default()).unwrap();
    assert_eq!(live.next().await.map(|m| m.id), Some(1));
    hub.close();
    assert_eq!(hub.client_count(), 0);
    assert!(live.next().await.is_none(), "an open stream ends");
    let late: Vec<u64> = hub
        .subscribe(None, StreamFilter::default())
        .unwrap()
        .map(|m| m.id)
        .collect()
        .await;
    assert_eq!(late, [1], "a later stream gets its replay, then ends");
}

#[test]
fn ids_continue_after_start_after() {
    let hub = EventHub::new(HubConfig {
        start_after: 41,
        ..HubConfig::default()
    });
    assert_eq!(hub.publish(EventKind::Created, action(1)).id, 42);
    assert_eq!(hub.last_id(), 42);
}

#[tokio::test]
async fn ids_from_the_ledger_resume_by_position_even_out_of_numeric_order() {
    // Replicas sharing a database publish ledger sequence numbers in commit order, which can
    // differ from numeric order: 7 may commit before 5.
    let hub = EventHub::new(HubConfig::default());
    for id in [3, 7, 5, 9] {
        hub.publish_with_id(id, EventKind::Updated, action(id));
    }
    let mut resumed = hub.subscribe(Some(7), StreamFilter::default()).unwrap();
    assert_eq!(
        take_ids(&mut resumed, 2).await,
        [5, 9],
        "everything after 7, in order"
    );
    let mut latest = hub.subscribe(Some(9), StreamFilter::default()).unwrap();
    hub.publish_with_id(8, EventKind::Updated, action(8));
    assert_eq!(next_id(&mut latest).await, 8, "live messages follow");
    assert_eq!(hub.last_id(), 9);
    // An id no longer buffered falls back to numeric order.
    let mut old = hub.subscribe(Some(4), StreamFilter::default()).unwrap();
    assert_eq!(take_ids(&mut old, 4).await, [7, 5, 9, 8]);
}

#[test]
fn each_message_is_rendered_once_as_its_sse_frame() {
    let hub = EventHub::new(HubConfig::default());
    let msg = hub.publish(EventKind::Created, action(1));
    let text = std::str::from_utf8(&msg.frame).unwrap();
    let data = text
        .strip_prefix("id: 1\ndata: ")
        .and_then(|rest| rest.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("not one SSE frame: {text:?}"));
    assert!(!data.contains('\n'), "one data line: {data:?}");
    let wire: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        wire,
        json!({
            "action_id": "act-1",
            "type": "action.created",
            "data": action(1),
            "timestamp": msg.timestamp,
        })
    );
    // Data without a string id has no top-level action_id.
    let other = hub.publish(
        EventKind::Updated,
        json!({"id": 7, "note": "a \"quoted\"\nline"}),
    );
    let text = std::str::from_utf8(&other.frame).unwrap();
    let data = &text["id: 2\ndata: ".len()..text.len() - 2];
    let wire: Value = serde_json::from_str(data).unwrap();
    assert_eq!(wire["data"]["note"], "a \"quoted\"\nline");
    assert!(wire.get("action_id").is_none());
}

#[test]
fn the_batch_window_grows_with_the_subscribers_up_to_its_limit() {
    let hub = EventHub::new(HubConfig::default());
    assert_eq!(hub.batch_window(), Duration::ZERO, "nobody to batch for");
    let few: Vec<Subscription> = (0..10)
        .map(|_| hub.subscribe(None, StreamFilter::default()).unwrap())
        .collect();
    let with_few = hub.batch_window();
    assert!(
        with_few > Duration::ZERO && with_few <= Duration::from_millis(1),
        "{with_few:?}"
    );
    let many: Vec<Subscription> = (0..4_000)
        .map(|_| hub.subscribe(None, StreamFilter::default()).unwrap())
        .collect();
    assert_eq!(
        hub.batch_window(),
        HubConfig::default().batch_window,
        "capped"
    );
    assert!(HubConfig::default().batch_window <= Duration::from_millis(50));
    drop(many);
    assert_eq!(hub.batch_window(), with_few, "follows unsubscribes");
    drop(few);
    assert_eq!(hub.client_count(), 0);
}

fn large_action(n: u64, bytes: usize) -> Value {
    json!({"id": format!("act-{n}"), "agent_id": "x".repeat(bytes), "status": "allowed"})
}

#[tokio::test]
async fn the_buffer_is_bounded_in_bytes_and_a_resume_beyond_it_reports_the_gap() {
    let hub = EventHub::new(HubConfig {
        buffer_bytes: 200_000,
        ..HubConfig::default()
    });
    for n in 1..=100 {
        hub.publish(EventKind::Updated, large_action(n, 10_000));
    }
    assert!(hub.buffered_bytes() <= 200_000, "{}", hub.buffered_bytes());
    assert!(hub.buffered_bytes() > 100_000, "{}", hub.buffered_bytes());
    let mut resumed = hub.subscribe(Some(2), StreamFilter::default()).unwrap();
    let Some(Gap::Ids(missing)) = resumed.gap().cloned() else {
        panic!("message 2 left the buffer: {:?}", resumed.gap());
    };
    assert_eq!(missing.first(), Some(&3));
    // The buffer starts right after the gap and runs to the newest message.
    let after_gap = missing.last().unwrap() + 1;
    assert_eq!(next_id(&mut resumed).await, after_gap);
    // A resume the buffer covers has no gap.
    assert!(hub
        .subscribe(Some(99), StreamFilter::default())
        .unwrap()
        .gap()
        .is_none());
}

#[tokio::test]
async fn a_reader_that_stops_is_disconnected_at_its_byte_bound() {
    let hub = EventHub::new(HubConfig {
        client_queue_bytes: 100_000,
        ..HubConfig::default()
    });
    let mut stuck = hub.subscribe(None, StreamFilter::default()).unwrap();
    let mut reading = hub.subscribe(None, StreamFilter::default()).unwrap();
    for n in 1..=40 {
        hub.publish(EventKind::Updated, large_action(n, 10_000));
        // The other subscriber keeps up and is never disconnected.
        assert_eq!(next_id(&mut reading).await, n);
    }
    let mut queued = 0;
    let mut received = 0;
    while let Some(message) = next(&mut stuck).await {
        queued += message.cost();
        received += 1;
    }
    assert!(received < 40, "the stuck reader was cut off");
    assert!(queued <= 100_000, "{queued} bytes were held for it");
    assert_eq!(hub.client_count(), 1);
}

#[tokio::test]
async fn subscribers_are_capped() {
    let hub = EventHub::new(HubConfig {
        max_subscribers: 2,
        ..HubConfig::default()
    });
    let first = hub.subscribe(None, StreamFilter::default()).unwrap();
    let _second = hub.subscribe(None, StreamFilter::default()).unwrap();
    let refused = hub.subscribe(None, StreamFilter::default()).unwrap_err();
    assert!(refused
        .to_string()
        .contains("maximum number of subscribers (2)"));
    drop(first);
    assert!(hub.subscribe(None, StreamFilter::default()).is_ok());
}
