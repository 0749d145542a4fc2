//! The one table of SQS error codes.
//!
//! Each code knows the three names a client may look for and how it is reported:
//! the model's error shape (`__type` in AWS JSON 1.0, the exception class botocore raises), the
//! legacy Query code (the `<Code>` of an XML error and the `x-amzn-query-error` header, which
//! aws-sdk-rust and botocore use to type errors), its HTTP status and its fault. Sources: the
//! Smithy `awsQueryError` traits (modeled errors) and the API Reference's common errors.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Sender,
    Receiver,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Sender => "Sender",
            Fault::Receiver => "Receiver",
        }
    }
}

macro_rules! error_codes {
    ($( $variant:ident => ($json_type:literal, $query_code:literal, $status:literal, $fault:ident) ),* $(,)?) => {
        /// Every error holdfast can answer with.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $variant ),* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant ),* ];

            /// The JSON `__type`: `com.amazonaws.sqs#<Shape>` for modeled errors.
            pub fn json_type(self) -> &'static str {
                match self { $( ErrorCode::$variant => $json_type ),* }
            }

            /// The Query-protocol code, also sent in the `x-amzn-query-error` header.
            pub fn query_code(self) -> &'static str {
                match self { $( ErrorCode::$variant => $query_code ),* }
            }

            pub fn http_status(self) -> u16 {
                match self { $( ErrorCode::$variant => $status ),* }
            }

            pub fn fault(self) -> Fault {
                match self { $( ErrorCode::$variant => Fault::$fault ),* }
            }
        }
    };
}

error_codes! {
    // Modeled errors (service-2.json shapes; codes from the Smithy awsQueryError traits).
    BatchEntryIdsNotDistinct => ("com.amazonaws.sqs#BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400, Sender),
    BatchRequestTooLong => ("com.amazonaws.sqs#BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", 400, Sender),
    EmptyBatchRequest => ("com.amazonaws.sqs#EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", 400, Sender),
    InvalidAddress => ("com.amazonaws.sqs#InvalidAddress", "InvalidAddress", 404, Sender),
    InvalidAttributeName => ("com.amazonaws.sqs#InvalidAttributeName", "InvalidAttributeName", 400, Sender),
    InvalidAttributeValue => ("com.amazonaws.sqs#InvalidAttributeValue", "InvalidAttributeValue", 400, Sender),
    InvalidBatchEntryId => ("com.amazonaws.sqs#InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId", 400, Sender),
    InvalidIdFormat => ("com.amazonaws.sqs#InvalidIdFormat", "InvalidIdFormat", 400, Sender),
    InvalidMessageContents => ("com.amazonaws.sqs#InvalidMessageContents", "InvalidMessageContents", 400, Sender),
    InvalidSecurity => ("com.amazonaws.sqs#InvalidSecurity", "InvalidSecurity", 403, Sender),
    KmsAccessDenied => ("com.amazonaws.sqs#KmsAccessDenied", "KMS.AccessDeniedException", 400, Sender),
    KmsDisabled => ("com.amazonaws.sqs#KmsDisabled", "KMS.DisabledException", 400, Sender),
    KmsInvalidKeyUsage => ("com.amazonaws.sqs#KmsInvalidKeyUsage", "KMS.InvalidKeyUsageException", 400, Sender),
    KmsInvalidState => ("com.amazonaws.sqs#KmsInvalidState", "KMS.InvalidStateException", 400, Sender),
    KmsNotFound => ("com.amazonaws.sqs#KmsNotFound", "KMS.NotFoundException", 400, Sender),
    KmsOptInRequired => ("com.amazonaws.sqs#KmsOptInRequired", "KMS.OptInRequired", 403, Sender),
    KmsThrottled => ("com.amazonaws.sqs#KmsThrottled", "KMS.ThrottlingException", 400, Sender),
    MessageNotInflight => ("com.amazonaws.sqs#MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", 400, Sender),
    OverLimit => ("com.amazonaws.sqs#OverLimit", "OverLimit", 403, Sender),
    PurgeQueueInProgress => ("com.amazonaws.sqs#PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress", 403, Sender),
    QueueDeletedRecently => ("com.amazonaws.sqs#QueueDeletedRecently", "AWS.SimpleQueueService.QueueDeletedRecently", 400, Sender),
    QueueDoesNotExist => ("com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400, Sender),
    QueueNameExists => ("com.amazonaws.sqs#QueueNameExists", "QueueAlreadyExists", 400, Sender),
    ReceiptHandleIsInvalid => ("com.amazonaws.sqs#ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 404, Sender),
    RequestThrottled => ("com.amazonaws.sqs#RequestThrottled", "RequestThrottled", 403, Sender),
    ResourceNotFoundException => ("com.amazonaws.sqs#ResourceNotFoundException", "ResourceNotFoundException", 404, Sender),
    TooManyEntriesInBatchRequest => ("com.amazonaws.sqs#TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400, Sender),
    UnsupportedOperation => ("com.amazonaws.sqs#UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", 400, Sender),
    // Common errors (API Reference, CommonErrors); `__type` as real SQS sends it.
    InvalidParameterValue => ("com.amazon.coral.service#InvalidParameterValueException", "InvalidParameterValue", 400, Sender),
    MissingParameter => ("com.amazon.coral.service#MissingRequiredParameterException", "MissingParameter", 400, Sender),
    InvalidParameterCombination => ("com.amazon.coral.service#InvalidParameterCombinationException", "InvalidParameterCombination", 400, Sender),
    InvalidAction => ("com.amazon.coral.service#UnknownOperationException", "InvalidAction", 400, Sender),
    MissingAction => ("com.amazon.coral.service#MissingActionException", "MissingAction", 400, Sender),
    // A GET without an Action: AWS answers 404 with a bare `<UnknownOperationException/>`.
    UnknownOperation => ("com.amazon.coral.service#UnknownOperationException", "UnknownOperationException", 404, Sender),
    MalformedQueryString => ("com.amazon.coral.service#MalformedQueryStringException", "MalformedQueryString", 400, Sender),
    SerializationException => ("com.amazon.coral.service#SerializationException", "SerializationException", 400, Sender),
    AccessDenied => ("com.amazon.coral.service#AccessDeniedException", "AccessDenied", 403, Sender),
    InvalidClientTokenId => ("com.amazon.coral.service#InvalidClientTokenId", "InvalidClientTokenId", 403, Sender),
    MissingAuthenticationToken => ("com.amazon.coral.service#MissingAuthenticationTokenException", "MissingAuthenticationToken", 403, Sender),
    IncompleteSignature => ("com.amazon.coral.service#IncompleteSignatureException", "IncompleteSignature", 400, Sender),
    SignatureDoesNotMatch => ("com.amazon.coral.service#SignatureDoesNotMatchException", "SignatureDoesNotMatch", 403, Sender),
    RequestExpired => ("com.amazon.coral.service#RequestExpired", "RequestExpired", 400, Sender),
    RequestEntityTooLarge => ("com.amazon.coral.service#RequestEntityTooLargeException", "RequestEntityTooLarge", 413, Sender),
    InternalFailure => ("com.amazon.coral.service#InternalFailure", "InternalFailure", 500, Receiver),
    ServiceUnavailable => ("com.amazon.coral.service#ServiceUnavailableException", "ServiceUnavailable", 503, Receiver),
}

impl ErrorCode {
    /// The error shape's bare name, as used in batch `Failed[].Code` entries and logs.
    pub fn shape_name(self) -> &'static str {
        let json_type = self.json_type();
        let name = json_type.rsplit('#').next().unwrap_or(json_type);
        name.strip_suffix("Exception").filter(|_| !matches!(self, ErrorCode::ResourceNotFoundException)).unwrap_or(name)
    }

    pub fn sender_fault(self) -> bool {
        self.fault() == Fault::Sender
    }
}

/// An error answered to the client: a code from the table and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqsError {
    pub code: ErrorCode,
    pub message: String,
}

impl SqsError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        SqsError { code, message: message.into() }
    }
}

impl fmt::Display for SqsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.query_code(), self.message)
    }
}

impl std::error::Error for SqsError {}

/// `sqs_error!(QueueDoesNotExist, "The queue {} does not exist.", name)`
#[macro_export]
macro_rules! sqs_error {
    ($code:ident, $($fmt:tt)+) => {
        $crate::error::SqsError::new($crate::error::ErrorCode::$code, format!($($fmt)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modeled_errors_carry_legacy_query_codes() {
        assert_eq!(ErrorCode::QueueDoesNotExist.query_code(), "AWS.SimpleQueueService.NonExistentQueue");
        assert_eq!(ErrorCode::QueueDoesNotExist.json_type(), "com.amazonaws.sqs#QueueDoesNotExist");
        assert_eq!(ErrorCode::QueueNameExists.query_code(), "QueueAlreadyExists");
        assert_eq!(ErrorCode::ReceiptHandleIsInvalid.http_status(), 404);
        assert_eq!(ErrorCode::InternalFailure.fault(), Fault::Receiver);
    }

    #[test]
    fn shape_names_strip_namespaces() {
        assert_eq!(ErrorCode::QueueDoesNotExist.shape_name(), "QueueDoesNotExist");
        assert_eq!(ErrorCode::InvalidParameterValue.shape_name(), "InvalidParameterValue");
        assert_eq!(ErrorCode::ResourceNotFoundException.shape_name(), "ResourceNotFoundException");
    }
}
