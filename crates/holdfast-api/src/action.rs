//! The 23 actions of API version 2012-11-05 and the typed request/response enums over them.
//!
//! One macro lists every action once, with its request type and its response type (or none, for
//! the actions whose model has no output shape). Everything that must cover every action —
//! name lookup, decoding, the exhaustive dispatch in `holdfast-core` — is generated from or
//! checked against this list, so a new action cannot be half-wired.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::types::*;

/// The response of an action whose model has no output shape; serializes as an empty map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoOutput;

impl Serialize for NoOutput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde::ser::SerializeMap::end(serializer.serialize_map(Some(0))?)
    }
}

macro_rules! actions {
    ($( $name:ident($req:ty) -> $resp:tt ),* $(,)?) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Action { $( $name ),* }

        impl Action {
            pub const ALL: &'static [Action] = &[ $( Action::$name ),* ];

            /// The operation name as in `X-Amz-Target: AmazonSQS.<name>` and `Action=<name>`.
            pub fn name(self) -> &'static str {
                match self { $( Action::$name => stringify!($name) ),* }
            }

            pub fn from_name(name: &str) -> Option<Action> {
                match name { $( stringify!($name) => Some(Action::$name), )* _ => None }
            }

            /// Whether the model gives this action an output shape.
            pub fn has_output(self) -> bool {
                match self { $( Action::$name => actions!(@has_output $resp) ),* }
            }
        }

        /// A decoded request of any action.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Request { $( $name($req) ),* }

        impl Request {
            pub fn action(&self) -> Action {
                match self { $( Request::$name(_) => Action::$name ),* }
            }

            /// Decodes the request members of `action` from any serde data format whose field
            /// names are the model's member names.
            pub fn deserialize_for<'de, D: Deserializer<'de>>(action: Action, deserializer: D) -> Result<Request, D::Error> {
                Ok(match action { $( Action::$name => Request::$name(<$req>::deserialize(deserializer)?) ),* })
            }
        }

        /// A successful answer of any action. Actions without an output shape carry `NoOutput`.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Response { $( $name(actions!(@resp_ty $resp)) ),* }

        impl Response {
            pub fn action(&self) -> Action {
                match self { $( Response::$name(_) => Action::$name ),* }
            }
        }

        /// Serializes the output structure (an empty map for actions without output).
        impl Serialize for Response {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self { $( Response::$name(inner) => inner.serialize(serializer) ),* }
            }
        }
    };
    (@has_output ()) => { false };
    (@has_output $resp:ty) => { true };
    (@resp_ty ()) => { NoOutput };
    (@resp_ty $resp:ty) => { $resp };
}

actions! {
    AddPermission(AddPermissionRequest) -> (),
    CancelMessageMoveTask(CancelMessageMoveTaskRequest) -> CancelMessageMoveTaskResponse,
    ChangeMessageVisibility(ChangeMessageVisibilityRequest) -> (),
    ChangeMessageVisibilityBatch(ChangeMessageVisibilityBatchRequest) -> ChangeMessageVisibilityBatchResponse,
    CreateQueue(CreateQueueRequest) -> CreateQueueResponse,
    DeleteMessage(DeleteMessageRequest) -> (),
    DeleteMessageBatch(DeleteMessageBatchRequest) -> DeleteMessageBatchResponse,
    DeleteQueue(DeleteQueueRequest) -> (),
    GetQueueAttributes(GetQueueAttributesRequest) -> GetQueueAttributesResponse,
    GetQueueUrl(GetQueueUrlRequest) -> GetQueueUrlResponse,
    ListDeadLetterSourceQueues(ListDeadLetterSourceQueuesRequest) -> ListDeadLetterSourceQueuesResponse,
    ListMessageMoveTasks(ListMessageMoveTasksRequest) -> ListMessageMoveTasksResponse,
    ListQueueTags(ListQueueTagsRequest) -> ListQueueTagsResponse,
    ListQueues(ListQueuesRequest) -> ListQueuesResponse,
    PurgeQueue(PurgeQueueRequest) -> (),
    ReceiveMessage(ReceiveMessageRequest) -> ReceiveMessageResponse,
    RemovePermission(RemovePermissionRequest) -> (),
    SendMessage(SendMessageRequest) -> SendMessageResponse,
    SendMessageBatch(SendMessageBatchRequest) -> SendMessageBatchResponse,
    SetQueueAttributes(SetQueueAttributesRequest) -> (),
    StartMessageMoveTask(StartMessageMoveTaskRequest) -> StartMessageMoveTaskResponse,
    TagQueue(TagQueueRequest) -> (),
    UntagQueue(UntagQueueRequest) -> (),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_23_actions_with_round_trip_names() {
        assert_eq!(Action::ALL.len(), 23);
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(*action));
        }
        assert_eq!(Action::from_name("sendmessage"), None);
    }

    #[test]
    fn requests_decode_by_model_member_names() {
        let json = r#"{"QueueName":"q1.fifo","Attributes":{"FifoQueue":"true"},"tags":{"env":"dev"},"Unknown":1}"#;
        let mut de = serde_json::Deserializer::from_str(json);
        let Request::CreateQueue(req) = Request::deserialize_for(Action::CreateQueue, &mut de).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(req.queue_name, "q1.fifo");
        assert_eq!(req.tags.unwrap()["env"], "dev");
    }

    #[test]
    fn responses_use_model_member_names() {
        let resp = Response::SendMessage(SendMessageResponse {
            md5_of_message_body: Some("x".into()),
            message_id: Some("m".into()),
            ..Default::default()
        });
        assert_eq!(serde_json::to_string(&resp).unwrap(), r#"{"MD5OfMessageBody":"x","MessageId":"m"}"#);
        assert_eq!(serde_json::to_string(&Response::DeleteQueue(NoOutput)).unwrap(), "{}");
        let dlq = Response::ListDeadLetterSourceQueues(ListDeadLetterSourceQueuesResponse::default());
        assert_eq!(serde_json::to_string(&dlq).unwrap(), r#"{"queueUrls":[]}"#);
    }
}
