//! AmqpBus against the real RabbitMQ (SWITCHBOARD_TEST_AMQP_URL, default the local one).
//! Each test uses its own prefix and deletes its queues and exchanges at the end.

mod support;

use std::collections::BTreeSet;

use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use support::{
    Cleanup, Proxy, amqp_config, amqp_url, close_connections_named, envelope, id_of, rabbitmqctl,
    ready_count,
};
use switchboard_bus::{AmqpBus, AmqpConfig, Bus, BusError, DecodeError, Subscription};

const NONE_WITHIN: Duration = Duration::from_millis(400);

/// Whether `sub` delivers nothing for `NONE_WITHIN`.
async fn stays_empty(sub: &mut dyn Subscription) -> bool {
    tokio::time::timeout(NONE_WITHIN, sub.next_batch(10, Duration::ZERO))
        .await
        .is_err()
}

/// Publishes a raw body to the inbound exchange, bypassing the envelope encoder.
async fn publish_raw(bus: &AmqpBus, body: &[u8]) {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_publish(
            bus.names().inbound.as_str().into(),
            "inbound".into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap();
    connection.close(200, "done".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_exists_with_its_arguments_and_declaring_again_is_idempotent() {
    let Some(config) = amqp_config("topology").await else {
        return;
    };
    let _cleanup = Cleanup::new(&config);
    let first = AmqpBus::connect(config.clone()).await.unwrap();
    first.publish(&envelope("kept")).await.unwrap();
    let second = AmqpBus::connect(config.clone()).await.unwrap();
    second.health().await.unwrap();
    // Declaring again kept the queue (and its message).
    assert_eq!(ready_count(&first.names().inbound).await, 1);

    let listing = rabbitmqctl(&[
        "-q",
        "list_queues",
        "--no-table-headers",
        "name",
        "type",
        "durable",
        "arguments",
    ]);
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("queue {name} not listed in:\n{listing}"))
            .to_owned()
    };
    let inbound = line(&first.names().inbound);
    assert!(inbound.contains("quorum"), "{inbound}");
    assert!(inbound.contains("true"), "durable: {inbound}");
    assert!(inbound.contains("{\"x-delivery-limit\",3}"), "{inbound}");
    assert!(
        inbound.contains(&format!(
            "{{\"x-dead-letter-exchange\",\"{}\"}}",
            first.names().dead
        )),
        "{inbound}"
    );
    assert!(
        inbound.contains("{\"x-single-active-consumer\",true}"),
        "{inbound}"
    );
    assert!(
        inbound.contains("{\"x-dead-letter-strategy\",\"at-least-once\"}"),
        "{inbound}"
    );
    let dead = line(&first.names().dead);
    assert!(dead.contains("quorum"), "{dead}");

    // The exchanges exist, durable, with their kinds.
    let exchanges = rabbitmqctl(&[
        "-q",
        "list_exchanges",
        "--no-table-headers",
        "name",
        "type",
        "durable",
    ]);
    for (name, kind) in [
        (&first.names().inbound, "direct"),
        (&first.names().dead, "fanout"),
        (&first.names().assignments, "topic"),
    ] {
        let fields: Vec<&str> = exchanges
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name.as_str()))
            .unwrap_or_else(|| panic!("exchange {name} not listed in:\n{exchanges}"));
        assert_eq!(fields[1..], [kind, "true"], "exchange {name}");
    }

    // Different arguments for the same queue are refused, with the broker's reason.
    let mut changed = config.clone();
    changed.delivery_limit = 7;
    let err = AmqpBus::connect(changed).await.unwrap_err();
    assert!(matches!(err, BusError::Topology { .. }), "{err}");
    assert!(err.to_string().contains("x-delivery-limit"), "{err}");
    first.close().await;
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_consume_ack_then_nothing_is_left() {
    let Some(config) = amqp_config("ack").await else {
        return;
    };
    let _cleanup = Cleanup::new(&config);
    let bus = AmqpBus::connect(config).await.unwrap();
    let sent = envelope("m-1");
    bus.publish(&sent).await.unwrap();

    let mut sub = bus.subscribe(10).await.unwrap();
    let batch = sub.next_batch(10, Duration::from_millis(50)).await.unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].envelope.as_ref(), Ok(&sent));
    assert!(!batch[0].redelivered);
    sub.ack_through(batch[0].tag).await.unwrap();
    // Acking the same tag again is a no-op, not a channel error.
    sub.ack_through(batch[0].tag).await.unwrap();
    drop(sub);

    let mut again = bus.subscribe(10).await.unwrap();
    assert!(stays_empty(again.as_mut()).await);
    drop(again);
    assert_eq!(ready_count(&bus.names().inbound).await, 0);

    // What a message looks like on the wire: persistent JSON with its id.
    bus.publish(&envelope("m-2")).await.unwrap();
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    // (basic.get is refused on a single-active-consumer quorum queue: consume instead.)
    let mut consumer = channel
        .basic_consume(
            bus.names().inbound.as_str().into(),
            "".into(),
            lapin::options::BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .expect("m-2 is in the queue")
        .unwrap()
        .unwrap();
    let properties = &delivery.properties;
    assert_eq!(*properties.delivery_mode(), Some(2));
    assert_eq!(
        properties.content_type().as_ref().map(|c| c.as_str()),
        Some("application/json")
    );
    assert_eq!(
        properties.message_id().as_ref().map(|c| c.as_str()),
        Some("m-2")
    );
    assert_eq!(delivery.data, envelope("m-2").to_json());
    let _ = connection.close(200, "done".into()).await;
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_acked_with_one_multiple_ack_and_concurrent_publishes_pipeline() {
    let Some(config) = amqp_config("batch").await else {
        return;
    };
    let _cleanup = Cleanup::new(&config);
    let bus = AmqpBus::connect(config).await.unwrap();
    let ids: Vec<String> = (0..50).map(|i| format!("b-{i}")).collect();
    let publishes = ids.iter().map(|id| {
        let bus = bus.clone();
        let e = envelope(id);
        async move { bus.publish(&e).await }
    });
    for result in futures_util::future::join_all(publishes).await {
        result.unwrap();
    }

    let mut sub = bus.subscribe(100).await.unwrap();
    let mut got = Vec::new();
    while got.len() < ids.len() {
        got.extend(
            sub.next_batch(64, Duration::from_millis(200))
                .await
                .unwrap(),
        );
    }
    let seen: BTreeSet<String> = got.iter().map(id_of).collect();
    assert_eq!(seen, ids.iter().cloned().collect());
    let last = got.iter().map(|d| d.tag).max().unwrap();
    sub.ack_through(last).await.unwrap();
    drop(sub);
    // One ack call, and no message came back to the queue when the consumer went away.
    assert_eq!(ready_count(&bus.names().inbound).await, 0);
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_deliveries_come_back_redelivered_after_the_subscription_is_dropped() {
    let Some(config) = amqp_config("redeliver").await else {
        return;
    };
    let _cleanup = Cleanup::new(&config);
    let bus = AmqpBus::connect(config).await.unwrap();
    for id in ["r-1", "r-2", "r-3"] {
        bus.publish(&envelope(id)).await.unwrap();
    }
    let mut first = bus.subscribe(10).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        got.extend(
            first
                .next_batch(10, Duration::from_millis(100))
                .await
                .unwrap(),
        );
    }
    assert!(got.iter().all(|d| !d.redelivered));
    // Acks only the first: the other two return when the subscription goes.
    first.ack_through(got[0].tag).await.unwrap();
    let stale = got[2].tag;
    drop(first);

    let mut second = bus.subscribe(10).await.unwrap();
    let mut again = Vec::new();
    while again.len() < 2 {
        again.extend(
            second
                .next_batch(10, Duration::from_millis(100))
                .await
                .unwrap(),
        );
    }
    let ids: Vec<String> = again.iter().map(id_of).collect();
    assert_eq!(ids, ["r-2", "r-3"]);
    assert!(again.iter().all(|d| d.redelivered));
    // A tag of the old subscription is ignored, not sent (which would close the channel).
    second.ack_through(stale).await.unwrap();
    second.ack_through(again[1].tag).await.unwrap();
    drop(second);
    assert_eq!(ready_count(&bus.names().inbound).await, 0);
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_with_their_reason() {
    let Some(config) = amqp_config("poison").await else {
        return;
    };
    let _cleanup = Cleanup::new(&config);
    let bus = AmqpBus::connect(config).await.unwrap();
    publish_raw(&bus, b"this is not json").await;
    let mut future = envelope("v2");
    future.version = 2;
    publish_raw(&bus, &future.to_json()).await;
    bus.publish(&envelope("good")).await.unwrap();

    let mut sub = bus.subscribe(10).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        got.extend(
            sub.next_batch(10, Duration::from_millis(100))
                .await
                .unwrap(),
        );
    }
    assert!(matches!(got[0].envelope, Err(DecodeError::Json(_))));
    assert_eq!(
        got[1].envelope,
        Err(DecodeError::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    );
    for d in &got[..2] {
        let reason = d.envelope.as_ref().unwrap_err().to_string();
        sub.dead_letter(d, &reason).await.unwrap();
        // Dead-lettering twice does nothing more.
        sub.dead_letter(d, &reason).await.unwrap();
    }
    // The multiple-ack through the last tag skips the two already acked singly.
    sub.ack_through(got[2].tag).await.unwrap();
    drop(sub);
    assert_eq!(ready_count(&bus.names().inbound).await, 0);

    let letters = bus.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    let by_body = |body: &[u8]| letters.iter().find(|l| l.body == body).unwrap().clone();
    let garbage = by_body(b"this is not json");
    assert!(
        garbage.reason.starts_with("envelope: not a JSON object"),
        "{}",
        garbage.reason
    );
    let v2 = by_body(&future.to_json());
    assert_eq!(
        v2.reason,
        "envelope: version 2 is not supported (this build reads version 1)"
    );
    // Reading them is a peek: they are still there.
    assert_eq!(bus.dead_letters(10).await.unwrap().len(), 2);
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_limit_dead_letters_a_message_that_is_never_acked() {
    let Some(mut config) = amqp_config("limit").await else {
        return;
    };
    config.delivery_limit = 1;
    let _cleanup = Cleanup::new(&config);
    let bus = AmqpBus::connect(config).await.unwrap();
    let sent = envelope("never-acked");
    bus.publish(&sent).await.unwrap();

    let mut deliveries = 0;
    loop {
        let mut sub = bus.subscribe(10).await.unwrap();
        match tokio::time::timeout(NONE_WITHIN, sub.next_batch(1, Duration::ZERO)).await {
            Ok(batch) => {
                assert_eq!(id_of(&batch.unwrap()[0]), "never-acked");
                deliveries += 1;
                assert!(deliveries <= 5, "the delivery limit did not apply");
            }
            Err(_) => break,
        }
        // Dropped without ack: the message returns, and the queue counts the return.
    }
    // Returned more than once (the limit) means delivered twice, then dead-lettered.
    assert_eq!(deliveries, 2);
    let letters = bus.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].reason, "broker: delivery_limit");
    assert_eq!(letters[0].body, sent.to_json());
    assert_eq!(letters[0].id.as_deref(), Some("never-acked"));
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_subscriber_is_a_standby_until_the_first_goes_away() {
    let Some(config) = amqp_config("sac").await else {
        return;
    };
    let _cleanup = Cleanup::new(&config);
    let bus = AmqpBus::connect(config).await.unwrap();
    let mut active = bus.subscribe(10).await.unwrap();
    let mut standby = bus.subscribe(10).await.unwrap();
    bus.publish(&envelope("s-1")).await.unwrap();
    bus.publish(&envelope("s-2")).await.unwrap();

    let mut got = Vec::new();
    while got.len() < 2 {
        got.extend(
            active
                .next_batch(10, Duration::from_millis(100))
                .await
                .unwrap(),
        );
    }
    active.ack_through(got[0].tag).await.unwrap();
    assert!(stays_empty(standby.as_mut()).await);

    drop(active);
    let batch = standby
        .next_batch(10, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(id_of(&batch[0]), "s-2");
    assert!(batch[0].redelivered);
    standby.ack_through(batch[0].tag).await.unwrap();
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirmed_publish_is_consumed_across_connections_closed_by_the_broker() {
    let Some(config) = amqp_config("reconnect").await else {
        return;
    };
    let _cleanup = Cleanup::new(&config);
    let name = config.connection_name.clone();
    let bus = AmqpBus::connect(config).await.unwrap();
    let mut sub = bus.subscribe(50).await.unwrap();

    const PUBLISHERS: usize = 8;
    const EACH: usize = 60;
    let confirmed = Arc::new(Mutex::new(BTreeSet::new()));
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let bus = bus.clone();
        let confirmed = confirmed.clone();
        publishers.push(tokio::spawn(async move {
            for i in 0..EACH {
                let id = format!("p{p}-{i}");
                bus.publish(&envelope(&id)).await?;
                confirmed.lock().unwrap().insert(id);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Ok::<(), BusError>(())
        }));
    }

    // Consume while publishing; cut every connection of this test from the broker side once
    // some publishes went through.
    let mut seen = BTreeSet::new();
    let mut deliveries = 0;
    let mut old_tag = None;
    let mut closed = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done = publishers.iter().all(|p| p.is_finished());
        let target = confirmed.lock().unwrap().clone();
        if done && target.is_subset(&seen) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumed {} of {} confirmed",
            seen.len(),
            target.len()
        );
        if closed == 0 && target.len() >= 100 {
            closed = tokio::task::spawn_blocking({
                let name = name.clone();
                move || close_connections_named(&name)
            })
            .await
            .unwrap();
        }
        let Ok(batch) = tokio::time::timeout(
            Duration::from_millis(500),
            sub.next_batch(20, Duration::from_millis(10)),
        )
        .await
        else {
            continue;
        };
        let batch = batch.unwrap();
        deliveries += batch.len();
        seen.extend(batch.iter().map(id_of));
        let last = batch.last().unwrap().tag;
        if closed > 0 && old_tag.is_none() {
            old_tag = Some(last);
        }
        sub.ack_through(last).await.unwrap_or_else(|e| {
            eprintln!("ack failed (the deliveries will come back): {e}");
        });
    }
    for p in publishers {
        p.await
            .unwrap()
            .expect("every publish is eventually confirmed");
    }
    assert_eq!(
        closed, 2,
        "the publisher and the consumer connection were closed"
    );
    let confirmed = confirmed.lock().unwrap().clone();
    assert_eq!(confirmed.len(), PUBLISHERS * EACH);
    assert!(confirmed.is_subset(&seen));
    eprintln!(
        "confirmed {}, consumed {} distinct in {deliveries} deliveries",
        confirmed.len(),
        seen.len()
    );
    // A tag from before the consumer reconnected is ignored, and the channel stays usable.
    if let Some(tag) = old_tag {
        sub.ack_through(tag).await.unwrap();
    }
    bus.publish(&envelope("after")).await.unwrap();
    let mut last = Vec::new();
    while !last.iter().any(|d| id_of(d) == "after") {
        last = sub.next_batch(50, Duration::from_millis(50)).await.unwrap();
        sub.ack_through(last.last().unwrap().tag).await.unwrap();
    }
    drop(sub);
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignment_events_reach_a_queue_bound_to_the_topic_exchange() {
    let Some(config) = amqp_config("events").await else {
        return;
    };
    let mut cleanup = Cleanup::new(&config);
    let bus = AmqpBus::connect(config).await.unwrap();
    let queue = format!("{}.agent-7", bus.names().assignments);
    cleanup.extra_queues.push(queue.clone());

    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            bus.names().assignments.as_str().into(),
            "agent.7.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    bus.publish_event("agent.7.offer", br#"{"contact":1}"#)
        .await
        .unwrap();
    bus.publish_event("agent.8.offer", br#"{"contact":2}"#)
        .await
        .unwrap();
    let got = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the event for agent 7");
    assert_eq!(got.delivery.data, br#"{"contact":1}"#);
    assert_eq!(got.delivery.routing_key.as_str(), "agent.7.offer");
    assert!(
        channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .is_none(),
        "agent 8's event is not routed to agent 7"
    );
    connection.close(200, "done".into()).await.unwrap();
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_nobody_can_take_is_refused_and_a_deleted_topology_is_declared_again() {
    let Some(config) = amqp_config("unroutable").await else {
        return;
    };
    let _cleanup = Cleanup::new(&config);
    let bus = AmqpBus::connect(config).await.unwrap();
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_delete(
            bus.names().inbound.as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    connection.close(200, "done".into()).await.unwrap();
    let err = bus.publish(&envelope("lost?")).await.unwrap_err();
    assert!(matches!(err, BusError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("unroutable"), "{err}");

    // With the exchange gone too, the broker closes the publishing channel; the bus
    // reconnects, declares the topology again and the publish goes through.
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_delete(
            bus.names().inbound.as_str().into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
    bus.publish(&envelope("after-repair")).await.unwrap();
    assert_eq!(ready_count(&bus.names().inbound).await, 1);
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_close() {
    let Some(config) = amqp_config("close").await else {
        return;
    };
    let _cleanup = Cleanup::new(&config);
    let bus = AmqpBus::connect(config).await.unwrap();
    bus.health().await.unwrap();
    bus.close().await;
    assert!(matches!(bus.health().await, Err(BusError::Closed { .. })));
    let err = bus.publish(&envelope("late")).await.unwrap_err();
    assert!(matches!(err, BusError::Closed { .. }), "{err}");
}

#[tokio::test]
async fn an_unreachable_broker_fails_fast_without_showing_the_password() {
    let mut config = AmqpConfig::new("amqp://guest:s3cret@127.0.0.1:1/%2f");
    config.connect_timeout = Duration::from_secs(2);
    let err = AmqpBus::connect(config).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("amqp: connect to 127.0.0.1:1 failed"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_and_consumer_survive_a_broker_restart_and_an_outage_past_the_deadline_errors() {
    let Some(mut config) = amqp_config("restart").await else {
        return;
    };
    let _cleanup = Cleanup::new(&config);
    let proxy = Proxy::start(0).await;
    config.url = proxy.url();
    config.publish_timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_secs(1);
    let bus = AmqpBus::connect(config).await.unwrap();
    let mut sub = bus.subscribe(10).await.unwrap();
    bus.publish(&envelope("before")).await.unwrap();
    let got = sub.next_batch(10, Duration::ZERO).await.unwrap();
    assert_eq!(id_of(&got[0]), "before");
    sub.ack_through(got[0].tag).await.unwrap();

    // The broker goes away: a publish retries until its deadline, then says why.
    let port = proxy.stop().await;
    let started = tokio::time::Instant::now();
    let err = bus.publish(&envelope("during")).await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, BusError::PublishTimeout { .. }), "{err}");
    assert!(
        err.to_string().contains("connect to 127.0.0.1"),
        "the error names the failed reconnect: {err}"
    );
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert!(bus.health().await.is_err());

    // It comes back on the same port while a publish is retrying: the publish goes through,
    // and the consumer reconnects by itself and receives it.
    let publishing = tokio::spawn({
        let bus = bus.clone();
        async move { bus.publish(&envelope("after")).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let proxy = Proxy::start(port).await;
    publishing.await.unwrap().unwrap();
    bus.health().await.unwrap();
    let mut got = Vec::new();
    while !got.iter().any(|d| id_of(d) == "after") {
        let batch =
            tokio::time::timeout(Duration::from_secs(10), sub.next_batch(10, Duration::ZERO))
                .await
                .expect("the consumer reconnects")
                .unwrap();
        sub.ack_through(batch.last().unwrap().tag).await.unwrap();
        got.extend(batch);
    }
    // The ack of "before" may have been cut off with the connection: then it comes back,
    // redelivered. The publish that timed out never reached the broker.
    for d in &got {
        let id = id_of(d);
        assert!(id == "after" || (id == "before" && d.redelivered), "{id}");
    }
    drop(sub);
    bus.close().await;
    proxy.stop().await;
}

#[tokio::test]
async fn a_broker_that_accepts_but_never_answers_times_out() {
    // Accepts TCP connections and holds them without a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut config = AmqpConfig::new(format!("amqp://guest:guest@127.0.0.1:{port}/%2f"));
    config.connect_timeout = Duration::from_millis(500);
    let started = tokio::time::Instant::now();
    let err = AmqpBus::connect(config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        err.to_string(),
        format!("amqp: connect to 127.0.0.1:{port} failed: timed out after 500ms")
    );
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_from_before_a_consumer_reconnect_is_never_sent_on_the_new_channel() {
    let Some(config) = amqp_config("stale").await else {
        return;
    };
    let _cleanup = Cleanup::new(&config);
    let name = config.connection_name.clone();
    let bus = AmqpBus::connect(config).await.unwrap();
    bus.publish(&envelope("t-1")).await.unwrap();
    bus.publish(&envelope("t-2")).await.unwrap();
    let mut sub = bus.subscribe(10).await.unwrap();
    let mut before = Vec::new();
    while before.len() < 2 {
        before.extend(
            sub.next_batch(10, Duration::from_millis(100))
                .await
                .unwrap(),
        );
    }

    let closed = tokio::task::spawn_blocking({
        let name = format!("{name} consumer");
        move || close_connections_named(&name)
    })
    .await
    .unwrap();
    assert_eq!(closed, 1);
    let mut after = Vec::new();
    while after.len() < 2 {
        after.extend(
            sub.next_batch(10, Duration::from_millis(100))
                .await
                .unwrap(),
        );
    }
    assert!(after.iter().all(|d| d.redelivered));
    // Same tag numbers on the new channel, other generation.
    assert_eq!(before[1].tag.value(), after[1].tag.value());
    assert_ne!(before[1].tag.generation(), after[1].tag.generation());

    // Sent on the new channel, the old tag would ack both redeliveries.
    sub.ack_through(before[1].tag).await.unwrap();
    drop(sub);
    assert_eq!(ready_count(&bus.names().inbound).await, 2);
    bus.close().await;
}
