//! The Prometheus endpoint (`[status] metrics = "127.0.0.1:9464"`): frames analysed and
//! dropped, inference latency histograms, outbox depth and age, publish acks and reconnects.
//! Counters are the pipeline's own atomics, read at scrape time by a `prometheus-client`
//! collector: nothing is copied on the hot path but one atomic add per bucket.
//!
//! Served by a deliberately small HTTP/1.0 responder on the async runtime: `GET /metrics`
//! only, one short response per connection, at most [`MAX_CONNECTIONS`] at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Shared;
use crate::telemetry::Broker;

/// Scrapes served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 4;

/// Reads the agent's state at scrape time.
struct AgentCollector(Shared);

impl std::fmt::Debug for AgentCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentCollector")
    }
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl prometheus_client::collector::Collector for AgentCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Rendered on a blocking thread (spawn_blocking); a hung outbox costs a scrape at most
        // the patience, then shows the last figures, flagged.
        let s = self
            .0
            .snapshot(crate::clock::mono_ms(), super::OUTBOX_PATIENCE);
        let per_source = |enc: &mut DescriptorEncoder,
                          name: &str,
                          help: &str,
                          ty: MetricType,
                          get: &dyn Fn(&crate::telemetry::SourceProgress) -> u64|
         -> Result<(), std::fmt::Error> {
            let mut m = enc.encode_descriptor(name, help, None, ty)?;
            for (id, p) in &self.0.sources.get().running {
                let labels = [("source", id.as_str()), ("kind", p.kind)];
                let fam = m.encode_family(&labels)?;
                match ty {
                    MetricType::Counter => ConstCounter::new(get(p)).encode(fam)?,
                    _ => ConstGauge::new(get(p) as i64).encode(fam)?,
                }
            }
            Ok(())
        };
        per_source(
            &mut enc,
            "vitrine_frames_analysed",
            "Frames (or audio blocks) analysed by the models",
            MetricType::Counter,
            &|p| p.analysed.load(Ordering::Relaxed),
        )?;
        per_source(
            &mut enc,
            "vitrine_frames_dropped",
            "Frames dropped because analysis was behind (drop-oldest policy)",
            MetricType::Counter,
            &|p| p.dropped.load(Ordering::Relaxed),
        )?;
        per_source(
            &mut enc,
            "vitrine_frames_unchanged",
            "Frames analysed without the detector because nothing moved since the last detection (motion gating)",
            MetricType::Counter,
            &|p| p.skipped_still.load(Ordering::Relaxed),
        )?;
        per_source(
            &mut enc,
            "vitrine_frames_predicted",
            "Frames analysed without the detector between detections (detect_every; tracker prediction)",
            MetricType::Counter,
            &|p| p.skipped_cadence.load(Ordering::Relaxed),
        )?;
        per_source(
            &mut enc,
            "vitrine_windows_closed",
            "Aggregation windows closed and handed to the outbox",
            MetricType::Counter,
            &|p| p.windows.load(Ordering::Relaxed),
        )?;
        per_source(
            &mut enc,
            "vitrine_source_up",
            "1 while the source runs and delivers (0 while a live camera or microphone is lost)",
            MetricType::Gauge,
            &|p| u64::from(p.is_up()),
        )?;
        per_source(
            &mut enc,
            "vitrine_source_lost",
            "Times a live source was lost (unplugged, stream closed or stalled) and reopened",
            MetricType::Counter,
            &|p| p.lost.load(Ordering::Relaxed),
        )?;
        per_source(
            &mut enc,
            "vitrine_audio_samples_overflowed",
            "Microphone samples dropped because analysis fell behind (ring full)",
            MetricType::Counter,
            &|p| p.overflowed.load(Ordering::Relaxed),
        )?;
        {
            let mut m = enc.encode_descriptor(
                "vitrine_inference_seconds",
                "Model inference latency per frame or audio block",
                None,
                MetricType::Histogram,
            )?;
            for (id, p) in &self.0.sources.get().running {
                let labels = [("source", id.as_str()), ("kind", p.kind)];
                let (sum, count, buckets) = p.latency.read();
                m.encode_family(&labels)?
                    .encode_histogram::<Vec<(String, String)>>(sum, count, &buckets, None)?;
            }
        }
        gauge(
            &mut enc,
            "vitrine_sources_failed",
            "Configured sources that could not be started",
            s.failed.len() as i64,
        )?;
        gauge(
            &mut enc,
            "vitrine_outbox_answering",
            "1 while the outbox could be read at scrape time (0: busy or a hung disk; the outbox figures are then the last ones read)",
            i64::from(s.outbox_answers),
        )?;
        gauge(
            &mut enc,
            "vitrine_outbox_events",
            "Events stored and not yet acknowledged by the broker",
            s.outbox_events as i64,
        )?;
        gauge(
            &mut enc,
            "vitrine_outbox_bytes",
            "Bytes of unacknowledged events in the outbox",
            s.outbox_bytes as i64,
        )?;
        gauge(
            &mut enc,
            "vitrine_outbox_oldest_age_seconds",
            "Age of the oldest unacknowledged event (0 when empty)",
            s.outbox_oldest_s.unwrap_or(0) as i64,
        )?;
        counter(
            &mut enc,
            "vitrine_publish_sent",
            "Events published (including re-sends after a reconnect)",
            s.uplink.sent,
        )?;
        counter(
            &mut enc,
            "vitrine_publish_acked",
            "Events the broker acknowledged (removed from the outbox)",
            s.uplink.acked,
        )?;
        counter(
            &mut enc,
            "vitrine_publish_rejected",
            "Events the broker refused with a failure reason code (kept in the outbox)",
            s.uplink.rejected,
        )?;
        counter(
            &mut enc,
            "vitrine_broker_connections",
            "Broker connections made (reconnects = this - 1)",
            s.uplink.connections,
        )?;
        gauge(
            &mut enc,
            "vitrine_broker_connected",
            "1 while connected to the broker (0 also when none is configured)",
            i64::from(s.broker == Broker::Connected),
        )?;
        gauge(
            &mut enc,
            "vitrine_uptime_seconds",
            "Seconds since the agent started",
            s.uptime_s as i64,
        )?;
        let decoders: Vec<(&str, &str, &str)> = s
            .sources
            .iter()
            .filter_map(|x| {
                let d = x.decoder?;
                let name = d.split(' ').next().unwrap_or(d);
                Some((
                    x.id.as_str(),
                    name,
                    if d.contains("hardware") {
                        "true"
                    } else {
                        "false"
                    },
                ))
            })
            .collect();
        if !decoders.is_empty() {
            let mut m = enc.encode_descriptor(
                "vitrine_source_decoder_info",
                "The H.264 decoder each IP camera's stream goes through ([[cameras]] decoder; auto prefers hardware)",
                None,
                MetricType::Gauge,
            )?;
            for (source, decoder, hardware) in decoders {
                let labels = [
                    ("source", source),
                    ("decoder", decoder),
                    ("hardware", hardware),
                ];
                ConstGauge::new(1).encode(m.encode_family(&labels)?)?;
            }
        }
        if let Some((detector, precision)) = s.models.as_deref().and_then(|m| m.rsplit_once(' ')) {
            let mut m = enc.encode_descriptor(
                "vitrine_detector_info",
                "The people detector loaded and the arithmetic it runs in ([models] precision; auto decides by the CPU)",
                None,
                MetricType::Gauge,
            )?;
            let labels = [("model", detector), ("precision", precision)];
            ConstGauge::new(1).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The text exposition of the agent's metrics (what `GET /metrics` returns).
pub fn render(shared: &Shared) -> anyhow::Result<String> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(AgentCollector(shared.clone())));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .map_err(|e| anyhow::anyhow!("encoding metrics: {e}"))?;
    Ok(out)
}

/// Serve `GET /metrics` on `listener` until `stop` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Shared,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let (conn, _) = tokio::select! {
            _ = stop.changed() => return,
            c = listener.accept() => match c {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(Duration::from_secs(5), respond(conn, shared)).await;
        });
    }
}

async fn respond(mut conn: tokio::net::TcpStream, shared: Shared) -> std::io::Result<()> {
    // Read the request head (bounded); only the request line matters.
    let mut buf = vec![0u8; 2048];
    let mut n = 0;
    while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        let r = conn.read(&mut buf[n..]).await?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let line = head.lines().next().unwrap_or("");
    let (status, ctype, body) = if line.starts_with("GET /metrics ") || line == "GET /metrics" {
        let shared2 = shared.clone();
        match tokio::task::spawn_blocking(move || render(&shared2)).await {
            Ok(Ok(text)) => (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            _ => (
                "500 Internal Server Error",
                "text/plain",
                "metrics unavailable\n".to_string(),
            ),
        }
    } else if line.starts_with("GET ") {
        ("404 Not Found", "text/plain", "try /metrics\n".to_string())
    } else {
        (
            "405 Method Not Allowed",
            "text/plain",
            "only GET /metrics\n".to_string(),
        )
    };
    let resp = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(resp.as_bytes()).await?;
    conn.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::LatencyHistogram;

    #[test]
    fn histogram_counts_per_bucket_and_sums_in_seconds() {
        let h = LatencyHistogram::default();
        for ms in [3, 3, 40, 9000] {
            h.observe(Duration::from_millis(ms));
        }
        let (sum, count, b) = h.read();
        assert_eq!(count, 4);
        assert!((sum - 9.046).abs() < 1e-9, "{sum}");
        assert_eq!(b[1], (0.002, 0)); // (1, 2] ms
        assert_eq!(b[2], (0.005, 2)); // (2, 5] ms
        assert_eq!(b[5], (0.05, 1)); // (20, 50] ms
        assert_eq!(b[11], (5.0, 0));
        assert_eq!(b[12].1, 1);
        assert!(b[12].0.is_infinite());
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), count);
    }
}
