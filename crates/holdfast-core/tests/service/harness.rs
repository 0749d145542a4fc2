//! The service under test and a typed client for it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use holdfast_api::types::*;
use holdfast_api::{ErrorCode, Request, Response, SqsError};
use holdfast_core::{ManualClock, RequestContext, ServiceConfig, Sqs};
use holdfast_store::MemoryStore;
use tokio::sync::watch;

/// Where the manual clock starts: any fixed epoch time will do.
pub const T0: i64 = 1_700_000_000_000;

pub struct Harness {
    pub sqs: Arc<Sqs>,
    pub clock: Arc<ManualClock>,
    ctx: RequestContext,
    _shutdown: watch::Sender<bool>,
    background: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.background.abort();
    }
}

impl Harness {
    /// A fresh service with its background work (timer, move tasks) running. Call from a
    /// `#[tokio::test(start_paused = true)]`.
    pub async fn new() -> Harness {
        Harness::with_config(ServiceConfig::default()).await
    }

    pub async fn with_config(config: ServiceConfig) -> Harness {
        let clock = Arc::new(ManualClock::new(T0));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let store = Arc::new(MemoryStore::new());
        let sqs = Arc::new(Sqs::new(store, clock.clone(), config, shutdown_rx));
        let background = sqs.spawn_background();
        let harness = Harness {
            sqs,
            clock,
            ctx: RequestContext { base_url: "http://sqs.test".into(), ..Default::default() },
            _shutdown: shutdown,
            background,
        };
        harness.settle().await;
        harness
    }

    /// Moves the service's clock and tokio's paused clock forward together, then lets every task
    /// that became ready run.
    pub async fn advance(&self, ms: i64) {
        self.clock.advance(ms);
        tokio::time::advance(Duration::from_millis(ms as u64)).await;
        self.settle().await;
    }

    /// Lets every ready task run to its next wait. The runtime is single-threaded, so after
    /// enough yields nothing that was woken is left unrun.
    pub async fn settle(&self) {
        for _ in 0..64 {
            tokio::task::yield_now().await;
        }
    }

    pub async fn call(&self, request: Request) -> Result<Response, SqsError> {
        self.sqs.handle(&self.ctx, request).await
    }

    /// `request` from a verified caller (as with authentication on).
    pub async fn call_as(&self, caller: &RequestContext, request: Request) -> Result<Response, SqsError> {
        self.sqs.handle(caller, request).await
    }

    pub async fn create_queue(&self, name: &str, attributes: &[(&str, &str)]) -> String {
        let attributes: BTreeMap<String, String> =
            attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let request = CreateQueueRequest { queue_name: name.into(), attributes: Some(attributes), tags: None };
        match self.call(Request::CreateQueue(request)).await {
            Ok(Response::CreateQueue(r)) => r.queue_url.expect("a queue URL"),
            other => panic!("CreateQueue {name}: {other:?}"),
        }
    }

    pub async fn set_attributes(&self, url: &str, attributes: &[(&str, &str)]) {
        let attributes = attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let request = SetQueueAttributesRequest { queue_url: url.into(), attributes };
        self.call(Request::SetQueueAttributes(request)).await.expect("SetQueueAttributes");
    }

    pub async fn arn(&self, url: &str) -> String {
        self.attribute(url, "QueueArn").await
    }

    pub async fn attribute(&self, url: &str, name: &str) -> String {
        let request = GetQueueAttributesRequest { queue_url: url.into(), attribute_names: Some(vec![name.into()]) };
        match self.call(Request::GetQueueAttributes(request)).await {
            Ok(Response::GetQueueAttributes(r)) => {
                r.attributes.and_then(|mut a| a.remove(name)).unwrap_or_else(|| panic!("no {name}"))
            }
            other => panic!("GetQueueAttributes: {other:?}"),
        }
    }

    /// `(visible, in flight, delayed)`.
    pub async fn counts(&self, url: &str) -> (u64, u64, u64) {
        let number = |name: &'static str| async move { self.attribute(url, name).await.parse::<u64>().unwrap() };
        (
            number("ApproximateNumberOfMessages").await,
            number("ApproximateNumberOfMessagesNotVisible").await,
            number("ApproximateNumberOfMessagesDelayed").await,
        )
    }

    pub async fn send(&self, url: &str, body: &str) -> String {
        self.send_with(SendMessageRequest { queue_url: url.into(), message_body: body.into(), ..Default::default() })
            .await
    }

    pub async fn send_delayed(&self, url: &str, body: &str, delay_seconds: i64) -> String {
        let request = SendMessageRequest {
            queue_url: url.into(),
            message_body: body.into(),
            delay_seconds: Some(delay_seconds),
            ..Default::default()
        };
        self.send_with(request).await
    }

    pub async fn send_fifo(&self, url: &str, body: &str, group: &str) -> String {
        let request = SendMessageRequest {
            queue_url: url.into(),
            message_body: body.into(),
            message_group_id: Some(group.into()),
            message_deduplication_id: Some(body.into()),
            ..Default::default()
        };
        self.send_with(request).await
    }

    pub async fn send_with(&self, request: SendMessageRequest) -> String {
        match self.call(Request::SendMessage(request)).await {
            Ok(Response::SendMessage(r)) => r.message_id.expect("a message id"),
            other => panic!("SendMessage: {other:?}"),
        }
    }

    pub fn receive_request(url: &str, max: i64, visibility_timeout: i64, wait_seconds: i64) -> ReceiveMessageRequest {
        ReceiveMessageRequest {
            queue_url: url.into(),
            max_number_of_messages: Some(max),
            visibility_timeout: Some(visibility_timeout),
            wait_time_seconds: Some(wait_seconds),
            message_system_attribute_names: Some(vec!["All".into()]),
            ..Default::default()
        }
    }

    /// A receive that does not wait.
    pub async fn receive(&self, url: &str, max: i64, visibility_timeout: i64) -> Vec<Message> {
        receive(&self.sqs, &self.ctx, Self::receive_request(url, max, visibility_timeout, 0)).await
    }

    /// Starts a long poll in the background and lets it reach its wait; its answer comes from
    /// the handle.
    pub async fn long_poll(
        &self,
        url: &str,
        visibility_timeout: i64,
        wait_seconds: i64,
    ) -> tokio::task::JoinHandle<Result<Vec<Message>, SqsError>> {
        let (sqs, ctx) = (Arc::clone(&self.sqs), self.ctx.clone());
        let request = Self::receive_request(url, 10, visibility_timeout, wait_seconds);
        let poll = tokio::spawn(async move {
            match sqs.handle(&ctx, Request::ReceiveMessage(request)).await? {
                Response::ReceiveMessage(r) => Ok(r.messages.unwrap_or_default()),
                other => panic!("ReceiveMessage answered {other:?}"),
            }
        });
        self.settle().await;
        poll
    }

    pub async fn delete(&self, url: &str, message: &Message) -> Result<(), SqsError> {
        let request = DeleteMessageRequest { queue_url: url.into(), receipt_handle: message.receipt_handle.clone() };
        self.call(Request::DeleteMessage(request)).await.map(drop)
    }

    pub async fn change_visibility(&self, url: &str, message: &Message, timeout: i64) -> Result<(), SqsError> {
        let request = ChangeMessageVisibilityRequest {
            queue_url: url.into(),
            receipt_handle: message.receipt_handle.clone(),
            visibility_timeout: timeout,
        };
        self.call(Request::ChangeMessageVisibility(request)).await.map(drop)
    }
}

async fn receive(sqs: &Arc<Sqs>, ctx: &RequestContext, request: ReceiveMessageRequest) -> Vec<Message> {
    match sqs.handle(ctx, Request::ReceiveMessage(request)).await {
        Ok(Response::ReceiveMessage(r)) => r.messages.unwrap_or_default(),
        other => panic!("ReceiveMessage: {other:?}"),
    }
}

pub fn bodies(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

/// A system attribute of a received message.
pub fn system(message: &Message, name: &str) -> String {
    message.attributes.as_ref().and_then(|a| a.get(name)).cloned().unwrap_or_else(|| panic!("no {name}"))
}

#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, SqsError>, code: ErrorCode) {
    match result {
        Err(error) => assert_eq!(error.code, code, "{error:?}"),
        Ok(value) => panic!("expected {code:?}, got {value:?}"),
    }
}

/// Whether a spawned long poll has answered yet.
pub fn answered<T>(handle: &tokio::task::JoinHandle<T>) -> bool {
    handle.is_finished()
}
