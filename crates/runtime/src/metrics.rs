//! Prometheus metrics of one process: per controller `flotilla_controller_reconcile_total`,
//! `flotilla_controller_reconcile_errors_total{reason}`,
//! `flotilla_controller_reconcile_duration_seconds` and `flotilla_controller_queue_depth`,
//! plus the standard `process_*` metrics, rendered in the Prometheus text format. Owns the
//! registry; never decides when something is counted (the runner does).

use std::{
    fmt::Write as _,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, prometheus_text},
    metrics::{
        MetricType,
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Labels naming a controller.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

/// Labels naming a controller and why a reconcile failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: String,
    reason: String,
}

type DurationFamily = Family<ControllerLabels, Histogram, fn() -> Histogram>;

/// The metrics of one process.
pub struct Metrics {
    registry: Mutex<Registry>,
    reconciles: Family<ControllerLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: DurationFamily,
    queue_depth: Family<ControllerLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn duration_histogram() -> Histogram {
    // 1 ms … about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let durations: DurationFamily = Family::new_with_constructor(duration_histogram);
        let queue_depth = Family::<ControllerLabels, Gauge>::default();
        let mut registry = Registry::default();
        registry.register(
            "flotilla_controller_reconcile",
            "Reconciles run, per controller",
            reconciles.clone(),
        );
        registry.register(
            "flotilla_controller_reconcile_errors",
            "Reconciles that failed, per controller and reason",
            errors.clone(),
        );
        registry.register(
            "flotilla_controller_reconcile_duration_seconds",
            "How long reconciles took, per controller",
            durations.clone(),
        );
        registry.register(
            "flotilla_controller_queue_depth",
            "Objects waiting to be reconciled because something changed, per controller",
            queue_depth.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector::default()));
        Self {
            registry: Mutex::new(registry),
            reconciles,
            errors,
            durations,
            queue_depth,
        }
    }
}

impl Metrics {
    /// Makes `controller`'s series exist (at zero) before its first reconcile, so dashboards
    /// and alerts see it from the start.
    pub fn register_controller(&self, controller: &str) {
        let labels = controller_labels(controller);
        let _ = self.reconciles.get_or_create(&labels);
        let _ = self.durations.get_or_create(&labels);
        self.queue_depth.get_or_create(&labels).set(0);
    }

    /// Records one reconcile of `controller` that took `took`; `error` is the reason it failed.
    pub fn reconciled(&self, controller: &str, took: Duration, error: Option<&str>) {
        let labels = controller_labels(controller);
        self.reconciles.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if let Some(reason) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    controller: controller.to_owned(),
                    reason: reason.to_owned(),
                })
                .inc();
        }
    }

    /// How many reconciles of `controller` finished so far.
    pub fn reconciles(&self, controller: &str) -> u64 {
        self.reconciles
            .get_or_create(&controller_labels(controller))
            .get()
    }

    /// Sets how many objects wait for `controller`.
    pub fn set_queue_depth(&self, controller: &str, depth: usize) {
        self.queue_depth
            .get_or_create(&controller_labels(controller))
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::new();
        if prometheus_text::encode(&mut text, &registry).is_err() {
            // Writing to a String cannot fail; keep whatever was written.
            let _ = writeln!(text, "# encoding failed");
        }
        text
    }
}

fn controller_labels(controller: &str) -> ControllerLabels {
    ControllerLabels {
        controller: controller.to_owned(),
    }
}

/// The standard `process_*` metrics, read from `/proc/self` on each scrape (Linux only; other
/// systems report `process_start_time_seconds` alone).
#[derive(Debug)]
struct ProcessCollector {
    start: f64,
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self {
            start: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default(),
        }
    }
}

/// What `/proc/self/status` says about this process's memory and threads.
#[derive(Debug, Default, PartialEq)]
struct ProcessStatus {
    virtual_bytes: u64,
    resident_bytes: u64,
    threads: u64,
}

/// The user plus system CPU seconds in `/proc/self/stat` (fields 14 and 15 of proc(5), counted
/// after the command name, which may hold spaces), in clock ticks of 1/100 s (Linux's fixed
/// USER_HZ).
fn parse_stat(stat: &str) -> Option<f64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(14)? + field(15)?) as f64 / 100.0)
}

/// `VmSize`, `VmRSS` (in kB) and `Threads` of `/proc/self/status`.
fn parse_status(status: &str) -> Option<ProcessStatus> {
    let value = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some(ProcessStatus {
        virtual_bytes: value("VmSize")?.saturating_mul(1024),
        resident_bytes: value("VmRSS")?.saturating_mul(1024),
        threads: value("Threads")?,
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let gauge = |encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: f64| {
            let metric = ConstGauge::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
        };
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            self.start,
        )?;
        let read = |path: &str| std::fs::read_to_string(path).ok();
        if let Some(seconds) = read("/proc/self/stat").and_then(|s| parse_stat(&s)) {
            let cpu = ConstCounter::new(seconds);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                MetricType::Counter,
            )?)?;
        }
        if let Some(stat) = read("/proc/self/status").and_then(|s| parse_status(&s)) {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                stat.resident_bytes as f64,
            )?;
            gauge(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                stat.virtual_bytes as f64,
            )?;
            gauge(
                &mut encoder,
                "process_threads",
                "Number of OS threads in the process",
                stat.threads as f64,
            )?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                fds.count() as f64,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_past_a_command_with_spaces() {
        // pid (comm) state ppid … utime(14)=250 stime(15)=150 …
        let stat = "42 (flo) tilla) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 7 0 1234";
        assert_eq!(parse_stat(stat), Some(4.0));
        assert_eq!(parse_stat("garbage"), None);
        let status = "Name:\tflotilla\nVmSize:\t  102400 kB\nVmRSS:\t    2560 kB\nThreads:\t7\n";
        assert_eq!(
            parse_status(status),
            Some(ProcessStatus {
                virtual_bytes: 102_400 * 1024,
                resident_bytes: 2560 * 1024,
                threads: 7,
            })
        );
        assert_eq!(parse_status("Name: x"), None);
    }

    #[test]
    fn the_controller_metrics_have_their_documented_names() {
        let metrics = Metrics::default();
        metrics.register_controller("cluster");
        metrics.reconciled("cluster", Duration::from_millis(3), None);
        metrics.reconciled("cluster", Duration::from_millis(5), Some("WriteTaints"));
        metrics.set_queue_depth("cluster", 4);
        let text = metrics.render();
        for line in [
            "flotilla_controller_reconcile_total{controller=\"cluster\"} 2",
            "flotilla_controller_reconcile_errors_total{controller=\"cluster\",reason=\"WriteTaints\"} 1",
            "flotilla_controller_reconcile_duration_seconds_count{controller=\"cluster\"} 2",
            "flotilla_controller_queue_depth{controller=\"cluster\"} 4",
            "# TYPE process_start_time_seconds gauge",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
