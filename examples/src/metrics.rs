//! The demo's metric exporter: the OpenTelemetry SDK's periodic reader
//! hands it what it collected; it prints one short line per instrument
//! group (each instrument's series summed) and keeps the last values, so
//! the demo can check them against the counters' snapshot.

use std::{
    collections::BTreeMap,
    io::Write as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{
        SdkMeterProvider, Temporality,
        data::{AggregatedMetrics, MetricData, ResourceMetrics},
        exporter::PushMetricExporter,
    },
};

/// Every series' last value, by `name{k=v,...}` (attributes sorted).
pub type Exported = Arc<Mutex<BTreeMap<String, u64>>>;

/// Prints selftrace's instruments, grouped, at each export.
#[derive(Debug, Clone, Default)]
pub struct ConsoleMetrics {
    last: Exported,
}

impl ConsoleMetrics {
    /// A meter provider whose periodic reader exports here every `interval`,
    /// and where the last values are kept; with `otlp_endpoint` (an
    /// OTLP/HTTP metrics URL, `.../v1/metrics`), a second periodic reader
    /// exports there through `opentelemetry-otlp`.
    ///
    /// # Errors
    ///
    /// The OTLP exporter's, when it cannot be built.
    pub fn provider(
        interval: Duration,
        otlp_endpoint: Option<&str>,
    ) -> Result<(SdkMeterProvider, Exported), opentelemetry_otlp::ExporterBuildError> {
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = ConsoleMetrics::default();
        let last = exporter.last.clone();
        let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter).with_interval(interval).build();
        let mut provider = SdkMeterProvider::builder().with_reader(reader);
        if let Some(endpoint) = otlp_endpoint {
            let otlp = opentelemetry_otlp::MetricExporter::builder().with_http().with_endpoint(endpoint).build()?;
            provider = provider
                .with_reader(opentelemetry_sdk::metrics::PeriodicReader::builder(otlp).with_interval(interval).build());
        }
        Ok((provider.build(), last))
    }
}

impl PushMetricExporter for ConsoleMetrics {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        for scope in metrics.scope_metrics() {
            for metric in scope.metrics() {
                let AggregatedMetrics::U64(data) = metric.data() else { continue };
                let points: Vec<(String, u64)> = match data {
                    MetricData::Sum(sum) => {
                        sum.data_points().map(|p| (series(metric.name(), p.attributes()), p.value())).collect()
                    }
                    MetricData::Gauge(gauge) => {
                        gauge.data_points().map(|p| (series(metric.name(), p.attributes()), p.value())).collect()
                    }
                    _ => Vec::new(),
                };
                for (key, value) in points {
                    *sums.entry(metric.name()).or_default() += value;
                    last.insert(key, value);
                }
            }
        }
        let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (name, value) in &sums {
            let short = name.strip_prefix("selftrace.").unwrap_or(name);
            let (group, rest) = short.split_once('.').unwrap_or(("", short));
            if *value > 0 {
                groups.entry(group).or_default().push(format!("{rest}={value}"));
            }
        }
        let mut out = std::io::stdout().lock();
        for (group, values) in groups {
            // Nothing useful can be done about a failing stdout.
            let _ =
                writeln!(out, "== metrics (OpenTelemetry, periodic reader) selftrace.{group}: {}", values.join(" "));
        }
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

fn series<'a>(name: &str, attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> String {
    let mut pairs: Vec<String> = attributes.map(|kv| format!("{}={}", kv.key, kv.value)).collect();
    pairs.sort();
    format!("{name}{{{}}}", pairs.join(","))
}
