use super::*;
use holdfast_api::cloudwatch::{GetMetricStatisticsResponse, ListMetricsResponse};

fn request<'a>(
    method: &'a http::Method,
    uri: &'a http::Uri,
    headers: &'a http::HeaderMap,
    body: &'a [u8],
) -> HttpRequest<'a> {
    HttpRequest { method, uri, headers, body }
}

#[test]
fn routes_each_protocol_and_leaves_sqs_alone() {
    let post = http::Method::POST;
    let root: http::Uri = "/".parse().unwrap();
    let cbor_path: http::Uri = "/service/GraniteServiceVersion20100801/operation/ListMetrics".parse().unwrap();
    let none = http::HeaderMap::new();
    assert_eq!(protocol_of(&request(&post, &cbor_path, &none, b""), None), Some(Protocol::Cbor));

    let mut json = http::HeaderMap::new();
    json.insert("x-amz-target", "GraniteServiceVersion20100801.GetMetricData".parse().unwrap());
    assert_eq!(protocol_of(&request(&post, &root, &json, b"{}"), None), Some(Protocol::Json));
    let mut sqs = http::HeaderMap::new();
    sqs.insert("x-amz-target", "AmazonSQS.SendMessage".parse().unwrap());
    assert_eq!(protocol_of(&request(&post, &root, &sqs, b"{}"), None), None);

    let form = b"Action=ListMetrics&Version=2010-08-01";
    assert_eq!(protocol_of(&request(&post, &root, &none, form), None), Some(Protocol::Query));
    assert_eq!(protocol_of(&request(&post, &root, &none, form), Some("monitoring")), Some(Protocol::Query));
    assert_eq!(protocol_of(&request(&post, &root, &none, b"Action=ListQueues&Version=2012-11-05"), None), None);
    assert_eq!(protocol_of(&request(&post, &root, &none, b"Action=ListQueues"), Some("sqs")), None);
}

#[test]
fn query_parameters_become_a_tree() {
    let body = b"Action=GetMetricData&Version=2010-08-01&StartTime=2026-12-07T07%3A00%3A00Z&EndTime=2026-12-07T08%3A00%3A00Z\
&MetricDataQueries.member.1.Id=m1&MetricDataQueries.member.1.MetricStat.Period=60&MetricDataQueries.member.1.MetricStat.Stat=Sum\
&MetricDataQueries.member.1.MetricStat.Metric.Namespace=AWS%2FSQS&MetricDataQueries.member.1.MetricStat.Metric.MetricName=NumberOfMessagesSent\
&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name=QueueName&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Value=jobs\
&MetricDataQueries.member.1.ReturnData=true";
    let (post, root, headers) = (http::Method::POST, "/".parse().unwrap(), http::HeaderMap::new());
    let decoded = decode(&request(&post, &root, &headers, body), Protocol::Query);
    let Ok(CloudWatchRequest::GetMetricData(r)) = decoded.request else { panic!("{:?}", decoded.request) };
    assert_eq!(r.end_time - r.start_time, 3_600_000);
    let stat = r.queries[0].metric_stat.as_ref().unwrap();
    assert_eq!((stat.period, stat.stat.as_str()), (60, "Sum"));
    assert_eq!(stat.metric.dimensions[0].value, "jobs");
    assert_eq!(r.queries[0].return_data, Some(true));
}

#[test]
fn missing_and_malformed_members_get_cloudwatch_errors() {
    let (post, root, headers) = (http::Method::POST, "/".parse().unwrap(), http::HeaderMap::new());
    let decoded =
        decode(&request(&post, &root, &headers, b"Action=GetMetricStatistics&Version=2010-08-01"), Protocol::Query);
    let error = decoded.request.unwrap_err();
    assert_eq!((error.code, error.message.as_str()), ("MissingParameter", "The parameter Namespace is required."));

    let body =
        b"Action=GetMetricStatistics&Namespace=AWS%2FSQS&MetricName=X&StartTime=yesterday&EndTime=2026-12-07&Period=60";
    let error = decode(&request(&post, &root, &headers, body), Protocol::Query).request.unwrap_err();
    assert_eq!(error.code, "InvalidParameterValue");
    assert!(error.message.contains("StartTime"), "{}", error.message);

    let body = b"Action=PutMetricData&Version=2010-08-01";
    let decoded = decode(&request(&post, &root, &headers, body), Protocol::Query);
    assert_eq!(decoded.request.unwrap_err().code, "InvalidAction");

    let body = b"Action=ListMetrics&Dimensions.member.99999.Name=QueueName";
    assert!(decode(&request(&post, &root, &headers, body), Protocol::Query).request.is_err());

    let cbor_path: http::Uri = "/service/GraniteServiceVersion20100801/operation/ListMetrics".parse().unwrap();
    let error = decode(&request(&post, &cbor_path, &headers, &[0xff]), Protocol::Cbor).request.unwrap_err();
    assert_eq!(error.code, "SerializationException");
}

#[test]
fn cbor_requests_decode_with_timestamps() {
    let mut w = cbor::Writer::default();
    w.map(5);
    w.text("Namespace");
    w.text("AWS/SQS");
    w.text("MetricName");
    w.text("NumberOfMessagesSent");
    w.text("StartTime");
    w.timestamp(1_800_000_000_000);
    w.text("EndTime");
    w.timestamp(1_800_000_060_000);
    w.text("Period");
    w.out.extend_from_slice(&[0x18, 60]);
    let path: http::Uri = "/service/GraniteServiceVersion20100801/operation/GetMetricStatistics".parse().unwrap();
    let (post, headers) = (http::Method::POST, http::HeaderMap::new());
    let decoded = decode(&request(&post, &path, &headers, &w.out), Protocol::Cbor);
    let Ok(CloudWatchRequest::GetMetricStatistics(r)) = decoded.request else { panic!("{:?}", decoded.request) };
    assert_eq!((r.start_time, r.end_time, r.period), (1_800_000_000_000, 1_800_000_060_000, 60));
}

#[test]
fn answers_in_each_protocol() {
    let response = CloudWatchResponse::GetMetricStatistics(GetMetricStatisticsResponse {
        label: "NumberOfMessagesSent".into(),
        datapoints: vec![Datapoint {
            timestamp: 1_800_000_000_000,
            sum: Some(3.0),
            unit: Some("Count".into()),
            extended_statistics: vec![("p99".into(), 2.5)],
            ..Datapoint::default()
        }],
    });
    let xml = encode_response(Protocol::Query, &response, "rid");
    let text = String::from_utf8(xml.body().to_vec()).unwrap();
    assert!(text.starts_with("<GetMetricStatisticsResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><GetMetricStatisticsResult><Label>NumberOfMessagesSent</Label><Datapoints><member><Timestamp>2027-01-15T08:00:00Z</Timestamp><Sum>3.0</Sum><Unit>Count</Unit><ExtendedStatistics><entry><key>p99</key><value>2.5</value></entry></ExtendedStatistics></member></Datapoints>"), "{text}");

    let json_answer = encode_response(Protocol::Json, &response, "rid");
    let value: Value = serde_json::from_slice(json_answer.body()).unwrap();
    assert_eq!(value["Datapoints"][0]["Timestamp"], serde_json::json!(1_800_000_000.0));
    assert_eq!(value["Datapoints"][0]["ExtendedStatistics"]["p99"], serde_json::json!(2.5));

    let cbor_answer = encode_response(Protocol::Cbor, &response, "rid");
    assert_eq!(cbor_answer.headers()["smithy-protocol"], "rpc-v2-cbor");
    let value = cbor::decode(cbor_answer.body()).unwrap();
    assert_eq!(value["Datapoints"][0]["Sum"], serde_json::json!(3.0));
    assert_eq!(value["Datapoints"][0]["Timestamp"], serde_json::json!(1_800_000_000.0));

    let empty = CloudWatchResponse::ListMetrics(ListMetricsResponse::default());
    let text = String::from_utf8(encode_response(Protocol::Query, &empty, "r").body().to_vec()).unwrap();
    assert!(text.contains("<ListMetricsResult><Metrics></Metrics></ListMetricsResult>"), "{text}");
}

#[test]
fn errors_carry_the_query_code_everywhere() {
    let error = CloudWatchError::invalid_parameter_value("bad <period>");
    let xml = encode_error(Protocol::Query, &error, "rid");
    assert_eq!(xml.status(), 400);
    let text = String::from_utf8(xml.body().to_vec()).unwrap();
    assert!(
        text.contains("<Type>Sender</Type><Code>InvalidParameterValue</Code><Message>bad &lt;period&gt;</Message>"),
        "{text}"
    );
    for protocol in [Protocol::Json, Protocol::Cbor] {
        let answer = encode_error(protocol, &error, "rid");
        assert_eq!(answer.headers()["x-amzn-query-error"], "InvalidParameterValue;Sender");
    }
    let value = cbor::decode(encode_error(Protocol::Cbor, &error, "r").body()).unwrap();
    assert_eq!(value["__type"], "com.amazonaws.cloudwatch#InvalidParameterValueException");
}
