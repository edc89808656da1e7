//! The table `feed_bench` prints: metric, value, target, and whether the
//! value meets it (reported, not enforced).

use std::time::Duration;

/// The rows printed, in order.
#[derive(Default)]
pub struct Table {
    rows: Vec<[String; 4]>,
}

impl Table {
    /// A row without a target (context for the others).
    pub fn info(&mut self, metric: &str, value: String) {
        self.rows
            .push([metric.to_owned(), value, "-".to_owned(), String::new()]);
    }

    /// A row with a target, and whether the value met it.
    pub fn target(&mut self, metric: &str, value: String, target: &str, met: bool) {
        let verdict = if met { "PASS" } else { "FAIL" };
        self.rows.push([
            metric.to_owned(),
            value,
            target.to_owned(),
            verdict.to_owned(),
        ]);
    }

    /// The table as text, columns aligned.
    pub fn render(&self) -> String {
        let header = ["metric", "value", "target", "result"].map(str::to_owned);
        let mut widths = [0usize; 4];
        for row in std::iter::once(&header).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |row: &[String; 4]| {
            format!(
                "{:<w0$}  {:>w1$}  {:<w2$}  {}\n",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
        };
        let mut text = line(&header);
        for row in &self.rows {
            text.push_str(&line(row));
        }
        text
    }
}

/// The `p`-th percentile (0 < p <= 1) of `samples`, by nearest rank; zero
/// for no samples.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = (p * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// A duration in milliseconds, two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A rate per second, no decimals.
pub fn per_second(rate: f64) -> String {
    format!("{rate:.0}/s")
}

/// `a / b`, or zero when `b` is zero.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_the_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut samples, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&mut samples, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&mut samples, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&mut [], 0.99), Duration::ZERO);
        let mut one = [Duration::from_millis(7)];
        assert_eq!(percentile(&mut one, 0.01), Duration::from_millis(7));
    }

    #[test]
    fn table_aligns_and_judges() {
        let mut table = Table::default();
        table.info("a", "1".into());
        table.target("longer metric", "0.5".into(), ">= 0.8", false);
        assert_eq!(
            table.render(),
            "metric         value  target  result\n\
             a                  1  -       \n\
             longer metric    0.5  >= 0.8  FAIL\n"
        );
    }
}
