//! Stand-ins for third-party libraries the nodes call: they log through
//! plain `tracing`, know nothing of nodes, and are attributed to the node
//! whose scope they run in.

/// Reads sensors.
pub(crate) mod sensors {
    pub(crate) fn sample(sequence: u64, n: usize) -> Vec<f64> {
        let readings: Vec<f64> = (0..n).map(|i| 20.0 + ((sequence as f64) * 0.7 + i as f64).sin() * 3.0).collect();
        tracing::info!(target: "sensors", sequence, count = n, "sampled sensors");
        // Sensor 3 is stuck: the library retries it and logs every attempt,
        // a flood that flood control cuts to 10 events per 10 s and one
        // summary record ("suppressed N events in the last 10 s").
        for attempt in 1..=5_u32 {
            tracing::warn!(target: "sensors", sensor = 3, attempt, "sensor not responding, retrying");
        }
        readings
    }
}

/// Compresses batches.
pub(crate) mod codec {
    pub(crate) fn compress(readings: &[f64]) -> usize {
        let compressed = readings.len() * 8 / 3 + 16;
        tracing::info!(target: "codec", input = readings.len() * 8, output = compressed, "compressed batch");
        compressed
    }
}

/// Sends bytes somewhere.
pub(crate) mod wire {
    pub(crate) fn send(items: usize) {
        if items == 0 {
            tracing::warn!(target: "wire", "empty payload");
        }
        tracing::info!(target: "wire", items, "payload sent");
    }
}

/// A connection pool with its own background reporting.
pub(crate) mod pool {
    pub(crate) fn report(round: u64) {
        tracing::info!(target: "pool", round, idle = 2 + round % 3, "connection pool stats");
    }
}
