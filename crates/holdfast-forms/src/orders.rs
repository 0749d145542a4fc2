//! `holdfast orders`: an order service, a payment worker and two downstream consumers (inventory
//! and notification), decoupled by SQS queues: the fan-out example, shipped in the binary so it
//! runs wherever holdfast does. See `examples/orders/README.md`.
//!
//! ```text
//! POST /orders ─▶ order service ─▶ [orders-placed] ─▶ payment worker ─┬─▶ [orders-paid-inventory]    ─▶ inventory
//!                                                                     └─▶ [orders-paid-notification] ─▶ notification
//! ```
//!
//! Each downstream consumer needs every paid order, so each has its own queue and the payment
//! worker sends each paid order to both (fan-out; on AWS, SNS does this for you). One shared
//! `orders-paid` queue would not work: SQS hands each message to exactly one of the consumers
//! polling a queue, so inventory would see some orders and notification the others.
//! `orders demo --shared-queue` shows exactly that.
//!
//! Every consumer runs on holdfast-forms' consumer engine, so each only says how to handle a
//! message; every handler is idempotent, because SQS delivers at least once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::consumer::{self, ConsumerArgs, Delivery, Destination, Fatal, Outcome};
use crate::sqs::{self, QueueArgs};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

const PLACED: &str = "orders-placed";
const PAID_INVENTORY: &str = "orders-paid-inventory";
const PAID_NOTIFICATION: &str = "orders-paid-notification";
const PAID_SHARED: &str = "orders-paid";

/// `holdfast orders …`.
#[derive(Args, Clone, Debug)]
pub struct OrdersArgs {
    #[command(flatten)]
    queue: QueueArgs,
    /// Where the services keep their SQLite databases.
    #[arg(long, default_value = "orders-data", global = true)]
    data_dir: PathBuf,
    /// Prefix for the queue names, so several runs can share one SQS endpoint.
    #[arg(long, default_value = "", global = true)]
    prefix: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Clone, Debug)]
enum Command {
    /// The order service: POST /orders {"customer": "...", "sku": "...", "quantity": N}.
    Service {
        #[arg(long, default_value = "127.0.0.1:8081")]
        bind: SocketAddr,
    },
    /// The payment worker: charges each placed order once, then announces it paid.
    Payment(Consumer),
    /// Reserves stock for each paid order.
    Inventory(Consumer),
    /// Tells the customer their order is paid.
    Notification(Consumer),
    /// Everything in one process: place N orders and wait until both consumers saw each.
    Demo {
        #[arg(long, default_value_t = 20)]
        orders: u64,
        /// Wire the two consumers to one shared queue, to see why that is wrong.
        #[arg(long)]
        shared_queue: bool,
    },
}

#[derive(Args, Clone, Debug)]
struct Consumer {
    #[command(flatten)]
    consumer: ConsumerArgs,
}

/// The message the order service puts on `orders-placed`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OrderPlaced {
    order_id: String,
    customer: String,
    sku: String,
    quantity: u32,
}

/// The message the payment worker sends to each downstream queue.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OrderPaid {
    order_id: String,
    customer: String,
    sku: String,
    quantity: u32,
    payment_id: String,
}

struct Queues {
    client: aws_sdk_sqs::Client,
    placed: String,
    /// Where paid orders go: one queue per downstream consumer (or one shared, to show why not).
    paid: Vec<String>,
    inventory: String,
    notification: String,
}

async fn queues(cli: &OrdersArgs, shared: bool) -> Result<Queues, String> {
    let client = sqs::client(&cli.queue, 3, Duration::from_secs(30)).await;
    let name = |base: &str| format!("{}{base}", cli.prefix);
    let placed = sqs::ensure_queue(&client, &name(PLACED), &cli.queue).await?;
    let (inventory, notification) = if shared {
        let url = sqs::ensure_queue(&client, &name(PAID_SHARED), &cli.queue).await?;
        (url.clone(), url)
    } else {
        (
            sqs::ensure_queue(&client, &name(PAID_INVENTORY), &cli.queue).await?,
            sqs::ensure_queue(&client, &name(PAID_NOTIFICATION), &cli.queue).await?,
        )
    };
    let mut paid = vec![inventory.clone()];
    if notification != inventory {
        paid.push(notification.clone());
    }
    Ok(Queues { client, placed, paid, inventory, notification })
}

async fn database(dir: &std::path::Path, name: &str, schema: &[&str]) -> Result<SqlitePool, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let options = SqliteConnectOptions::new().filename(dir.join(name)).create_if_missing(true);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.map_err(|e| e.to_string())?;
    for statement in schema {
        sqlx::query(statement).execute(&pool).await.map_err(|e| e.to_string())?;
    }
    Ok(pool)
}

/// Charges each order once: the `payments` primary key is the order id, so a redelivered order
/// finds its payment and is announced again (harmless: downstream is idempotent too).
struct Payment {
    db: SqlitePool,
    client: aws_sdk_sqs::Client,
    paid: Vec<String>,
}

impl Destination for Payment {
    fn describe(&self) -> String {
        "payment worker".into()
    }

    async fn prepare(&self) -> Result<Result<(), String>, Fatal> {
        Ok(sqlx::query("SELECT 1").execute(&self.db).await.map(|_| ()).map_err(|e| e.to_string()))
    }

    async fn store(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        for delivery in batch {
            let Ok(order) = serde_json::from_str::<OrderPlaced>(&delivery.body) else {
                outcomes.push(Outcome::Rejected("not an OrderPlaced".into()));
                continue;
            };
            let payment_id = format!("pay-{}", order.order_id);
            let charged = sqlx::query(
                "INSERT INTO payments (order_id, payment_id) VALUES (?, ?) ON CONFLICT (order_id) DO NOTHING",
            )
            .bind(&order.order_id)
            .bind(&payment_id)
            .execute(&self.db)
            .await;
            if let Err(error) = charged {
                outcomes.push(Outcome::Unavailable(error.to_string()));
                continue;
            }
            let paid = OrderPaid {
                order_id: order.order_id,
                customer: order.customer,
                sku: order.sku,
                quantity: order.quantity,
                payment_id,
            };
            let body = serde_json::to_string(&paid).expect("serializes");
            // Announce to every downstream queue; only then is this message done. If one send
            // fails, the order comes back and is announced again to all (they deduplicate).
            let mut sent = Ok(());
            for queue in &self.paid {
                if let Err(error) = self.client.send_message().queue_url(queue).message_body(&body).send().await {
                    sent = Err(sqs::describe(&error));
                    break;
                }
            }
            outcomes.push(match sent {
                Ok(()) => Outcome::Stored,
                Err(reason) => Outcome::Unavailable(reason),
            });
        }
        outcomes
    }
}

/// A downstream consumer: records each paid order once, in the same transaction as its effect.
struct Downstream {
    name: &'static str,
    db: SqlitePool,
    seen: Arc<AtomicU64>,
}

impl Destination for Downstream {
    fn describe(&self) -> String {
        format!("{} consumer", self.name)
    }

    async fn prepare(&self) -> Result<Result<(), String>, Fatal> {
        Ok(sqlx::query("SELECT 1").execute(&self.db).await.map(|_| ()).map_err(|e| e.to_string()))
    }

    async fn store(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        for delivery in batch {
            let Ok(order) = serde_json::from_str::<OrderPaid>(&delivery.body) else {
                outcomes.push(Outcome::Rejected("not an OrderPaid".into()));
                continue;
            };
            outcomes.push(match self.apply(&order).await {
                Ok(true) => {
                    self.seen.fetch_add(1, Ordering::Relaxed);
                    Outcome::Stored
                }
                Ok(false) => Outcome::Duplicate,
                Err(error) => Outcome::Unavailable(error.to_string()),
            });
        }
        outcomes
    }
}

impl Downstream {
    /// The effect and the "done" mark commit together, so a redelivery finds the mark.
    async fn apply(&self, order: &OrderPaid) -> Result<bool, sqlx::Error> {
        let mut transaction = self.db.begin().await?;
        let fresh = sqlx::query("INSERT INTO processed (order_id) VALUES (?) ON CONFLICT (order_id) DO NOTHING")
            .bind(&order.order_id)
            .execute(&mut *transaction)
            .await?
            .rows_affected()
            == 1;
        if fresh {
            match self.name {
                "inventory" => {
                    sqlx::query("INSERT INTO reserved (sku, quantity) VALUES (?, ?) ON CONFLICT (sku) DO UPDATE SET quantity = quantity + excluded.quantity")
                        .bind(&order.sku)
                        .bind(order.quantity)
                        .execute(&mut *transaction)
                        .await?;
                }
                _ => {
                    // Stands in for the email: the outbox row a mailer would send from.
                    sqlx::query("INSERT INTO outbox (order_id, recipient, text) VALUES (?, ?, ?)")
                        .bind(&order.order_id)
                        .bind(&order.customer)
                        .bind(format!("Your order {} is paid ({}).", order.order_id, order.payment_id))
                        .execute(&mut *transaction)
                        .await?;
                }
            }
        }
        transaction.commit().await?;
        Ok(fresh)
    }
}

const PAYMENT_SCHEMA: &[&str] =
    &["CREATE TABLE IF NOT EXISTS payments (order_id TEXT PRIMARY KEY, payment_id TEXT NOT NULL)"];
const INVENTORY_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS processed (order_id TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS reserved (sku TEXT PRIMARY KEY, quantity INTEGER NOT NULL)",
];
const NOTIFICATION_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS processed (order_id TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS outbox (order_id TEXT PRIMARY KEY, recipient TEXT NOT NULL, text TEXT NOT NULL)",
];

async fn place_order(
    client: &aws_sdk_sqs::Client,
    placed: &str,
    customer: &str,
    sku: &str,
    quantity: u32,
) -> Result<String, String> {
    let order = OrderPlaced {
        order_id: uuid::Uuid::new_v4().to_string(),
        customer: customer.into(),
        sku: sku.into(),
        quantity,
    };
    let body = serde_json::to_string(&order).expect("serializes");
    client.send_message().queue_url(placed).message_body(body).send().await.map_err(|e| sqs::describe(&e))?;
    Ok(order.order_id)
}

/// The order service: a minimal HTTP endpoint that only enqueues, so it answers even when
/// payment is down.
async fn service(queues: Queues, bind: SocketAddr) -> Result<(), String> {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| e.to_string())?;
    println!("order service listening on http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let queues = Arc::new(queues);
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let queues = queues.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let queues = queues.clone();
            async move {
                let reply = |status: u16, body: String| {
                    let mut response = hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
                    Ok::<_, std::convert::Infallible>(response)
                };
                if request.method() != hyper::Method::POST || request.uri().path() != "/orders" {
                    return reply(404, "POST /orders\n".into());
                }
                let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let Ok(input) = serde_json::from_slice::<serde_json::Value>(&body) else {
                    return reply(400, "JSON please\n".into());
                };
                let text = |key: &str| input.get(key).and_then(|v| v.as_str()).unwrap_or("").to_string();
                let quantity = input.get("quantity").and_then(|v| v.as_u64()).unwrap_or(1) as u32;
                match place_order(&queues.client, &queues.placed, &text("customer"), &text("sku"), quantity).await {
                    Ok(id) => reply(202, serde_json::json!({"order_id": id}).to_string()),
                    Err(error) => reply(503, format!("order not placed: {error}\n")),
                }
            }
        });
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}

fn demo_consumer_args() -> ConsumerArgs {
    ConsumerArgs {
        min_consumers: 1,
        max_consumers: 2,
        backlog_per_consumer: 50,
        scale_interval: 1,
        wait_time: 1,
        report_interval: 60,
        retry_rejected_after: None,
        max_backoff: 5,
        exit_when_empty: false,
        fault_delay_before_delete_ms: 0,
    }
}

async fn run(cli: OrdersArgs) -> Result<(), String> {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    match &cli.command {
        Command::Service { bind } => service(queues(&cli, false).await?, *bind).await,
        Command::Payment(args) => {
            let queues = queues(&cli, false).await?;
            let db = database(&cli.data_dir, "payments.db", PAYMENT_SCHEMA).await?;
            tokio::spawn(async move {
                crate::shutdown_signal().await;
                let _ = stop.send(true);
            });
            let payment = Payment { db, client: queues.client.clone(), paid: queues.paid };
            consumer::run(queues.client, queues.placed, payment, args.consumer.clone(), shutdown)
                .await
                .map(|_| ())
                .map_err(|f| f.0)
        }
        Command::Inventory(args) | Command::Notification(args) => {
            let queues = queues(&cli, false).await?;
            let (name, schema, url) = match &cli.command {
                Command::Inventory(_) => ("inventory", INVENTORY_SCHEMA, queues.inventory),
                _ => ("notification", NOTIFICATION_SCHEMA, queues.notification),
            };
            let db = database(&cli.data_dir, &format!("{name}.db"), schema).await?;
            tokio::spawn(async move {
                crate::shutdown_signal().await;
                let _ = stop.send(true);
            });
            let downstream = Downstream { name, db, seen: Arc::default() };
            consumer::run(queues.client, url, downstream, args.consumer.clone(), shutdown)
                .await
                .map(|_| ())
                .map_err(|f| f.0)
        }
        Command::Demo { orders, shared_queue } => {
            let queues = queues(&cli, *shared_queue).await?;
            let payment = Payment {
                db: database(&cli.data_dir, "payments.db", PAYMENT_SCHEMA).await?,
                client: queues.client.clone(),
                paid: queues.paid.clone(),
            };
            let inventory_seen = Arc::new(AtomicU64::new(0));
            let notification_seen = Arc::new(AtomicU64::new(0));
            let inventory = Downstream {
                name: "inventory",
                db: database(&cli.data_dir, "inventory.db", INVENTORY_SCHEMA).await?,
                seen: inventory_seen.clone(),
            };
            let notification = Downstream {
                name: "notification",
                db: database(&cli.data_dir, "notification.db", NOTIFICATION_SCHEMA).await?,
                seen: notification_seen.clone(),
            };
            let mut tasks = tokio::task::JoinSet::new();
            let client = queues.client.clone();
            tasks.spawn(consumer::run(
                client.clone(),
                queues.placed.clone(),
                payment,
                demo_consumer_args(),
                shutdown.clone(),
            ));
            tasks.spawn(consumer::run(
                client.clone(),
                queues.inventory.clone(),
                inventory,
                demo_consumer_args(),
                shutdown.clone(),
            ));
            tasks.spawn(consumer::run(
                client.clone(),
                queues.notification.clone(),
                notification,
                demo_consumer_args(),
                shutdown.clone(),
            ));
            for i in 0..*orders {
                place_order(&client, &queues.placed, &format!("customer{i}@example.com"), &format!("sku-{}", i % 3), 1)
                    .await?;
            }
            println!("placed {orders} orders");
            // Every paid order reaches both consumers with separate queues; with one shared queue
            // the two split the stream between them.
            let deadline = Instant::now() + Duration::from_secs(60);
            let target = if *shared_queue { 1 } else { 2 } * orders;
            while inventory_seen.load(Ordering::Relaxed) + notification_seen.load(Ordering::Relaxed) < target
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = stop.send(true);
            while tasks.join_next().await.is_some() {}
            let (inventory, notification) =
                (inventory_seen.load(Ordering::Relaxed), notification_seen.load(Ordering::Relaxed));
            println!("inventory saw {inventory} of {orders} paid orders");
            println!("notification saw {notification} of {orders} paid orders");
            if *shared_queue {
                println!("one shared queue: each paid order went to only one of the two consumers");
                Ok(())
            } else if inventory == *orders && notification == *orders {
                println!("every paid order reached both consumers");
                Ok(())
            } else {
                Err("some paid orders did not reach both consumers within 60s".into())
            }
        }
    }
}

/// Runs `holdfast orders …` to completion.
pub fn run_orders(args: OrdersArgs) -> std::process::ExitCode {
    // Quieter than the other commands by default: the demo prints its own summary.
    crate::run_logged(run(args), "warn")
}
