//! What an OpenTelemetry meter provider exported, flattened: the last
//! value of each series, by instrument name and attributes.

use std::collections::BTreeMap;

use opentelemetry_sdk::metrics::{
    InMemoryMetricExporter, PeriodicReader, SdkMeterProvider,
    data::{AggregatedMetrics, MetricData},
};

/// A provider exporting into memory, and its exporter.
pub fn in_memory_provider() -> (SdkMeterProvider, InMemoryMetricExporter) {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder().with_reader(PeriodicReader::builder(exporter.clone()).build()).build();
    (provider, exporter)
}

/// One exported series: `name{k=v,...}` (attributes sorted), and whether
/// it is a monotonic sum (`true`) or a gauge.
pub type Series = BTreeMap<String, (u64, bool)>;

/// Collects now (`force_flush`) and returns the last value of every `u64`
/// series exported so far.
pub fn collect(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter) -> Series {
    provider.force_flush().expect("the provider collects");
    let mut series = Series::new();
    for resource in exporter.get_finished_metrics().expect("exported metrics") {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics() {
                let AggregatedMetrics::U64(data) = metric.data() else { continue };
                match data {
                    MetricData::Sum(sum) => {
                        for point in sum.data_points() {
                            series.insert(key(metric.name(), point.attributes()), (point.value(), sum.is_monotonic()));
                        }
                    }
                    MetricData::Gauge(gauge) => {
                        for point in gauge.data_points() {
                            series.insert(key(metric.name(), point.attributes()), (point.value(), false));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    series
}

fn key<'a>(name: &str, attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> String {
    let mut pairs: Vec<String> = attributes.map(|kv| format!("{}={}", kv.key, kv.value)).collect();
    pairs.sort();
    format!("{name}{{{}}}", pairs.join(","))
}

/// The value of series `key` (`name{k=v}`), or a panic listing what was
/// exported.
pub fn value(series: &Series, key: &str) -> u64 {
    match series.get(key) {
        Some((value, _)) => *value,
        None => panic!("no series {key}; exported: {:#?}", series.keys().collect::<Vec<_>>()),
    }
}
