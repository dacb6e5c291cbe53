//! The remote_write 1.0 wire format: a protobuf `WriteRequest`, snappy
//! block-compressed, built from a registry's `gather()`.
//!
//! The four messages are declared here with prost's derive macros, field for
//! field as in Prometheus's `prompb/remote.proto` and `prompb/types.proto`
//! (protocol 1.0 needs no other fields), so no protoc runs at build time.

use prometheus::proto::{Histogram, LabelPair, MetricFamily, MetricType, Summary};

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels sorted by name, samples oldest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: a value at a time in milliseconds since the epoch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The headers every remote_write 1.0 request carries.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
pub const CONTENT_ENCODING: &str = "snappy";
pub const VERSION_HEADER: &str = "X-Prometheus-Remote-Write-Version";
pub const VERSION: &str = "0.1.0";

/// Labels added to every series: who pushed it.
#[derive(Clone, Debug)]
pub struct Identity {
    pub job: String,
    pub instance: String,
}

/// One sample of every series in `families`, at `timestamp_ms`, with the
/// series named as the text exposition names them (`_bucket{le}`, `_sum`,
/// `_count`; `le` and `quantile` written as the text encoder writes them), so
/// pushed and scraped series are the same series.
pub fn write_request(
    families: &[MetricFamily],
    identity: &Identity,
    timestamp_ms: i64,
) -> WriteRequest {
    let mut series = SeriesWriter {
        identity,
        timestamp_ms,
        timeseries: Vec::new(),
    };
    for family in families {
        let name = family.name();
        for metric in family.get_metric() {
            let labels = metric.get_label();
            match family.get_field_type() {
                MetricType::COUNTER => {
                    series.push(name, labels, None, metric.get_counter().get_value())
                }
                MetricType::GAUGE => {
                    series.push(name, labels, None, metric.get_gauge().get_value())
                }
                // The client library never produces untyped metrics (its own text
                // encoder cannot write them either).
                MetricType::UNTYPED => {}
                MetricType::HISTOGRAM => series.histogram(name, labels, metric.get_histogram()),
                MetricType::SUMMARY => series.summary(name, labels, metric.get_summary()),
            }
        }
    }
    WriteRequest {
        timeseries: series.timeseries,
    }
}

/// Collects one-sample series, each labelled with the pusher's identity.
struct SeriesWriter<'a> {
    identity: &'a Identity,
    timestamp_ms: i64,
    timeseries: Vec<TimeSeries>,
}

impl SeriesWriter<'_> {
    fn push(
        &mut self,
        name: &str,
        labels: &[LabelPair],
        extra: Option<(&str, String)>,
        value: f64,
    ) {
        let mut all: Vec<Label> = Vec::with_capacity(labels.len() + 4);
        all.push(Label {
            name: "__name__".into(),
            value: name.to_string(),
        });
        all.extend(labels.iter().map(|l| Label {
            name: l.name().to_string(),
            value: l.value().to_string(),
        }));
        if let Some((name, value)) = extra {
            all.push(Label {
                name: name.to_string(),
                value,
            });
        }
        // The registry's own labels win over the pusher's identity, as
        // honor_labels would have it: a metric that has `job` keeps it.
        for (name, value) in [
            ("job", &self.identity.job),
            ("instance", &self.identity.instance),
        ] {
            if !all.iter().any(|l| l.name == name) {
                all.push(Label {
                    name: name.to_string(),
                    value: value.clone(),
                });
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        self.timeseries.push(TimeSeries {
            labels: all,
            samples: vec![Sample {
                value,
                timestamp: self.timestamp_ms,
            }],
        });
    }

    /// `_bucket{le}` for every bucket (with `+Inf` added when the client
    /// library left it implicit), `_sum` and `_count`.
    fn histogram(&mut self, name: &str, labels: &[LabelPair], h: &Histogram) {
        let bucket_name = format!("{name}_bucket");
        let mut inf_seen = false;
        for bucket in h.get_bucket() {
            let upper = bucket.upper_bound();
            inf_seen |= upper.is_infinite() && upper.is_sign_positive();
            let count = bucket.cumulative_count() as f64;
            self.push(&bucket_name, labels, Some(("le", le(upper))), count);
        }
        let count = h.get_sample_count() as f64;
        if !inf_seen {
            self.push(
                &bucket_name,
                labels,
                Some(("le", "+Inf".to_string())),
                count,
            );
        }
        self.push(&format!("{name}_sum"), labels, None, h.get_sample_sum());
        self.push(&format!("{name}_count"), labels, None, count);
    }

    /// One series per quantile, `_sum` and `_count`.
    fn summary(&mut self, name: &str, labels: &[LabelPair], s: &Summary) {
        for q in s.get_quantile() {
            let quantile = Some(("quantile", q.quantile().to_string()));
            self.push(name, labels, quantile, q.value());
        }
        self.push(&format!("{name}_sum"), labels, None, s.sample_sum());
        let count = s.sample_count() as f64;
        self.push(&format!("{name}_count"), labels, None, count);
    }
}

/// An upper bound as the text exposition writes it.
fn le(upper: f64) -> String {
    if upper.is_infinite() && upper.is_sign_positive() {
        "+Inf".to_string()
    } else {
        upper.to_string()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot compress a write request")]
pub struct EncodeError(#[from] snap::Error);

/// The request body: protobuf, then snappy's block format (not its framed
/// stream format, which remote_write does not use).
pub fn encode(request: &WriteRequest) -> Result<Vec<u8>, EncodeError> {
    let protobuf = prost::Message::encode_to_vec(request);
    Ok(snap::raw::Encoder::new().compress_vec(&protobuf)?)
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not snappy block data")]
    Snappy(#[from] snap::Error),
    #[error("not a write request")]
    Protobuf(#[from] prost::DecodeError),
}

/// The inverse of [`encode`], for tests and for receivers.
pub fn decode(body: &[u8]) -> Result<WriteRequest, DecodeError> {
    let protobuf = snap::raw::Decoder::new().decompress_vec(body)?;
    Ok(prost::Message::decode(protobuf.as_slice())?)
}

/// How many samples a request carries.
pub fn sample_count(request: &WriteRequest) -> usize {
    request.timeseries.iter().map(|t| t.samples.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

    fn identity() -> Identity {
        Identity {
            job: "casewatch".into(),
            instance: "north".into(),
        }
    }

    fn labels(series: &TimeSeries) -> Vec<(String, String)> {
        series
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect()
    }

    #[test]
    fn counters_and_histograms_become_the_series_a_scrape_would_store() {
        let registry = Registry::new_custom(
            None,
            Some([("site".to_string(), "north".to_string())].into()),
        )
        .unwrap();
        let runs = IntCounterVec::new(Opts::new("runs_total", "runs"), &["outcome"]).unwrap();
        registry.register(Box::new(runs.clone())).unwrap();
        runs.with_label_values(&["ok"]).inc_by(7);
        let h = Histogram::with_opts(
            HistogramOpts::new("took_seconds", "took").buckets(vec![0.5, 1.0]),
        )
        .unwrap();
        registry.register(Box::new(h.clone())).unwrap();
        h.observe(0.7);

        let request = write_request(&registry.gather(), &identity(), 1_700_000_000_123);
        let names: Vec<String> = request
            .timeseries
            .iter()
            .map(|t| t.labels[0].value.clone())
            .collect();
        assert_eq!(
            names,
            [
                "runs_total",
                "took_seconds_bucket",
                "took_seconds_bucket",
                "took_seconds_bucket",
                "took_seconds_sum",
                "took_seconds_count"
            ]
        );
        assert_eq!(
            labels(&request.timeseries[0]),
            [
                ("__name__", "runs_total"),
                ("instance", "north"),
                ("job", "casewatch"),
                ("outcome", "ok"),
                ("site", "north")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(
            request.timeseries[0].samples,
            [Sample {
                value: 7.0,
                timestamp: 1_700_000_000_123
            }]
        );
        let les: Vec<String> = request.timeseries[1..4]
            .iter()
            .map(|t| {
                t.labels
                    .iter()
                    .find(|l| l.name == "le")
                    .unwrap()
                    .value
                    .clone()
            })
            .collect();
        assert_eq!(les, ["0.5", "1", "+Inf"]);
        let counts: Vec<f64> = request.timeseries[1..4]
            .iter()
            .map(|t| t.samples[0].value)
            .collect();
        assert_eq!(counts, [0.0, 1.0, 1.0]);
        assert_eq!(sample_count(&request), 6);
    }

    #[test]
    fn labels_are_sorted_by_name_and_the_registry_wins_over_the_identity() {
        let registry = Registry::new();
        let c = IntCounterVec::new(Opts::new("x_total", "x"), &["zone", "job"]).unwrap();
        registry.register(Box::new(c.clone())).unwrap();
        c.with_label_values(&["a", "own"]).inc();
        let request = write_request(&registry.gather(), &identity(), 1);
        let names: Vec<&str> = request.timeseries[0]
            .labels
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(names, ["__name__", "instance", "job", "zone"]);
        assert_eq!(request.timeseries[0].labels[2].value, "own");
    }

    #[test]
    fn encoding_is_snappy_block_over_protobuf_and_round_trips() {
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 42,
                }],
            }],
        };
        let body = encode(&request).unwrap();
        // Snappy's block format starts with the uncompressed length as a
        // varint; the framed format would start with its 0xff stream header.
        let protobuf = prost::Message::encode_to_vec(&request);
        assert_eq!(body[0] as usize, protobuf.len());
        assert_eq!(
            snap::raw::Decoder::new().decompress_vec(&body).unwrap(),
            protobuf
        );
        assert_eq!(decode(&body).unwrap(), request);
        assert!(decode(b"\xffnot snappy").is_err());
    }
}
