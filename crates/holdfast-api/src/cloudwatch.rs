//! The CloudWatch vocabulary (API version 2010-08-01) for the subset holdfast answers:
//! `GetMetricStatistics`, `GetMetricData` and `ListMetrics`, over the `AWS/SQS` namespace.
//!
//! Names follow the botocore model (`cloudwatch/2010-08-01/service-2.json`). Times are epoch
//! milliseconds; the wire codecs convert from and to each protocol's timestamp form.

/// The operations answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    GetMetricStatistics,
    GetMetricData,
    ListMetrics,
}

impl Operation {
    pub const ALL: [Operation; 3] = [Operation::GetMetricStatistics, Operation::GetMetricData, Operation::ListMetrics];

    pub fn name(self) -> &'static str {
        match self {
            Operation::GetMetricStatistics => "GetMetricStatistics",
            Operation::GetMetricData => "GetMetricData",
            Operation::ListMetrics => "ListMetrics",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// A metric: namespace, name and dimensions (`Name`, `Value`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metric {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    pub dimensions: Vec<Dimension>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dimension {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GetMetricStatisticsRequest {
    pub metric: Metric,
    pub start_time: i64,
    pub end_time: i64,
    pub period: i64,
    pub statistics: Vec<String>,
    pub extended_statistics: Vec<String>,
    pub unit: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Datapoint {
    pub timestamp: i64,
    pub sample_count: Option<f64>,
    pub average: Option<f64>,
    pub sum: Option<f64>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub unit: Option<String>,
    /// Extended statistic (`p99`) → value, in the order asked.
    pub extended_statistics: Vec<(String, f64)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GetMetricStatisticsResponse {
    pub label: String,
    pub datapoints: Vec<Datapoint>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MetricStat {
    pub metric: Metric,
    pub period: i64,
    pub stat: String,
    pub unit: Option<String>,
}

#[derive(Clone, Default, Debug, PartialEq)]
pub struct MetricDataQuery {
    pub id: String,
    pub metric_stat: Option<MetricStat>,
    pub expression: Option<String>,
    pub label: Option<String>,
    pub return_data: Option<bool>,
    pub period: Option<i64>,
}

#[derive(Clone, Default, Debug, PartialEq)]
pub struct GetMetricDataRequest {
    pub queries: Vec<MetricDataQuery>,
    pub start_time: i64,
    pub end_time: i64,
    pub next_token: Option<String>,
    /// `TimestampDescending` (the default) or `TimestampAscending`.
    pub scan_by: Option<String>,
    pub max_datapoints: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricDataResult {
    pub id: String,
    pub label: String,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
    /// `Complete`, or `PartialData` when more remains behind `NextToken`.
    pub status_code: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GetMetricDataResponse {
    pub results: Vec<MetricDataResult>,
    pub next_token: Option<String>,
}

/// A ListMetrics dimension filter: a name, and optionally the value it must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimensionFilter {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListMetricsRequest {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    pub dimensions: Vec<DimensionFilter>,
    pub next_token: Option<String>,
    /// `PT3H`: only metrics with data in the last three hours.
    pub recently_active: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListMetricsResponse {
    pub metrics: Vec<Metric>,
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CloudWatchRequest {
    GetMetricStatistics(GetMetricStatisticsRequest),
    GetMetricData(GetMetricDataRequest),
    ListMetrics(ListMetricsRequest),
}

#[derive(Clone, Debug, PartialEq)]
pub enum CloudWatchResponse {
    GetMetricStatistics(GetMetricStatisticsResponse),
    GetMetricData(GetMetricDataResponse),
    ListMetrics(ListMetricsResponse),
}

/// A CloudWatch error: its code (as the Query protocol and the `x-amzn-query-error` header name
/// it), the error shape the JSON and CBOR protocols name, the HTTP status and who is at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudWatchError {
    pub code: &'static str,
    pub shape: &'static str,
    pub status: u16,
    pub sender_fault: bool,
    pub message: String,
}

impl CloudWatchError {
    fn new(code: &'static str, shape: &'static str, status: u16, message: String) -> Self {
        CloudWatchError { code, shape, status, sender_fault: status < 500, message }
    }

    pub fn invalid_parameter_value(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterValue", "InvalidParameterValueException", 400, message.into())
    }

    pub fn missing_parameter(message: impl Into<String>) -> Self {
        Self::new("MissingParameter", "MissingRequiredParameterException", 400, message.into())
    }

    pub fn invalid_parameter_combination(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterCombination", "InvalidParameterCombinationException", 400, message.into())
    }

    pub fn invalid_next_token(message: impl Into<String>) -> Self {
        Self::new("InvalidNextToken", "InvalidNextToken", 400, message.into())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalServiceError", "InternalServiceFault", 500, message.into())
    }

    /// An operation this server does not answer (`PutMetricData`, alarms, dashboards, ...).
    pub fn invalid_action(name: &str) -> Self {
        Self::new(
            "InvalidAction",
            "InvalidAction",
            400,
            format!("The action {name} is not valid for this endpoint: holdfast answers GetMetricStatistics, GetMetricData and ListMetrics."),
        )
    }

    /// A request whose body or parameters do not decode.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", "SerializationException", 400, message.into())
    }

    /// An error decided outside CloudWatch's own rules (authentication, authorization, limits),
    /// with the SQS error's code and status.
    pub fn from_sqs(error: &crate::SqsError) -> Self {
        let code = error.code.query_code();
        Self::new(code, code, error.code.http_status(), error.message.clone())
    }
}
