//! `switchboard run`: opens the store and the bus, restores the router, serves the HTTP API,
//! and shuts everything down in order on SIGTERM or SIGINT.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use switchboard_bus::{AmqpBus, AmqpConfig, Bus, InProcessBus, InProcessConfig};
use switchboard_store::{PgStore, SqliteStore, Store};
use tokio::sync::{Mutex, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::api::{AppState, routes};
use crate::config::{BusKind, Loaded, LogFormat, StoreKind};
use crate::router::{RouterTask, start};

/// Sets up logging as the config says (`RUST_LOG` overrides the level).
pub fn init_logging(loaded: &Loaded) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&loaded.config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match loaded.config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// Opens the configured store.
pub async fn open_store(loaded: &Loaded) -> anyhow::Result<Arc<dyn Store>> {
    let cfg = &loaded.config;
    Ok(match cfg.store.kind {
        StoreKind::Sqlite => {
            let path = cfg.data.dir.join("state.db");
            Arc::new(SqliteStore::open(&path).await?)
        }
        StoreKind::Postgres => {
            let schema = (!cfg.store.schema.is_empty()).then_some(cfg.store.schema.as_str());
            Arc::new(PgStore::connect(&cfg.store.url, schema).await?)
        }
    })
}

/// Opens the configured bus.
pub async fn open_bus(loaded: &Loaded) -> anyhow::Result<Arc<dyn Bus>> {
    let cfg = &loaded.config.bus;
    Ok(match cfg.kind {
        BusKind::InProcess => {
            let mut c = InProcessConfig::new(loaded.config.data.dir.join("bus.db"));
            c.delivery_limit = cfg.delivery_limit;
            Arc::new(InProcessBus::open_with(c).await?)
        }
        BusKind::Amqp => {
            let mut c = AmqpConfig::new(cfg.url.clone());
            c.prefix = cfg.prefix.clone();
            c.delivery_limit = cfg.delivery_limit;
            c.publish_timeout = cfg.publish_timeout;
            Arc::new(AmqpBus::connect(c).await?)
        }
    })
}

/// Runs the daemon until a shutdown signal; returns once everything is closed.
pub async fn run(loaded: Loaded) -> anyhow::Result<()> {
    let loaded = Arc::new(loaded);
    let cfg = &loaded.config;
    std::fs::create_dir_all(&cfg.data.dir)
        .with_context(|| format!("data directory {}", cfg.data.dir.display()))?;
    let store = open_store(&loaded).await?;
    let bus = open_bus(&loaded).await?;
    let router = start(&loaded, store.as_ref()).await?;
    let shared = Arc::new(Mutex::new(router));
    let metrics = Arc::new(crate::metrics::Metrics::new(&loaded));
    let shutdown = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let leading = Arc::new(AtomicBool::new(false));
    let webhooks = (!cfg.delivery.webhook_secret.is_empty()).then(|| {
        switchboard_delivery::Webhooks::new(switchboard_delivery::WebhookConfig {
            secret: cfg.delivery.webhook_secret.as_bytes().to_vec(),
            max_attempts: cfg.delivery.webhook_attempts,
            timeout: cfg.delivery.webhook_timeout,
            initial_backoff: cfg.delivery.webhook_backoff,
            max_backoff: std::time::Duration::from_secs(60),
        })
    });
    let events = cfg.delivery.publish_events.then(|| {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
        let bus = bus.clone();
        tokio::spawn(async move {
            while let Some((key, body)) = rx.recv().await {
                if let Err(e) = bus.publish_event(&key, &body).await {
                    tracing::warn!(routing_key = %key, error = %e, "assignment event not published");
                }
            }
        });
        tx
    });
    let hub = Arc::new(crate::hub::Hub::new(webhooks, events));
    if cfg.auth.admin_token.is_empty() {
        tracing::warn!("auth.admin_token is empty: the API is open to anyone who reaches it");
    }
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .with_context(|| format!("listen on {}", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    let state = AppState {
        router: shared.clone(),
        bus: bus.clone(),
        store: store.clone(),
        loaded: loaded.clone(),
        ingest_slots: Arc::new(Semaphore::new(cfg.server.max_concurrent_ingest)),
        ready: ready.clone(),
        leading: leading.clone(),
        metrics: metrics.clone(),
        hub: hub.clone(),
        shutdown: shutdown.clone(),
        senders: Arc::new(crate::email::senders(&loaded.config)?),
    };
    let mail = crate::email::start(&state, shutdown.clone());
    let router_task = tokio::spawn(
        RouterTask {
            shared,
            loaded: loaded.clone(),
            bus: bus.clone(),
            store: store.clone(),
            shutdown: shutdown.clone(),
            leading,
            metrics,
            hub,
        }
        .run(),
    );
    ready.store(true, std::sync::atomic::Ordering::Release);
    let http_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, routes(state))
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await
    });
    // Tests and scripts read this line to find the port.
    println!("switchboard: listening on http://{addr}");
    info!(%addr, bus = ?cfg.bus.kind, store = ?cfg.store.kind, "switchboard started");
    notify_systemd("READY=1");

    wait_for_signal().await;
    info!("shutting down: no new input, finishing the batch in flight");
    ready.store(false, std::sync::atomic::Ordering::Release);
    notify_systemd("STOPPING=1");
    shutdown.cancel();
    let grace = cfg.router.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        if let Ok(Err(e)) = server.await {
            error!(error = %e, "http server stopped with an error");
        }
        let _ = router_task.await;
        for task in mail {
            let _ = task.await;
        }
    })
    .await;
    if drained.is_err() {
        error!(?grace, "shutdown grace period ran out; exiting anyway");
    }
    bus.close().await;
    store.close().await;
    info!("stopped");
    Ok(())
}

/// Tells systemd (a `Type=notify` unit, `deploy/systemd/`) how start-up and shutdown go;
/// does nothing when `NOTIFY_SOCKET` is not set.
fn notify_systemd(state: &str) {
    #[cfg(unix)]
    {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return;
        };
        let sent = std::os::unix::net::UnixDatagram::unbound().and_then(|socket| {
            use std::os::unix::ffi::OsStrExt;
            #[cfg(target_os = "linux")]
            if let Some(name) = path.as_bytes().strip_prefix(b"@") {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                return socket.send_to_addr(state.as_bytes(), &addr);
            }
            socket.send_to(state.as_bytes(), &path)
        });
        if let Err(e) = sent {
            tracing::warn!(error = %e, socket = ?path, state, "could not notify systemd");
        }
    }
    #[cfg(not(unix))]
    let _ = state;
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
