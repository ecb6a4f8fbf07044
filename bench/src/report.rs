//! One line per figure: `key=value` pairs for people and `grep`, or JSON lines for machines.

use std::fmt::Write as _;
use std::time::Duration;

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// A figure and its values, printed as one line.
pub struct Line {
    figure: &'static str,
    fields: Vec<(&'static str, serde_json::Value)>,
}

impl Line {
    pub fn new(figure: &'static str) -> Self {
        Self {
            figure,
            fields: Vec::new(),
        }
    }

    pub fn field(mut self, key: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.push((key, value.into()));
        self
    }

    /// Milliseconds with two decimals.
    pub fn millis(self, key: &'static str, value: Duration) -> Self {
        self.field(key, round2(value.as_secs_f64() * 1000.0))
    }

    /// Whether `target` was met, as `met=yes|no` (`targets` lists what was checked).
    pub fn target(self, description: String, met: bool) -> Self {
        self.field("target", description)
            .field("met", if met { "yes" } else { "no" })
    }

    pub fn print(&self, format: Format) {
        match format {
            Format::Text => {
                let mut out = format!("shiplog-bench {}", self.figure);
                for (key, value) in &self.fields {
                    let value = match value {
                        serde_json::Value::String(s) if s.contains(' ') => format!("{s:?}"),
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let _ = write!(out, " {key}={value}");
                }
                println!("{out}");
            }
            Format::Json => {
                let mut object = serde_json::Map::new();
                object.insert("figure".into(), self.figure.into());
                for (key, value) in &self.fields {
                    object.insert((*key).into(), value.clone());
                }
                println!("{}", serde_json::Value::Object(object));
            }
        }
    }
}

pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Latencies of one run, sorted once.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`th percentile (nearest rank), zero when there are no samples.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.0.last().copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latencies::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(l.percentile(50.0), Duration::from_millis(50));
        assert_eq!(l.percentile(99.0), Duration::from_millis(99));
        assert_eq!(l.max(), Duration::from_millis(100));
        assert_eq!(Latencies::new(vec![]).percentile(99.0), Duration::ZERO);
    }
}
