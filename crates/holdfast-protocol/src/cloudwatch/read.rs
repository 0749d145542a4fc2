//! Reading the decoded tree into typed CloudWatch requests: required members, types (Query
//! sends every scalar as text, JSON and CBOR as numbers), timestamps in every form clients send.

use std::borrow::Cow;

use holdfast_api::cloudwatch::{
    CloudWatchError, CloudWatchRequest, Dimension, DimensionFilter, GetMetricDataRequest, GetMetricStatisticsRequest,
    ListMetricsRequest, Metric, MetricDataQuery, MetricStat, Operation,
};
use serde_json::{Map, Value};

/// The largest index a Query list may use: far above CloudWatch's largest list (500 queries).
const MAX_QUERY_INDEX: usize = 1000;

/// Query parameters as a tree: `A.member.2.B=x` becomes `{"A": [null, {"B": "x"}]}`. `Action`
/// and `Version` are left out; so are the signature's parameters.
pub(super) fn query_tree(params: &[(Cow<'_, str>, Cow<'_, str>)]) -> Result<Value, CloudWatchError> {
    let mut root = Value::Object(Map::new());
    for (key, value) in params {
        if matches!(key.as_ref(), "Action" | "Version") || key.starts_with("X-Amz-") {
            continue;
        }
        let mut node = &mut root;
        let mut segments = key.split('.').peekable();
        while let Some(segment) = segments.next() {
            let last = segments.peek().is_none();
            if segment == "member" {
                let index: usize = segments
                    .next()
                    .and_then(|i| i.parse().ok())
                    .filter(|i| (1..=MAX_QUERY_INDEX).contains(i))
                    .ok_or_else(|| {
                        CloudWatchError::invalid_parameter_value(format!("The parameter {key} is not valid."))
                    })?;
                if !node.is_array() {
                    *node = Value::Array(Vec::new());
                }
                let items = node.as_array_mut().expect("made an array");
                if items.len() < index {
                    items.resize(index, Value::Null);
                }
                node = &mut items[index - 1];
                if segments.peek().is_none() {
                    *node = Value::String(value.to_string());
                }
                continue;
            }
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            let map = node.as_object_mut().expect("made an object");
            if last {
                map.insert(segment.to_owned(), Value::String(value.to_string()));
                break;
            }
            node = map.entry(segment.to_owned()).or_insert(Value::Null);
        }
    }
    Ok(root)
}

/// A member of a structure, with its path for error messages.
struct Field<'a> {
    value: Option<&'a Value>,
    path: String,
}

fn field<'a>(parent: &'a Value, parent_path: &str, name: &str) -> Field<'a> {
    let path = if parent_path.is_empty() { name.to_owned() } else { format!("{parent_path}.{name}") };
    Field { value: parent.get(name).filter(|v| !v.is_null()), path }
}

fn invalid(path: &str, why: &str) -> CloudWatchError {
    CloudWatchError::invalid_parameter_value(format!("The parameter {path} {why}."))
}

impl<'a> Field<'a> {
    fn required(self) -> Result<Field<'a>, CloudWatchError> {
        match self.value {
            Some(_) => Ok(self),
            None => Err(CloudWatchError::missing_parameter(format!("The parameter {} is required.", self.path))),
        }
    }

    fn string(&self) -> Result<Option<String>, CloudWatchError> {
        match self.value {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(&self.path, "must be a string")),
        }
    }

    fn int(&self) -> Result<Option<i64>, CloudWatchError> {
        match self.value {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| invalid(&self.path, "must be an integer")),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid(&self.path, "must be an integer")),
            Some(_) => Err(invalid(&self.path, "must be an integer")),
        }
    }

    fn bool(&self) -> Result<Option<bool>, CloudWatchError> {
        match self.value {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(invalid(&self.path, "must be true or false")),
        }
    }

    /// Epoch milliseconds from epoch seconds (a number, or digits in text) or ISO 8601 text.
    fn timestamp(&self) -> Result<Option<i64>, CloudWatchError> {
        let seconds = |s: f64| (s.is_finite() && s.abs() < 1e13).then(|| (s * 1000.0).round() as i64);
        let parsed = match self.value {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_f64().and_then(seconds),
            Some(Value::String(s)) => holdfast_api::calendar::parse_iso8601_millis(s)
                .or_else(|| s.trim().parse::<f64>().ok().and_then(seconds)),
            Some(_) => None,
        };
        parsed.map(Some).ok_or_else(|| invalid(&self.path, "must be a timestamp"))
    }

    fn list(&self, max: usize) -> Result<Vec<Field<'a>>, CloudWatchError> {
        match self.value {
            // Query writes an empty list as `Name=` with no value.
            None => Ok(Vec::new()),
            Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
            Some(Value::Array(items)) if items.len() <= max => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| Field {
                    value: Some(v).filter(|v| !v.is_null()),
                    path: format!("{}.member.{}", self.path, i + 1),
                })
                .collect()),
            Some(Value::Array(_)) => Err(invalid(&self.path, &format!("must have at most {max} members"))),
            Some(_) => Err(invalid(&self.path, "must be a list")),
        }
    }

    fn strings(&self, max: usize) -> Result<Vec<String>, CloudWatchError> {
        self.list(max)?.iter().map(|item| item.string().map(Option::unwrap_or_default)).collect()
    }

    fn get(&self, name: &str) -> Field<'a> {
        match self.value {
            Some(value) => field(value, &self.path, name),
            None => Field { value: None, path: format!("{}.{name}", self.path) },
        }
    }
}

fn dimensions(list: &Field<'_>) -> Result<Vec<Dimension>, CloudWatchError> {
    list.list(30)?
        .iter()
        .map(|d| {
            let name = d.get("Name").required()?.string()?.unwrap_or_default();
            let value = d.get("Value").required()?.string()?.unwrap_or_default();
            Ok(Dimension { name, value })
        })
        .collect()
}

fn metric(value: &Field<'_>) -> Result<Metric, CloudWatchError> {
    Ok(Metric {
        namespace: value.get("Namespace").string()?,
        metric_name: value.get("MetricName").string()?,
        dimensions: dimensions(&value.get("Dimensions"))?,
    })
}

pub(super) fn request(operation: Operation, tree: &Value, _query: bool) -> Result<CloudWatchRequest, CloudWatchError> {
    if !tree.is_object() {
        return Err(CloudWatchError::serialization("The request body must be a structure."));
    }
    let top = |name: &str| field(tree, "", name);
    Ok(match operation {
        Operation::GetMetricStatistics => {
            let namespace = top("Namespace").required()?.string()?;
            let metric_name = top("MetricName").required()?.string()?;
            CloudWatchRequest::GetMetricStatistics(GetMetricStatisticsRequest {
                metric: Metric { namespace, metric_name, dimensions: dimensions(&top("Dimensions"))? },
                start_time: top("StartTime").required()?.timestamp()?.unwrap_or_default(),
                end_time: top("EndTime").required()?.timestamp()?.unwrap_or_default(),
                period: top("Period").required()?.int()?.unwrap_or_default(),
                statistics: top("Statistics").strings(5)?,
                extended_statistics: top("ExtendedStatistics").strings(10)?,
                unit: top("Unit").string()?,
            })
        }
        Operation::GetMetricData => {
            let queries = top("MetricDataQueries").required()?;
            let queries = queries
                .list(500)?
                .iter()
                .map(|q| {
                    let stat = q.get("MetricStat");
                    let metric_stat = match stat.value {
                        None => None,
                        Some(_) => Some(MetricStat {
                            metric: metric(&stat.get("Metric").required()?)?,
                            period: stat.get("Period").required()?.int()?.unwrap_or_default(),
                            stat: stat.get("Stat").required()?.string()?.unwrap_or_default(),
                            unit: stat.get("Unit").string()?,
                        }),
                    };
                    Ok(MetricDataQuery {
                        id: q.get("Id").required()?.string()?.unwrap_or_default(),
                        metric_stat,
                        expression: q.get("Expression").string()?,
                        label: q.get("Label").string()?,
                        return_data: q.get("ReturnData").bool()?,
                        period: q.get("Period").int()?,
                    })
                })
                .collect::<Result<Vec<_>, CloudWatchError>>()?;
            CloudWatchRequest::GetMetricData(GetMetricDataRequest {
                queries,
                start_time: top("StartTime").required()?.timestamp()?.unwrap_or_default(),
                end_time: top("EndTime").required()?.timestamp()?.unwrap_or_default(),
                next_token: top("NextToken").string()?,
                scan_by: top("ScanBy").string()?,
                max_datapoints: top("MaxDatapoints").int()?,
            })
        }
        Operation::ListMetrics => {
            let filters = top("Dimensions")
                .list(10)?
                .iter()
                .map(|f| {
                    Ok(DimensionFilter {
                        name: f.get("Name").required()?.string()?.unwrap_or_default(),
                        value: f.get("Value").string()?,
                    })
                })
                .collect::<Result<Vec<_>, CloudWatchError>>()?;
            CloudWatchRequest::ListMetrics(ListMetricsRequest {
                namespace: top("Namespace").string()?,
                metric_name: top("MetricName").string()?,
                dimensions: filters,
                next_token: top("NextToken").string()?,
                recently_active: top("RecentlyActive").string()?,
            })
        }
    })
}
