//! Process metrics on Linux, read from `/proc` at each scrape, with the names every Prometheus
//! client library uses (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...).
//!
//! Read here rather than with the `metrics-process` crate: that crate belongs to the `metrics`
//! facade, not to `prometheus-client`, and /proc's few fields are a page of code.

use crate::limits::OpenFiles;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// This process's figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident memory, bytes.
    pub resident_bytes: u64,
    /// Virtual memory, bytes.
    pub virtual_bytes: u64,
    /// When the process started, seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// Open file descriptors.
    pub open_fds: u64,
}

impl ProcessStats {
    /// Reads `/proc/self`; `None` where there is no such thing (not Linux) or it is unreadable.
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let btime = boot
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse::<u64>()
            .ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        Self::parse(
            &stat,
            btime,
            rustix::param::clock_ticks_per_second(),
            rustix::param::page_size() as u64,
            open_fds,
        )
    }

    /// The figures of a `/proc/<pid>/stat` line, given the boot time and the system's units.
    fn parse(stat: &str, btime: u64, ticks: u64, page: u64, open_fds: u64) -> Option<Self> {
        // The command name (field 2) may hold spaces and parentheses: fields count from the
        // last ')'. Field 3 (state) is index 0 there.
        let fields: Vec<&str> = stat
            .get(stat.rfind(')')? + 1..)?
            .split_whitespace()
            .collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        let ticks = ticks.max(1) as f64;
        Some(Self {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
            start_time_seconds: btime as f64 + field(22)? as f64 / ticks,
            virtual_bytes: field(23)?,
            resident_bytes: field(24)? * page,
            open_fds,
        })
    }
}

/// Encodes [`ProcessStats`] at each scrape.
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = ProcessStats::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stats.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu",
            "Total user and system CPU time spent",
            Some(&Unit::Seconds),
            cpu.metric_type(),
        )?)?;
        let mut gauges: Vec<(&str, &str, Option<&Unit>, f64)> = vec![
            (
                "process_resident_memory",
                "Resident memory size",
                Some(&Unit::Bytes),
                stats.resident_bytes as f64,
            ),
            (
                "process_virtual_memory",
                "Virtual memory size",
                Some(&Unit::Bytes),
                stats.virtual_bytes as f64,
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                None,
                stats.open_fds as f64,
            ),
            (
                "process_start_time",
                "Start time of the process since the Unix epoch",
                Some(&Unit::Seconds),
                stats.start_time_seconds,
            ),
        ];
        // No limit, no figure.
        if let Some(limit) = OpenFiles::current().soft {
            gauges.push((
                "process_max_fds",
                "The open-file limit (soft)",
                None,
                limit as f64,
            ));
        }
        for (name, help, unit, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, unit, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_name_holds_spaces_and_parentheses() {
        let line = "4242 (callsign (x) y) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 \
                    9 0 100000 123456789 2000 18446744073709551615";
        let stats = ProcessStats::parse(line, 1_700_000_000, 100, 4096, 7).unwrap();
        assert_eq!(stats.cpu_seconds, 3.0);
        assert_eq!(stats.start_time_seconds, 1_700_001_000.0);
        assert_eq!(stats.virtual_bytes, 123_456_789);
        assert_eq!(stats.resident_bytes, 2000 * 4096);
        assert_eq!(stats.open_fds, 7);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let stats = ProcessStats::read().unwrap();
        assert!(stats.resident_bytes > 0 && stats.open_fds > 0);
        assert!(stats.start_time_seconds > 1.5e9);
    }
}
