//! The same scenario against SQLite (a real file) and PostgreSQL (the server on this
//! machine): write, read back, update, atomicity, reopen.

use switchboard_store::{
    AgentRow, AuditRow, Batch, ContactRow, MessageRow, NameRow, OwnerRow, PgStore, SqliteStore,
    Store,
};

fn contact(seq: i64, state: &str, snapshot: Option<&str>) -> ContactRow {
    ContactRow {
        seq,
        id: format!("c-{seq}"),
        conversation: format!("chat:s{seq}"),
        customer: "ann".into(),
        channel: "chat".into(),
        queue: "support".into(),
        summary: "hello".into(),
        attributes: r#"{"tier":"gold"}"#.into(),
        state: state.into(),
        agent: Some(7),
        arrived_at: 1_000 + seq,
        snapshot: snapshot.map(str::to_owned),
        ended_at: snapshot.is_none().then_some(9_000),
        end_reason: snapshot.is_none().then(|| "closed".to_owned()),
        updated_at: 2_000,
    }
}

fn message(id: &str, seq: i64) -> MessageRow {
    MessageRow {
        id: id.into(),
        contact_seq: Some(seq),
        outcome: "contact".into(),
        reason: None,
        received_at: 1_000,
        processed_at: 1_001,
    }
}

fn audit(seq: i64, kind: &str) -> AuditRow {
    AuditRow {
        seq: 0,
        at: 1_500,
        contact_seq: Some(seq),
        agent: Some(7),
        kind: kind.into(),
        detail: "{}".into(),
    }
}

fn first_batch() -> Batch {
    Batch {
        names: vec![NameRow {
            kind: "skill".into(),
            name: "billing".into(),
            id: 0,
        }],
        messages: vec![message("m-1", 1), message("m-2", 2)],
        contacts: vec![
            contact(1, "assigned", Some(r#"{"s":1}"#)),
            contact(2, "waiting", Some(r#"{"s":2}"#)),
        ],
        agents: vec![AgentRow {
            id: 7,
            name: "ana".into(),
            snapshot: r#"{"a":7}"#.into(),
            updated_at: 1_000,
        }],
        owners: vec![OwnerRow {
            customer: "bob".into(),
            agent: 7,
            closed_at: 500,
        }],
        audit: vec![audit(1, "offered"), audit(1, "assigned")],
        meta: vec![("next_offer".into(), "3".into())],
        agent_settings: vec![("ana".into(), r#"{"token_sha256":"ab"}"#.into())],
    }
}

async fn scenario(store: &dyn Store) {
    let empty = store.load().await.unwrap();
    assert!(empty.contacts.is_empty() && empty.agents.is_empty());
    assert_eq!(empty.max_seq, 0);

    store.commit(&first_batch()).await.unwrap();
    let state = store.load().await.unwrap();
    assert_eq!(state.contacts.len(), 2);
    assert_eq!(
        state.contacts[0],
        contact(1, "assigned", Some(r#"{"s":1}"#))
    );
    assert_eq!(state.agents[0].name, "ana");
    assert_eq!(state.names[0].name, "billing");
    assert_eq!(state.owners[0].customer, "bob");
    assert_eq!(state.meta("next_offer"), Some("3"));
    assert_eq!(state.agent_settings, first_batch().agent_settings);
    assert_eq!(state.max_seq, 2);
    let mut seen = store
        .seen(&["m-1".into(), "m-9".into(), "m-2".into()])
        .await
        .unwrap();
    seen.sort();
    assert_eq!(seen, vec!["m-1".to_owned(), "m-2".to_owned()]);
    assert_eq!(
        store.contact_of_message("m-2").await.unwrap().as_deref(),
        Some("c-2")
    );
    assert_eq!(store.message("m-2").await.unwrap(), Some(message("m-2", 2)));
    assert_eq!(store.message("m-404").await.unwrap(), None);
    let trail = store.audit(1).await.unwrap();
    assert_eq!(
        trail.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(),
        ["offered", "assigned"]
    );
    assert!(trail[0].seq < trail[1].seq);

    // Closing keeps the row with its terminal state and takes it out of the open set.
    let close = Batch {
        contacts: vec![contact(1, "closed", None)],
        audit: vec![audit(1, "closed")],
        ..Batch::default()
    };
    store.commit(&close).await.unwrap();
    let state = store.load().await.unwrap();
    assert_eq!(state.contacts.len(), 1);
    assert_eq!(state.max_seq, 2, "ended contacts still count for numbering");
    let closed = store.contact("c-1").await.unwrap().unwrap();
    assert_eq!(closed.state, "closed");
    assert_eq!(closed.end_reason.as_deref(), Some("closed"));
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.contacts_in("closed"), 1);
    assert_eq!(counts.contacts_in("waiting"), 1);
    assert_eq!(counts.messages_with("contact"), 2);

    // A batch that fails half-way writes nothing: m-1 is already there.
    let bad = Batch {
        contacts: vec![contact(3, "waiting", Some("{}"))],
        messages: vec![message("m-3", 3), message("m-1", 3)],
        ..Batch::default()
    };
    assert!(store.commit(&bad).await.is_err());
    assert!(store.contact("c-3").await.unwrap().is_none());
    assert!(store.seen(&["m-3".into()]).await.unwrap().is_empty());
    store.health().await.unwrap();
    assert_eq!(store.audit_since(0, 10).await.unwrap().len(), 3);

    // IMAP checkpoints: forward only within a uidvalidity, replaced by a new one.
    assert_eq!(store.mailbox_checkpoint("support").await.unwrap(), None);
    store.record_mailbox_uid("support", 7, 1).await.unwrap();
    store.record_mailbox_uid("support", 7, 42).await.unwrap();
    store.record_mailbox_uid("support", 7, 40).await.unwrap();
    assert_eq!(
        store.mailbox_checkpoint("support").await.unwrap(),
        Some((7, 42))
    );
    store
        .record_mailbox_uid("support", u32::MAX, 3)
        .await
        .unwrap();
    assert_eq!(
        store.mailbox_checkpoint("support").await.unwrap(),
        Some((u32::MAX, 3))
    );
    store
        .record_mailbox_uid("sales", 1, u32::MAX)
        .await
        .unwrap();
    assert_eq!(
        store.mailbox_checkpoint("sales").await.unwrap(),
        Some((1, u32::MAX))
    );
    assert_eq!(
        store.mailbox_checkpoint("support").await.unwrap(),
        Some((u32::MAX, 3))
    );

    // Acknowledgements: at most `max` per mailbox, recipient and day.
    let take = |who: &'static str, day: i64, max: u32| {
        store.take_acknowledgement("support", who, day, max)
    };
    assert!(take("a@example.com", 20_000, 2).await.unwrap());
    assert!(take("a@example.com", 20_000, 2).await.unwrap());
    assert!(
        !take("a@example.com", 20_000, 2).await.unwrap(),
        "the third is refused"
    );
    assert!(
        take("b@example.com", 20_000, 2).await.unwrap(),
        "per recipient"
    );
    assert!(take("a@example.com", 20_001, 2).await.unwrap(), "a new day");
    assert!(
        !take("c@example.com", 20_001, 0).await.unwrap(),
        "a limit of 0 allows none"
    );
    assert!(
        store
            .take_acknowledgement("sales", "a@example.com", 20_001, 1)
            .await
            .unwrap(),
        "per mailbox"
    );
}

#[tokio::test]
async fn sqlite_keeps_state_across_reopening() {
    let dir = std::env::temp_dir().join(format!("switchboard-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.db");
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::open(&path).await.unwrap();
    scenario(&store).await;
    store.close().await;
    let reopened = SqliteStore::open(&path).await.unwrap();
    let state = reopened.load().await.unwrap();
    assert_eq!(state.contacts.len(), 1);
    assert_eq!(state.contacts[0].id, "c-2");
    assert_eq!(
        reopened.mailbox_checkpoint("support").await.unwrap(),
        Some((u32::MAX, 3))
    );
    reopened.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// PostgreSQL at `SWITCHBOARD_TEST_PG_URL` (default: the local server's `test` database).
/// Without it the test says so loudly; under `CI=true` that is a failure.
async fn postgres(schema: &str) -> Option<PgStore> {
    let url = std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://switchboard:switchboard@127.0.0.1:5432/test".into());
    match PgStore::connect(&url, Some(schema)).await {
        Ok(store) => Some(store),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PostgreSQL is required in CI and is not usable: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: PostgreSQL not usable at {url}: {e} (run scripts/setup-services)");
            None
        }
    }
}

#[tokio::test]
async fn postgres_keeps_the_same_promises() {
    let schema = format!("store_test_{}", std::process::id());
    let Some(store) = postgres(&schema).await else {
        return;
    };
    scenario(&store).await;
    store.close().await;
    let url = std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://switchboard:switchboard@127.0.0.1:5432/test".into());
    let reopened = PgStore::connect(&url, Some(&schema)).await.unwrap();
    assert_eq!(reopened.load().await.unwrap().contacts.len(), 1);
    reopened.close().await;
    drop_schema(&url, &schema).await;
}

async fn drop_schema(url: &str, schema: &str) {
    use sqlx::Executor;
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    pool.execute(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .await
    .unwrap();
    pool.close().await;
}

/// One leader per schema: a second store waits for the lock; once it takes over, the
/// first one's commits are refused (fenced) even though it still runs.
#[tokio::test]
async fn postgres_fences_a_router_that_lost_the_lead() {
    let schema = format!("lead_test_{}", std::process::id());
    let Some(a) = postgres(&schema).await else {
        return;
    };
    let url = std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://switchboard:switchboard@127.0.0.1:5432/test".into());
    let b = PgStore::connect(&url, Some(&schema)).await.unwrap();
    assert_eq!(a.lead().await.unwrap(), 1);
    let waiting = tokio::spawn(async move {
        let epoch = b.lead().await.unwrap();
        (b, epoch)
    });
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert!(
        !waiting.is_finished(),
        "the standby must wait while the leader holds the lock"
    );
    a.commit(&first_batch()).await.unwrap();

    // The leader's lock session dies (as when its host is cut off); the standby takes over.
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity s \
         USING (pid) WHERE l.locktype = 'advisory' AND l.granted \
         AND s.datname = current_database() AND s.pid <> pg_backend_pid()",
    )
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
    let (b, epoch) = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("the standby took over")
        .unwrap();
    assert_eq!(epoch, 2);
    let late = Batch {
        meta: vec![("next_offer".into(), "99".into())],
        ..Batch::default()
    };
    match a.commit(&late).await {
        Err(switchboard_store::StoreError::Fenced {
            mine: 1,
            current: 2,
        }) => {}
        other => panic!("the old leader could write: {other:?}"),
    }
    b.commit(&late).await.unwrap();
    assert_eq!(b.load().await.unwrap().meta("next_offer"), Some("99"));
    a.close().await;
    b.close().await;
    drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn sqlite_leads_at_once() {
    let dir = std::env::temp_dir().join(format!("switchboard-lead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join("state.db")).await.unwrap();
    assert_eq!(store.lead().await.unwrap(), 1);
    assert_eq!(store.lead().await.unwrap(), 2);
    store.commit(&first_batch()).await.unwrap();
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
