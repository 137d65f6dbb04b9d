//! A small host engine built on selftrace-itr's node trait: pipelines of
//! tokio tasks joined by channels, configured in YAML, with selftrace's
//! three routing modes.
//!
//! Every node logs through `otel_*!` with its own telemetry and calls a
//! "library" that logs through plain `tracing`; the node's scope attributes
//! those events to the node too. An `internal_telemetry` pipeline carries
//! the engine's own logs (ITR → batch → console, and OTLP when configured).

pub mod config;
mod libs;

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    io::Write as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use selftrace::{OtlpBytes, SharedTelemetry, otel_debug, otel_info, otel_warn};
use selftrace_itr::{
    ReceiverHost, SelfTelemetry, SelfTelemetryMetrics, SetupError,
    receiver::{Control, InternalTelemetryReceiver, OutputClosed},
};
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
};

pub use self::config::EngineConfig;
use self::config::{
    BatchConfig, Component as _, ConsoleConfig, ExporterKind, GeneratorConfig, ProcessorKind, ReceiverKind, Verbosity,
};

/// The embedded configurations, one per mode (`--mode`).
pub const CONFIGS: &[(&str, &str)] = &[
    ("itr-only", include_str!("../../configs/itr-only.yaml")),
    ("hybrid", include_str!("../../configs/hybrid.yaml")),
    ("sdk-only", include_str!("../../configs/sdk-only.yaml")),
];

/// What moves between nodes.
#[derive(Clone, Debug)]
pub enum Batch {
    /// Sensor readings (the engine's data).
    Readings(Vec<f64>),
    /// OTLP log requests (the engine's own logs).
    Logs(Vec<OtlpBytes>),
}

impl Batch {
    fn len(&self) -> usize {
        match self {
            Batch::Readings(r) => r.len(),
            Batch::Logs(l) => l.len(),
        }
    }
}

/// How a run goes.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// How long the pipelines run before shutdown.
    pub duration: Duration,
    /// Keep what console exporters get instead of printing it (tests).
    pub capture: bool,
    /// An extra `otlp` exporter for the `internal_telemetry` pipeline.
    pub otlp_endpoint: Option<String>,
    /// The runtime the `internal_telemetry` pipelines run on: one whose
    /// threads are zone threads (`selftrace::pipeline::zone_thread_start`), so that
    /// nothing running there, scoped or not, feeds them. `None`: the
    /// caller's runtime.
    pub internal: Option<tokio::runtime::Handle>,
}

/// What a run did.
#[derive(Debug)]
pub struct Report {
    /// The counters at the end.
    pub metrics: SelfTelemetryMetrics,
    /// With `capture`: the log requests console exporters got, by exporter id.
    pub captured_logs: Vec<(String, OtlpBytes)>,
    /// With `capture`: readings console exporters got.
    pub captured_readings: usize,
}

/// Why a configuration cannot run.
#[derive(Debug)]
pub enum EngineError {
    /// selftrace's checks.
    Setup(SetupError),
    /// The engine's own checks of `pipelines`.
    Pipelines(String),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Setup(e) => write!(f, "configuration: {e}"),
            EngineError::Pipelines(e) => write!(f, "configuration: `pipelines`: {e}"),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<SetupError> for EngineError {
    fn from(e: SetupError) -> Self {
        EngineError::Setup(e)
    }
}

fn node_ids(pipeline: &config::PipelineConfig) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut seen = BTreeSet::new();
    let mut id = |role: &str, kind: &str| {
        let base = format!("{}/{role}/{kind}", pipeline.name);
        let mut id = base.clone();
        let mut n = 2;
        while !seen.insert(id.clone()) {
            id = format!("{base}#{n}");
            n += 1;
        }
        id
    };
    let receivers = pipeline.receivers.iter().map(|r| id("receiver", r.kind())).collect();
    let processors = pipeline.processors.iter().map(|p| id("processor", p.kind())).collect();
    let exporters = pipeline.exporters.iter().map(|e| id("exporter", e.kind())).collect();
    (receivers, processors, exporters)
}

/// Describes the graph to selftrace: every node, the `internal_telemetry`
/// receivers with their settings, every edge. `provider` replaces the SDK
/// provider `processors` would build (tests keep records in memory).
pub fn self_telemetry(
    config: &EngineConfig,
    service_name: &str,
    provider: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
) -> Result<SelfTelemetry, EngineError> {
    let mut builder = SelfTelemetry::builder(&config.service.telemetry).with_service_name(service_name);
    if let Some(provider) = provider {
        builder = builder.with_sdk_provider(provider);
    }
    let mut names = BTreeSet::new();
    for pipeline in &config.pipelines {
        if !names.insert(pipeline.name.as_str()) {
            return Err(EngineError::Pipelines(format!("two pipelines are named `{}`", pipeline.name)));
        }
        let (receivers, processors, exporters) = node_ids(pipeline);
        for (r, id) in pipeline.receivers.iter().zip(&receivers) {
            builder = match r {
                ReceiverKind::InternalTelemetry(settings) => builder.receiver(id.clone(), settings.clone()),
                _ => builder.node(id.clone()),
            };
        }
        for id in processors.iter().chain(&exporters) {
            builder = builder.node(id.clone());
        }
        // receivers → processors in order → every exporter.
        let mut last = receivers.clone();
        for id in &processors {
            for from in &last {
                builder = builder.edge(from.clone(), id.clone());
            }
            last = vec![id.clone()];
        }
        // The internal pipeline's `--otlp-endpoint` exporter, added by the
        // command line: declared with its edges, so it is a zone node (its
        // logs never reach the receiver that feeds it).
        let cli = pipeline
            .receivers
            .iter()
            .any(|r| matches!(r, ReceiverKind::InternalTelemetry(_)))
            .then(|| format!("{}/exporter/otlp#cli", pipeline.name));
        for id in exporters.iter().chain(&cli) {
            if cli.as_ref() == Some(id) {
                builder = builder.node(id.clone());
            }
            for from in &last {
                builder = builder.edge(from.clone(), id.clone());
            }
        }
    }
    Ok(builder.build()?)
}

/// Builds and runs the engine for `options.duration`, then shuts it down in
/// order and reports. The caller installs `telemetry.layer()` first.
pub async fn run(
    config: &EngineConfig,
    telemetry: &SelfTelemetry,
    options: &RunOptions,
) -> Result<Report, EngineError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let captured = Arc::new(Mutex::new(Captured::default()));
    // Data pipelines and the internal ones stop in turn.
    let (mut data_tasks, mut itr_tasks) = (JoinSet::new(), JoinSet::new());
    let mut controls = Vec::new();

    for pipeline in &config.pipelines {
        let (receiver_ids, processor_ids, exporter_ids) = node_ids(pipeline);
        let is_itr = pipeline.receivers.iter().any(|r| matches!(r, ReceiverKind::InternalTelemetry(_)));
        let tasks = if is_itr { &mut itr_tasks } else { &mut data_tasks };
        // The internal pipelines on the zone runtime when there is one.
        let runtime = match (&options.internal, is_itr) {
            (Some(internal), true) => internal.clone(),
            _ => tokio::runtime::Handle::current(),
        };

        // Exporters, each with its own input.
        let mut exporter_inputs = Vec::new();
        let mut exporters = pipeline.exporters.clone();
        if is_itr && let Some(endpoint) = &options.otlp_endpoint {
            exporters.push(ExporterKind::Otlp(config::OtlpSettings { endpoint: endpoint.clone() }));
        }
        let mut exporter_ids = exporter_ids;
        while exporter_ids.len() < exporters.len() {
            exporter_ids.push(format!("{}/exporter/otlp#cli", pipeline.name));
        }
        for (exporter, id) in exporters.iter().zip(&exporter_ids) {
            let (tx, rx) = mpsc::channel::<Batch>(64);
            exporter_inputs.push(tx);
            let node = telemetry.shared(id)?;
            let task = exporter_task(exporter, id.clone(), node.clone(), rx, options.capture, captured.clone())?;
            tasks.spawn_on(node.scope(task), &runtime);
        }

        // Processors, last to first.
        let mut output = exporter_inputs;
        for (processor, id) in pipeline.processors.iter().zip(&processor_ids).rev() {
            let ProcessorKind::Batch(batch) = processor else {
                return Err(EngineError::Pipelines(format!(
                    "processor `{id}`: `retry` is not built into the demo engine (it has: batch)"
                )));
            };
            let (tx, rx) = mpsc::channel::<Batch>(64);
            let node = telemetry.shared(id)?;
            tasks.spawn_on(node.clone().scope(batch_task(batch.clone(), node, rx, output)), &runtime);
            output = vec![tx];
        }

        // Receivers.
        for (receiver, id) in pipeline.receivers.iter().zip(&receiver_ids) {
            match receiver {
                ReceiverKind::Generator(generator) => {
                    let node = telemetry.shared(id)?;
                    let task = generator_task(generator.clone(), node.clone(), stop_rx.clone(), output.clone());
                    tasks.spawn_on(node.scope(task), &runtime);
                }
                ReceiverKind::InternalTelemetry(_) => {
                    let receiver = telemetry.take_receiver(id).ok_or_else(|| {
                        EngineError::Pipelines(format!("receiver `{id}`: no internal_telemetry receiver to mount"))
                    })?;
                    let (control, control_rx) = mpsc::channel(1);
                    controls.push(control);
                    tasks.spawn_on(
                        itr_task(receiver, TokioHost { output: output.clone(), control: control_rx }),
                        &runtime,
                    );
                }
                ReceiverKind::Otlp(_) => {
                    return Err(EngineError::Pipelines(format!(
                        "receiver `{id}`: `otlp` is not built into the demo engine (it has: generator, internal_telemetry)"
                    )));
                }
            }
        }
    }

    // Outside every node: an engine-wide task calling a library (its
    // events are third-party logs, routed as the mode says).
    let mut housekeeping_stop = stop_rx.clone();
    data_tasks.spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(700));
        let mut round = 0u64;
        loop {
            tokio::select! {
                _ = interval.tick() => libs::pool::report(round),
                _ = housekeeping_stop.changed() => break,
            }
            round += 1;
        }
    });

    tokio::time::sleep(options.duration).await;

    // Shutdown, in order: the data pipelines stop (their receivers first, the
    // rest drains, logging as it goes); the layer goes back to the console;
    // the internal receivers drain the node logs and stop, and their
    // pipelines drain; then the node logs and the SDK.
    let _ = stop_tx.send(true);
    while data_tasks.join_next().await.is_some() {}
    telemetry.begin_shutdown();
    for control in &controls {
        let _ = control.send(Control::shutdown_within(Duration::from_secs(2))).await;
    }
    while itr_tasks.join_next().await.is_some() {}
    let metrics = telemetry.shutdown();
    let captured = std::mem::take(&mut *captured.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Report { metrics, captured_logs: captured.logs, captured_readings: captured.readings })
}

#[derive(Default)]
struct Captured {
    logs: Vec<(String, OtlpBytes)>,
    readings: usize,
}

/// The host side of an `internal_telemetry` receiver: its output is the
/// next node's input, its control a channel, its timer tokio's.
struct TokioHost {
    output: Vec<mpsc::Sender<Batch>>,
    control: mpsc::Receiver<Control>,
}

impl ReceiverHost for TokioHost {
    type Sleep = tokio::time::Sleep;

    async fn send(&mut self, batch: OtlpBytes) -> Result<(), OutputClosed> {
        send_all(&self.output, Batch::Logs(vec![batch])).await.map_err(|()| OutputClosed)
    }

    async fn recv_control(&mut self) -> Control {
        self.control.recv().await.unwrap_or(Control::shutdown_within(Duration::from_secs(1)))
    }

    fn sleep(&self, duration: Duration) -> tokio::time::Sleep {
        tokio::time::sleep(duration)
    }
}

async fn itr_task(receiver: InternalTelemetryReceiver, host: TokioHost) {
    let _metrics = receiver.run(host).await;
}

/// Sends to every output; `Err` when all are gone.
async fn send_all(outputs: &[mpsc::Sender<Batch>], batch: Batch) -> Result<(), ()> {
    let mut delivered = false;
    for output in outputs {
        delivered |= output.send(batch.clone()).await.is_ok();
    }
    if delivered { Ok(()) } else { Err(()) }
}

async fn generator_task(
    config: GeneratorConfig,
    node: SharedTelemetry,
    mut stop: watch::Receiver<bool>,
    output: Vec<mpsc::Sender<Batch>>,
) {
    otel_info!(node, "generator.started", interval_ms = config.interval.as_millis() as u64);
    let mut sequence = 0u64;
    let mut interval = tokio::time::interval(config.interval);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => break,
        }
        let readings = libs::sensors::sample(sequence, config.readings_per_batch);
        otel_info!(node, "generator.batch.generated", sequence = sequence, readings = readings.len() as u64);
        if send_all(&output, Batch::Readings(readings)).await.is_err() {
            otel_warn!(node, "generator.output.closed");
            break;
        }
        sequence += 1;
    }
    otel_info!(node, "generator.stopped", batches = sequence);
}

async fn batch_task(
    config: BatchConfig,
    node: SharedTelemetry,
    mut input: mpsc::Receiver<Batch>,
    output: Vec<mpsc::Sender<Batch>>,
) {
    let mut pending: Option<Batch> = None;
    let mut deadline = tokio::time::Instant::now() + config.timeout;
    loop {
        let next = tokio::select! {
            next = input.recv() => next,
            () = tokio::time::sleep_until(deadline) => {
                flush(&node, &mut pending, "timeout", &output).await;
                deadline = tokio::time::Instant::now() + config.timeout;
                continue;
            }
        };
        let Some(batch) = next else { break };
        pending = Some(match (pending.take(), batch) {
            (Some(Batch::Readings(mut a)), Batch::Readings(b)) => {
                a.extend(b);
                Batch::Readings(a)
            }
            (Some(Batch::Logs(mut a)), Batch::Logs(b)) => {
                a.extend(b);
                Batch::Logs(a)
            }
            (previous, batch) => {
                if let Some(previous) = previous {
                    let _ = send_all(&output, previous).await;
                }
                batch
            }
        });
        if pending.as_ref().is_some_and(|p| p.len() >= config.send_batch_size) {
            flush(&node, &mut pending, "size", &output).await;
            deadline = tokio::time::Instant::now() + config.timeout;
        }
    }
    flush(&node, &mut pending, "shutdown", &output).await;
}

async fn flush(
    node: &SharedTelemetry,
    pending: &mut Option<Batch>,
    reason: &'static str,
    output: &[mpsc::Sender<Batch>],
) {
    let Some(batch) = pending.take() else { return };
    if let Batch::Readings(readings) = &batch {
        libs::codec::compress(readings);
    }
    otel_debug!(node, "batch.flushed", items = batch.len() as u64, reason = reason);
    let _ = send_all(output, batch).await;
}

fn exporter_task(
    exporter: &ExporterKind,
    id: String,
    node: SharedTelemetry,
    mut input: mpsc::Receiver<Batch>,
    capture: bool,
    captured: Arc<Mutex<Captured>>,
) -> Result<impl Future<Output = ()> + Send + 'static, EngineError> {
    enum Sink {
        Console(ConsoleConfig),
        /// The batches of the internal pipeline as they are: their resource
        /// and scopes arrive as encoded, no SDK round trip.
        Otlp(selftrace_bridge::OtlpExporter),
    }
    let sink = match exporter {
        ExporterKind::Console(c) => Sink::Console(c.clone()),
        ExporterKind::Otlp(o) => {
            let exporter = selftrace_bridge::OtlpExporter::builder()
                .with_endpoint(&o.endpoint)
                .build()
                .map_err(|e| EngineError::Pipelines(format!("exporter `{id}`: {e}")))?;
            Sink::Otlp(exporter)
        }
    };
    Ok(async move {
        let mut sink = sink;
        while let Some(batch) = input.recv().await {
            match (&mut sink, batch) {
                (Sink::Console(_), Batch::Readings(readings)) => {
                    libs::wire::send(readings.len());
                    otel_info!(node, "exporter.batch.exported", items = readings.len() as u64);
                    if capture {
                        captured.lock().unwrap_or_else(|p| p.into_inner()).readings += readings.len();
                    } else {
                        // Data: one line a batch at either verbosity.
                        let mean = readings.iter().sum::<f64>() / readings.len().max(1) as f64;
                        print_out(&format!("[{id}] {} readings, mean {mean:.2}\n", readings.len()));
                    }
                }
                (Sink::Console(c), Batch::Logs(requests)) => {
                    if capture {
                        let mut captured = captured.lock().unwrap_or_else(|p| p.into_inner());
                        captured.logs.extend(requests.into_iter().map(|r| (id.clone(), r)));
                    } else {
                        let mut text = String::new();
                        for request in &requests {
                            if c.verbosity == Verbosity::Basic {
                                let _ = writeln!(text, "[{id}] one request, {} bytes", request.len());
                            } else if let Err(e) = selftrace::console::write_request(&mut text, request.as_bytes()) {
                                let _ = writeln!(text, "[{id}] undecodable request: {e}");
                            }
                        }
                        print_out(&text);
                    }
                }
                (Sink::Otlp(exporter), Batch::Logs(requests)) => {
                    let sender = exporter.sender();
                    let refused = requests.into_iter().map(|r| sender.try_send(r)).filter(Result::is_err).count();
                    if refused > 0 {
                        // Counted by the exporter too (dropped_queue_full).
                        otel_warn!(node, "exporter.queue.full", requests = refused as u64);
                    }
                }
                (Sink::Otlp(_), Batch::Readings(_)) => {
                    otel_warn!(node, "exporter.unsupported", reason = "the demo's otlp exporter exports logs only");
                }
            }
        }
        if let Sink::Otlp(exporter) = sink
            && let Err(e) = exporter.shutdown_async().await
        {
            otel_warn!(node, "exporter.shutdown.failed", error = %e);
        }
    })
}

fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
