//! CloudWatch's view of the queues: `GetMetricStatistics`, `GetMetricData` (metric stat queries)
//! and `ListMetrics` over the `AWS/SQS` namespace, dimension `QueueName`, computed from the
//! minutes `crate::queue_metrics` records.
//!
//! A metric of another namespace, or with other dimensions, has no data (as on CloudWatch, where
//! asking for a metric nobody publishes is not an error). Periods are 60 s or multiples; the
//! high-resolution periods (1, 5, 10, 30 s) are accepted and answered at one-minute resolution,
//! which is what SQS publishes.

use std::collections::HashMap;

use holdfast_api::cloudwatch::{
    CloudWatchError, CloudWatchRequest, CloudWatchResponse, Datapoint, Dimension, GetMetricDataRequest,
    GetMetricDataResponse, GetMetricStatisticsRequest, GetMetricStatisticsResponse, ListMetricsRequest,
    ListMetricsResponse, Metric, MetricDataResult,
};

use crate::queue_metrics::{minute_of, Distribution, FairGauges, Gauges, QueueMinute, MINUTE_MS};
use crate::service::{RequestContext, Sqs};
use crate::store::{MetricQueue, Millis};

pub const NAMESPACE: &str = "AWS/SQS";
pub const QUEUE_NAME: &str = "QueueName";

/// The most datapoints one GetMetricStatistics call may ask for.
const MAX_STATISTICS_DATAPOINTS: i64 = 1440;
/// The most queries one GetMetricData call may hold, and its default (and largest) datapoint cap.
const MAX_DATA_QUERIES: usize = 500;
const MAX_DATAPOINTS: i64 = 100_800;
/// ListMetrics answers this many metrics a page.
const LIST_PAGE: usize = 500;
/// How far back ListMetrics looks: CloudWatch lists metrics with data in the last two weeks.
const LIST_WINDOW_MS: Millis = 14 * 24 * 3600 * 1000;
const RECENTLY_ACTIVE_MS: Millis = 3 * 3600 * 1000;

/// The metrics SQS publishes, with their units (the SQS Developer Guide's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqsMetric {
    Visible,
    NotVisible,
    Delayed,
    OldestAge,
    Sent,
    Received,
    Deleted,
    EmptyReceives,
    SentSize,
    NoisyGroups,
    VisibleInQuietGroups,
    NotVisibleInQuietGroups,
    DelayedInQuietGroups,
    OldestAgeInQuietGroups,
}

impl SqsMetric {
    pub const ALL: [SqsMetric; 14] = [
        SqsMetric::Visible,
        SqsMetric::NotVisible,
        SqsMetric::Delayed,
        SqsMetric::OldestAge,
        SqsMetric::Sent,
        SqsMetric::Received,
        SqsMetric::Deleted,
        SqsMetric::EmptyReceives,
        SqsMetric::SentSize,
        SqsMetric::NoisyGroups,
        SqsMetric::VisibleInQuietGroups,
        SqsMetric::NotVisibleInQuietGroups,
        SqsMetric::DelayedInQuietGroups,
        SqsMetric::OldestAgeInQuietGroups,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SqsMetric::Visible => "ApproximateNumberOfMessagesVisible",
            SqsMetric::NotVisible => "ApproximateNumberOfMessagesNotVisible",
            SqsMetric::Delayed => "ApproximateNumberOfMessagesDelayed",
            SqsMetric::OldestAge => "ApproximateAgeOfOldestMessage",
            SqsMetric::Sent => "NumberOfMessagesSent",
            SqsMetric::Received => "NumberOfMessagesReceived",
            SqsMetric::Deleted => "NumberOfMessagesDeleted",
            SqsMetric::EmptyReceives => "NumberOfEmptyReceives",
            SqsMetric::SentSize => "SentMessageSize",
            SqsMetric::NoisyGroups => "ApproximateNumberOfNoisyGroups",
            SqsMetric::VisibleInQuietGroups => "ApproximateNumberOfMessagesVisibleInQuietGroups",
            SqsMetric::NotVisibleInQuietGroups => "ApproximateNumberOfMessagesNotVisibleInQuietGroups",
            SqsMetric::DelayedInQuietGroups => "ApproximateNumberOfMessagesDelayedInQuietGroups",
            SqsMetric::OldestAgeInQuietGroups => "ApproximateAgeOfOldestMessageInQuietGroups",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn unit(self) -> &'static str {
        match self {
            SqsMetric::OldestAge | SqsMetric::OldestAgeInQuietGroups => "Seconds",
            SqsMetric::SentSize => "Bytes",
            _ => "Count",
        }
    }

    /// Published only for fair queues.
    pub fn fair(self) -> bool {
        matches!(
            self,
            SqsMetric::NoisyGroups
                | SqsMetric::VisibleInQuietGroups
                | SqsMetric::NotVisibleInQuietGroups
                | SqsMetric::DelayedInQuietGroups
                | SqsMetric::OldestAgeInQuietGroups
        )
    }

    /// This metric's samples in one minute: one per minute for gauges and counters, one per
    /// message for `SentMessageSize`. `None` when the minute has none.
    pub fn samples(self, minute: &QueueMinute) -> Option<Distribution> {
        let gauge = |pick: fn(&Gauges) -> u64| minute.gauges.as_ref().map(|g| Distribution::single(pick(g) as f64));
        let fair = |pick: fn(&FairGauges) -> Option<u64>| {
            let value = pick(minute.gauges.as_ref()?.fair.as_ref()?)?;
            Some(Distribution::single(value as f64))
        };
        match self {
            SqsMetric::Visible => gauge(|g| g.visible),
            SqsMetric::NotVisible => gauge(|g| g.not_visible),
            SqsMetric::Delayed => gauge(|g| g.delayed),
            SqsMetric::OldestAge => gauge(|g| g.oldest_age_seconds),
            SqsMetric::Sent => Some(Distribution::single(minute.sent as f64)),
            SqsMetric::Received => Some(Distribution::single(minute.received as f64)),
            SqsMetric::Deleted => Some(Distribution::single(minute.deleted as f64)),
            SqsMetric::EmptyReceives => Some(Distribution::single(minute.empty_receives as f64)),
            SqsMetric::SentSize => (minute.sent_size.count > 0).then(|| minute.sent_size.clone()),
            SqsMetric::NoisyGroups => fair(|f| Some(f.noisy_groups)),
            SqsMetric::VisibleInQuietGroups => fair(|f| Some(f.visible_in_quiet_groups)),
            SqsMetric::NotVisibleInQuietGroups => fair(|f| Some(f.not_visible_in_quiet_groups)),
            SqsMetric::DelayedInQuietGroups => fair(|f| Some(f.delayed_in_quiet_groups)),
            SqsMetric::OldestAgeInQuietGroups => fair(|f| f.oldest_age_in_quiet_groups_seconds),
        }
    }
}

/// A statistic a datapoint can carry.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Statistic {
    SampleCount,
    Average,
    Sum,
    Minimum,
    Maximum,
    /// `pNN`: the NNth percentile.
    Percentile(f64),
}

impl Statistic {
    fn parse_standard(name: &str) -> Option<Self> {
        Some(match name {
            "SampleCount" => Statistic::SampleCount,
            "Average" => Statistic::Average,
            "Sum" => Statistic::Sum,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            _ => return None,
        })
    }

    /// `p0`–`p100` with up to ten decimals (`p99.9`), as CloudWatch accepts; the other extended
    /// statistics (trimmed means and such) are not computed here.
    fn parse_percentile(name: &str) -> Option<Self> {
        let digits = name.strip_prefix('p')?;
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 3 || !plain(whole) || !plain(fraction) || fraction.len() > 10 {
            return None;
        }
        if digits.ends_with('.') {
            return None;
        }
        let value: f64 = digits.parse().ok()?;
        (0.0..=100.0).contains(&value).then_some(Statistic::Percentile(value))
    }

    fn of(self, samples: &Distribution) -> Option<f64> {
        if samples.count == 0 {
            return None;
        }
        Some(match self {
            Statistic::SampleCount => samples.count as f64,
            Statistic::Average => samples.sum / samples.count as f64,
            Statistic::Sum => samples.sum,
            Statistic::Minimum => samples.min,
            Statistic::Maximum => samples.max,
            Statistic::Percentile(p) => samples.percentile(p)?,
        })
    }
}

/// Which queue a metric names, if it is one of SQS's: the namespace is `AWS/SQS`, the name is a
/// metric SQS publishes, and the only dimension is `QueueName`.
fn sqs_metric(metric: &Metric) -> Option<(SqsMetric, &str)> {
    if metric.namespace.as_deref() != Some(NAMESPACE) {
        return None;
    }
    let which = SqsMetric::from_name(metric.metric_name.as_deref()?)?;
    match metric.dimensions.as_slice() {
        [Dimension { name, value }] if name == QUEUE_NAME => Some((which, value.as_str())),
        _ => None,
    }
}

fn check_period(period: i64, parameter: &str) -> Result<(), CloudWatchError> {
    if period < 1 {
        return Err(CloudWatchError::invalid_parameter_value(format!(
            "The parameter {parameter} must be greater than 0."
        )));
    }
    if ![1, 5, 10, 30].contains(&period) && period % 60 != 0 {
        return Err(CloudWatchError::invalid_parameter_value(format!(
            "The parameter {parameter} must be a multiple of 60."
        )));
    }
    Ok(())
}

fn check_times(start: Millis, end: Millis) -> Result<(), CloudWatchError> {
    if start >= end {
        return Err(CloudWatchError::invalid_parameter_value(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    Ok(())
}

/// Statistics per period: bucket start (epoch ms, a multiple of the period) → merged samples.
fn by_period(
    minutes: &[QueueMinute],
    metric: SqsMetric,
    start: Millis,
    end: Millis,
    period_ms: i64,
) -> Vec<(Millis, Distribution)> {
    let first = start.div_euclid(period_ms) * period_ms;
    let mut buckets: Vec<(Millis, Distribution)> = Vec::new();
    for minute in minutes.iter().filter(|m| m.minute >= first && m.minute < end) {
        let Some(samples) = metric.samples(minute) else { continue };
        let bucket = minute.minute.div_euclid(period_ms) * period_ms;
        match buckets.last_mut() {
            Some((at, merged)) if *at == bucket => merged.merge(&samples),
            _ => buckets.push((bucket, samples)),
        }
    }
    buckets
}

impl Sqs {
    /// Answers a CloudWatch request for the caller's account, in the request's region.
    pub async fn cloudwatch(
        &self,
        ctx: &RequestContext,
        request: CloudWatchRequest,
    ) -> Result<CloudWatchResponse, CloudWatchError> {
        let action = match &request {
            CloudWatchRequest::GetMetricStatistics(_) => "cloudwatch:GetMetricStatistics",
            CloudWatchRequest::GetMetricData(_) => "cloudwatch:GetMetricData",
            CloudWatchRequest::ListMetrics(_) => "cloudwatch:ListMetrics",
        };
        self.authorize_service_action(ctx, action).map_err(|e| CloudWatchError::from_sqs(&e))?;
        Ok(match request {
            CloudWatchRequest::GetMetricStatistics(r) => {
                CloudWatchResponse::GetMetricStatistics(self.get_metric_statistics(ctx, r).await?)
            }
            CloudWatchRequest::GetMetricData(r) => {
                CloudWatchResponse::GetMetricData(self.get_metric_data(ctx, r).await?)
            }
            CloudWatchRequest::ListMetrics(r) => CloudWatchResponse::ListMetrics(self.list_metrics(ctx, r).await?),
        })
    }

    async fn get_metric_statistics(
        &self,
        ctx: &RequestContext,
        req: GetMetricStatisticsRequest,
    ) -> Result<GetMetricStatisticsResponse, CloudWatchError> {
        check_times(req.start_time, req.end_time)?;
        check_period(req.period, "Period")?;
        if req.statistics.is_empty() && req.extended_statistics.is_empty() {
            return Err(CloudWatchError::missing_parameter(
                "Must specify either the parameter Statistics or the parameter ExtendedStatistics.",
            ));
        }
        if req.statistics.len() > 5 || req.extended_statistics.len() > 10 {
            return Err(CloudWatchError::invalid_parameter_value(
                "At most 5 Statistics and 10 ExtendedStatistics may be requested.",
            ));
        }
        let mut standard = Vec::new();
        for name in &req.statistics {
            let statistic = Statistic::parse_standard(name).ok_or_else(|| {
                CloudWatchError::invalid_parameter_value(format!(
                    "The value {name} for parameter Statistics is not a valid statistic."
                ))
            })?;
            standard.push((name.as_str(), statistic));
        }
        let mut extended = Vec::new();
        for name in &req.extended_statistics {
            let statistic = Statistic::parse_percentile(name).ok_or_else(|| {
                CloudWatchError::invalid_parameter_value(format!(
                    "The value {name} for parameter ExtendedStatistics is not supported."
                ))
            })?;
            extended.push((name.clone(), statistic));
        }
        let period_ms = req.period * 1000;
        let requested = (req.end_time - req.start_time + period_ms - 1) / period_ms;
        if requested > MAX_STATISTICS_DATAPOINTS {
            return Err(CloudWatchError::invalid_parameter_combination(format!(
                "You have requested up to {requested} datapoints, which exceeds the limit of {MAX_STATISTICS_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, or decreasing the time range."
            )));
        }
        let label = req.metric.metric_name.clone().unwrap_or_default();
        let Some((metric, queue)) = sqs_metric(&req.metric) else {
            return Ok(GetMetricStatisticsResponse { label, datapoints: Vec::new() });
        };
        if req.unit.as_deref().is_some_and(|unit| unit != metric.unit()) {
            return Ok(GetMetricStatisticsResponse { label, datapoints: Vec::new() });
        }
        let period_ms = req.period.max(60) * 1000;
        let minutes =
            self.metric_minutes(ctx, queue, req.start_time.div_euclid(period_ms) * period_ms, req.end_time).await?;
        let datapoints = by_period(&minutes, metric, req.start_time, req.end_time, period_ms)
            .into_iter()
            .map(|(at, samples)| {
                let value = |statistic: Statistic| statistic.of(&samples);
                let mut point =
                    Datapoint { timestamp: at, unit: Some(metric.unit().to_owned()), ..Datapoint::default() };
                for (name, statistic) in &standard {
                    let slot = match *name {
                        "SampleCount" => &mut point.sample_count,
                        "Average" => &mut point.average,
                        "Sum" => &mut point.sum,
                        "Minimum" => &mut point.minimum,
                        _ => &mut point.maximum,
                    };
                    *slot = value(*statistic);
                }
                point.extended_statistics =
                    extended.iter().filter_map(|(name, s)| Some((name.clone(), value(*s)?))).collect();
                point
            })
            .collect();
        Ok(GetMetricStatisticsResponse { label, datapoints })
    }

    async fn get_metric_data(
        &self,
        ctx: &RequestContext,
        req: GetMetricDataRequest,
    ) -> Result<GetMetricDataResponse, CloudWatchError> {
        check_times(req.start_time, req.end_time)?;
        if req.queries.is_empty() || req.queries.len() > MAX_DATA_QUERIES {
            return Err(CloudWatchError::invalid_parameter_value(format!(
                "The collection MetricDataQueries must not be empty and must not have more than {MAX_DATA_QUERIES} elements."
            )));
        }
        let ascending = match req.scan_by.as_deref() {
            None | Some("TimestampDescending") => false,
            Some("TimestampAscending") => true,
            Some(other) => {
                return Err(CloudWatchError::invalid_parameter_value(format!(
                    "The value {other} for parameter ScanBy is not valid: TimestampDescending or TimestampAscending."
                )))
            }
        };
        let max_datapoints = match req.max_datapoints {
            None => MAX_DATAPOINTS,
            Some(n) if n >= 1 => n.min(MAX_DATAPOINTS),
            Some(n) => {
                return Err(CloudWatchError::invalid_parameter_value(format!(
                    "The value {n} for parameter MaxDatapoints must be at least 1."
                )))
            }
        } as usize;
        let skip = match &req.next_token {
            None => 0,
            Some(token) => decode_token(token)?,
        };
        let mut seen_ids = std::collections::HashSet::new();
        let mut plans = Vec::new();
        for (index, query) in req.queries.iter().enumerate() {
            let member = format!("MetricDataQueries.member.{}", index + 1);
            let id_ok = query.id.len() <= 255
                && query.id.starts_with(|c: char| c.is_ascii_lowercase())
                && query.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !id_ok {
                return Err(CloudWatchError::invalid_parameter_value(format!(
                    "The value {} for parameter {member}.Id is not valid: it must start with a lowercase letter and hold only letters, digits and underscores.",
                    query.id
                )));
            }
            if !seen_ids.insert(query.id.as_str()) {
                return Err(CloudWatchError::invalid_parameter_value(format!(
                    "The value {} for parameter {member}.Id is not unique.",
                    query.id
                )));
            }
            let stat = match (&query.metric_stat, &query.expression) {
                (Some(stat), None) => stat,
                (None, Some(_)) => {
                    return Err(CloudWatchError::invalid_parameter_value(format!(
                        "{member}.Expression: metric math expressions are not supported by this server; use MetricStat."
                    )))
                }
                _ => {
                    return Err(CloudWatchError::invalid_parameter_combination(format!(
                        "Exactly one of {member}.MetricStat and {member}.Expression must be given."
                    )))
                }
            };
            check_period(stat.period, &format!("{member}.MetricStat.Period"))?;
            let statistic = Statistic::parse_standard(&stat.stat)
                .or_else(|| Statistic::parse_percentile(&stat.stat))
                .ok_or_else(|| {
                CloudWatchError::invalid_parameter_value(format!(
                    "The value {} for parameter {member}.MetricStat.Stat is not supported.",
                    stat.stat
                ))
            })?;
            plans.push((query, stat, statistic));
        }
        // Each queue's minutes are read once, however many queries name it, from the start of
        // the earliest period any query asks for.
        let read_from = plans
            .iter()
            .map(|(_, stat, _)| {
                let period_ms = stat.period.max(60) * 1000;
                req.start_time.div_euclid(period_ms) * period_ms
            })
            .min()
            .unwrap_or(req.start_time);
        // Each queue's minutes are read once, however many queries name it.
        let mut minutes_of: HashMap<String, Vec<QueueMinute>> = HashMap::new();
        let mut results = Vec::new();
        let (mut skipped, mut returned, mut truncated) = (0usize, 0usize, false);
        for (query, stat, statistic) in plans {
            if query.return_data == Some(false) {
                continue;
            }
            let label = query.label.clone().unwrap_or_else(|| stat.metric.metric_name.clone().unwrap_or_default());
            let mut result =
                MetricDataResult { id: query.id.clone(), label, status_code: "Complete".into(), ..Default::default() };
            let wanted = sqs_metric(&stat.metric)
                .filter(|(metric, _)| stat.unit.as_deref().is_none_or(|unit| unit == metric.unit()));
            if let Some((metric, queue)) = wanted {
                let period_ms = stat.period.max(60) * 1000;
                if !minutes_of.contains_key(queue) {
                    let read = self.metric_minutes(ctx, queue, read_from, req.end_time).await?;
                    minutes_of.insert(queue.to_owned(), read);
                }
                let mut points: Vec<(Millis, f64)> =
                    by_period(&minutes_of[queue], metric, req.start_time, req.end_time, period_ms)
                        .into_iter()
                        .filter_map(|(at, samples)| Some((at, statistic.of(&samples)?)))
                        .collect();
                if !ascending {
                    points.reverse();
                }
                for (at, value) in points {
                    if skipped < skip {
                        skipped += 1;
                        continue;
                    }
                    if returned == max_datapoints {
                        truncated = true;
                        result.status_code = "PartialData".into();
                        break;
                    }
                    result.timestamps.push(at);
                    result.values.push(value);
                    returned += 1;
                }
            }
            results.push(result);
        }
        let next_token = truncated.then(|| encode_token(skip + returned));
        Ok(GetMetricDataResponse { results, next_token })
    }

    async fn list_metrics(
        &self,
        ctx: &RequestContext,
        req: ListMetricsRequest,
    ) -> Result<ListMetricsResponse, CloudWatchError> {
        let skip = match &req.next_token {
            None => 0,
            Some(token) => decode_token(token)?,
        };
        match req.recently_active.as_deref() {
            None | Some("PT3H") => {}
            Some(other) => {
                return Err(CloudWatchError::invalid_parameter_value(format!(
                    "The value {other} for parameter RecentlyActive is not valid: PT3H is the only value."
                )))
            }
        }
        if req.namespace.as_deref().is_some_and(|ns| ns != NAMESPACE)
            || req.metric_name.as_deref().is_some_and(|name| SqsMetric::from_name(name).is_none())
            || req.dimensions.iter().any(|filter| filter.name != QUEUE_NAME)
        {
            return Ok(ListMetricsResponse::default());
        }
        let now = self.now();
        let window = if req.recently_active.is_some() { RECENTLY_ACTIVE_MS } else { LIST_WINDOW_MS };
        let (account, region) = (ctx.account(self), ctx.region(self));
        let mut queues = self.store.metric_queues(account, region, now - window).await.map_err(store_failure)?;
        // Queues used in the minute still open are listed before their first row is written.
        for key in self.recorder.pending_queues() {
            if &*key.account == account && &*key.region == region && !queues.iter().any(|q| *q.name == *key.name) {
                queues.push(MetricQueue { name: key.name.to_string(), last_minute: minute_of(now), fair: false });
            }
        }
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        let mut metrics = Vec::new();
        for queue in queues {
            if req.dimensions.iter().any(|f| f.value.as_deref().is_some_and(|v| v != queue.name)) {
                continue;
            }
            for metric in SqsMetric::ALL {
                if metric.fair() && !queue.fair {
                    continue;
                }
                if req.metric_name.as_deref().is_some_and(|name| name != metric.name()) {
                    continue;
                }
                metrics.push(Metric {
                    namespace: Some(NAMESPACE.into()),
                    metric_name: Some(metric.name().into()),
                    dimensions: vec![Dimension { name: QUEUE_NAME.into(), value: queue.name.clone() }],
                });
            }
        }
        let page: Vec<Metric> = metrics.iter().skip(skip).take(LIST_PAGE).cloned().collect();
        let next_token = (skip + page.len() < metrics.len()).then(|| encode_token(skip + page.len()));
        Ok(ListMetricsResponse { metrics: page, next_token })
    }

    /// The minutes of queue `queue` (by name) from `from` to `to`: those stored, then those
    /// still in memory, the open minute with its gauges sampled now.
    async fn metric_minutes(
        &self,
        ctx: &RequestContext,
        queue: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<QueueMinute>, CloudWatchError> {
        let (account, region) = (ctx.account(self), ctx.region(self));
        let mut minutes = self.store.queue_minutes(account, region, queue, from, to).await.map_err(store_failure)?;
        let now = self.now();
        let open = minute_of(now);
        if to <= open - MINUTE_MS || !self.config.record_metrics() {
            return Ok(minutes);
        }
        let Some(live) = self.store.get_queue(account, region, queue).await.map_err(store_failure)? else {
            return Ok(minutes);
        };
        // The minute that just ended may still be in memory if it has not been written yet.
        for minute in [open - MINUTE_MS, open] {
            if minute < from || minute >= to || minutes.iter().any(|m| m.minute == minute) {
                continue;
            }
            let pending = self.recorder.open_minute(live.id, minute);
            let gauges = if minute == open {
                Some(self.sample_gauges(&live).await.map_err(|e| CloudWatchError::internal(e.message))?)
            } else {
                None
            };
            if pending.is_none() && gauges.is_none() {
                continue;
            }
            let row = match pending {
                Some(pending) => pending.into_minute(minute, gauges),
                None => QueueMinute {
                    account: live.account_id.clone(),
                    region: live.region.clone(),
                    queue: live.name.clone(),
                    minute,
                    gauges,
                    ..QueueMinute::default()
                },
            };
            minutes.push(row);
        }
        Ok(minutes)
    }
}

fn store_failure(error: crate::store::StoreError) -> CloudWatchError {
    let error = crate::service::from_store(error);
    CloudWatchError::from_sqs(&error)
}

/// Pagination tokens say how many items the earlier pages held.
fn encode_token(offset: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("holdfast:{offset}"))
}

fn decode_token(token: &str) -> Result<usize, CloudWatchError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("holdfast:")?.parse().ok())
        .ok_or_else(|| CloudWatchError::invalid_next_token("The NextToken is not one this server issued."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_names() {
        assert_eq!(Statistic::parse_percentile("p99"), Some(Statistic::Percentile(99.0)));
        assert_eq!(Statistic::parse_percentile("p99.9"), Some(Statistic::Percentile(99.9)));
        assert_eq!(Statistic::parse_percentile("p0"), Some(Statistic::Percentile(0.0)));
        assert_eq!(Statistic::parse_percentile("p100"), Some(Statistic::Percentile(100.0)));
        for bad in ["p", "p101", "p99.", "P99", "tm99", "p-1", "p1e2", "p9999"] {
            assert_eq!(Statistic::parse_percentile(bad), None, "{bad}");
        }
    }

    #[test]
    fn periods() {
        for ok in [1, 5, 10, 30, 60, 300, 86_400] {
            assert!(check_period(ok, "Period").is_ok(), "{ok}");
        }
        for bad in [0, -60, 2, 59, 61, 90] {
            assert!(check_period(bad, "Period").is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_round_trip_and_strangers_are_refused() {
        assert_eq!(decode_token(&encode_token(1234)).unwrap(), 1234);
        assert_eq!(decode_token("nonsense").unwrap_err().code, "InvalidNextToken");
    }

    #[test]
    fn minutes_group_into_periods() {
        let minute = |at: Millis, sent: u64| QueueMinute { minute: at, sent, ..QueueMinute::default() };
        let rows = [minute(0, 1), minute(60_000, 2), minute(300_000, 4), minute(360_000, 8)];
        let buckets = by_period(&rows, SqsMetric::Sent, 0, 600_000, 300_000);
        let sums: Vec<(Millis, f64, u64)> = buckets.iter().map(|(at, d)| (*at, d.sum, d.count)).collect();
        assert_eq!(sums, vec![(0, 3.0, 2), (300_000, 12.0, 2)]);
        assert!(by_period(&rows, SqsMetric::Visible, 0, 600_000, 60_000).is_empty(), "no gauges sampled");
    }
}
