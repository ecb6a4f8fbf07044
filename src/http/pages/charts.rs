//! Bar charts drawn on the server as inline SVG, for the Insights page (`insights.rs`).
//!
//! The pages run no script and the Content-Security-Policy allows no inline style, so a chart is
//! plain SVG elements with geometry in attributes and looks from classes in `shiplog.css`. Each
//! bar is a link with a `<title>` (the browser's tooltip); this module computes the geometry and
//! the axis labels only, and the template (`_chart.html`) escapes every text it prints.

/// The drawing's size in SVG units; the stylesheet scales it to its box.
const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 150.0;
/// Room for the value axis on the left, the dates below, and the last date's overhang.
const LEFT: f64 = 48.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;
/// At most this many date labels, so they never run into each other.
const X_LABELS_MAX: usize = 5;

/// What the values are, for the axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Whole things (deploys).
    Count,
    /// A share, 0 to 1, shown as a percentage.
    Share,
    /// Seconds, shown as a duration.
    Seconds,
}

/// One bucket's value and where its bar leads.
pub struct Point {
    /// Under the axis: a short date.
    pub label: String,
    /// `None`: nothing to measure in the bucket (no bar, the tooltip says why).
    pub value: Option<f64>,
    /// The tooltip.
    pub title: String,
    pub href: String,
}

/// A chart, ready for `_chart.html`. Coordinates are strings with one decimal.
pub struct Chart {
    /// The chart's accessible name.
    pub name: String,
    pub view_box: String,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    pub dates: Vec<Tick>,
    /// The baseline, from the left of the plot to its right.
    pub axis_x1: String,
    pub axis_x2: String,
    pub axis_y: String,
}

pub struct Bar {
    pub href: String,
    pub title: String,
    /// The whole column: what the pointer hits, even over a bar of zero.
    pub slot_x: String,
    pub slot_width: String,
    pub slot_y: String,
    pub slot_height: String,
    /// The visible bar; `None` when the bucket has nothing to measure.
    pub bar: Option<(String, String, String, String)>,
}

/// A label on an axis: where, and what it says.
pub struct Tick {
    pub x: String,
    pub y: String,
    pub text: String,
}

fn at(v: f64) -> String {
    format!("{v:.1}")
}

/// The smallest "round" top of the value axis at or above `max`.
fn top_of(scale: Scale, max: f64) -> f64 {
    match scale {
        Scale::Count => nice(max.max(1.0)),
        Scale::Share => (nice((max * 100.0).max(1.0)) / 100.0).min(1.0),
        Scale::Seconds => {
            const STEPS: [f64; 18] = [
                60.0,
                300.0,
                600.0,
                1_800.0,
                3_600.0,
                7_200.0,
                14_400.0,
                21_600.0,
                43_200.0,
                86_400.0,
                172_800.0,
                345_600.0,
                604_800.0,
                1_209_600.0,
                2_592_000.0,
                5_184_000.0,
                15_552_000.0,
                31_536_000.0,
            ];
            STEPS.into_iter().find(|s| *s >= max).unwrap_or(max.max(1.0))
        }
    }
}

/// 1, 2, 5 × 10ⁿ: the first at or above `v`.
fn nice(v: f64) -> f64 {
    let mut magnitude = 1.0;
    while magnitude * 10.0 <= v {
        magnitude *= 10.0;
    }
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|n| *n >= v)
        .unwrap_or(magnitude * 10.0)
}

/// How a value reads on the axis.
pub fn axis_text(scale: Scale, v: f64) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    match scale {
        Scale::Count => number(v),
        Scale::Share => format!("{} %", number(v * 100.0)),
        Scale::Seconds => super::insights::span(v.round() as i64),
    }
}

/// `v` with at most two decimals, trailing zeros dropped: `2`, `1.5`, `0.33`.
pub fn number(v: f64) -> String {
    let text = format!("{v:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// Draws `points` as bars, the value axis from zero to a round top.
pub fn bars(name: &str, scale: Scale, points: Vec<Point>) -> Chart {
    let max = points.iter().filter_map(|p| p.value).fold(0.0_f64, f64::max);
    let top = top_of(scale, max);
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let base = TOP + plot_h;
    let slot = plot_w / points.len().max(1) as f64;
    let gap = if slot > 4.0 { slot * 0.2 } else { 0.0 };

    let mut ticks = vec![0.0, top];
    let half = top / 2.0;
    if scale != Scale::Count || half.fract() == 0.0 {
        ticks.insert(1, half);
    }
    let ticks = ticks
        .into_iter()
        .map(|v| Tick {
            x: at(LEFT - 6.0),
            y: at(base - plot_h * v / top + 4.0),
            text: axis_text(scale, v),
        })
        .collect();

    let every = points.len().div_ceil(X_LABELS_MAX).max(1);
    let dates = points
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, p)| Tick {
            x: at(LEFT + slot * (i as f64 + 0.5)),
            y: at(HEIGHT - 6.0),
            text: p.label.clone(),
        })
        .collect();

    let bars = points
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let x = LEFT + slot * i as f64;
            Bar {
                bar: p.value.map(|v| {
                    // A bar of a value above zero is at least a pixel tall, so it shows.
                    let h = if v > 0.0 { (plot_h * v / top).max(1.5) } else { 0.0 };
                    (at(x + gap / 2.0), at(base - h), at((slot - gap).max(0.5)), at(h))
                }),
                href: p.href,
                title: p.title,
                slot_x: at(x),
                slot_width: at(slot),
                slot_y: at(TOP),
                slot_height: at(plot_h),
            }
        })
        .collect();

    Chart {
        name: name.to_owned(),
        view_box: format!("0 0 {WIDTH} {HEIGHT}"),
        bars,
        ticks,
        dates,
        axis_x1: at(LEFT),
        axis_x2: at(WIDTH - RIGHT),
        axis_y: at(base),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(value: Option<f64>) -> Point {
        Point {
            label: "Nov 1".into(),
            value,
            title: "t".into(),
            href: "/insights".into(),
        }
    }

    #[test]
    fn the_value_axis_ends_at_a_round_number_above_the_largest_value() {
        assert_eq!(top_of(Scale::Count, 0.0), 1.0);
        assert_eq!(top_of(Scale::Count, 7.0), 10.0);
        assert_eq!(top_of(Scale::Count, 12.0), 20.0);
        assert_eq!(top_of(Scale::Share, 0.26), 0.5);
        assert_eq!(top_of(Scale::Share, 0.9), 1.0);
        assert_eq!(top_of(Scale::Seconds, 5_000.0), 7_200.0);
        assert_eq!(number(0.3333), "0.33");
        assert_eq!(number(2.0), "2");
        assert_eq!(axis_text(Scale::Share, 0.125), "12.5 %");
    }

    #[test]
    fn every_bucket_is_a_link_and_only_measured_ones_have_a_bar() {
        let chart = bars(
            "deploys",
            Scale::Count,
            vec![point(Some(3.0)), point(None), point(Some(0.0))],
        );
        assert_eq!(chart.bars.len(), 3);
        assert!(chart.bars[0].bar.is_some());
        assert!(chart.bars[1].bar.is_none());
        assert_eq!(chart.bars[2].bar.as_ref().unwrap().3, "0.0");
        // The axis of 3 deploys ends at 5; half of it is not a whole deploy, so no middle tick.
        assert_eq!(chart.ticks.len(), 2);
    }

    #[test]
    fn a_year_of_days_keeps_its_date_labels_apart() {
        let points = (0..366).map(|_| point(Some(1.0))).collect();
        let chart = bars("deploys", Scale::Count, points);
        assert!(chart.dates.len() <= X_LABELS_MAX);
    }
}
