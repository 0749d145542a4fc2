//! Charts drawn on the server as inline SVG: a sparkline for the queue list and a line chart with
//! axes for a queue's page. No script is needed to see them; the console's script only refreshes
//! the page part they are in.

use std::fmt::Write as _;

use super::html::{esc, number};

/// One series: `(timestamp in seconds, value)` in time order.
pub type Points = [(i64, f64)];

/// A small line of `points` over `[start, end)`, with no axes: the shape of a queue's depth.
pub fn sparkline(points: &Points, start: i64, end: i64, label: &str) -> String {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    let top = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let path = line_path(points, start, end, top, (0.0, W), (1.0, H - 1.0));
    format!(
        "<svg class=\"spark\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{label}\">\
         <title>{label}</title><path d=\"{path}\"/></svg>",
        label = esc(label)
    )
}

/// A line chart of one or more named series over `[start, end)`: y axis from zero to the
/// largest value, the range's ends on the x axis, and a legend.
pub fn line_chart(title: &str, series: &[(&str, Vec<(i64, f64)>)], start: i64, end: i64, unit: &str) -> String {
    const W: f64 = 460.0;
    const H: f64 = 160.0;
    const LEFT: f64 = 48.0;
    const BOTTOM: f64 = 18.0;
    let top = series.iter().flat_map(|(_, points)| points.iter().map(|p| p.1)).fold(0.0_f64, f64::max);
    let axis_top = if top > 0.0 { top } else { 1.0 };
    let mut svg = format!(
        "<figure class=\"chart\"><figcaption>{title}</figcaption>\
         <svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{title}\">",
        title = esc(title)
    );
    // Axes and the two y labels (zero and the top).
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"4\" x2=\"{LEFT}\" y2=\"{y0}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{y0}\" x2=\"{W}\" y2=\"{y0}\"/>\
         <text x=\"{lx}\" y=\"12\" text-anchor=\"end\">{top}</text>\
         <text x=\"{lx}\" y=\"{y0}\" text-anchor=\"end\">0</text>\
         <text x=\"{LEFT}\" y=\"{H}\">{from}</text><text x=\"{W}\" y=\"{H}\" text-anchor=\"end\">{to}</text>",
        y0 = H - BOTTOM,
        lx = LEFT - 4.0,
        top = esc(&format!("{}{}", number(axis_top), unit)),
        from = esc(&clock(start, end - start)),
        to = esc(&clock(end, end - start)),
    );
    for (index, (name, points)) in series.iter().enumerate() {
        let path = line_path(points, start, end, axis_top, (LEFT, W), (4.0, H - BOTTOM));
        let _ = write!(svg, "<path class=\"s{index}\" d=\"{path}\"><title>{}</title></path>", esc(name));
        // The latest value as a dot, so a series of one minute (a new queue) still shows.
        if let Some(&(t, v)) = points.last() {
            let (x, y) = place((t, v), start, end, axis_top, (LEFT, W), (4.0, H - BOTTOM));
            let _ = write!(svg, "<circle class=\"s{index}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\"/>");
        }
    }
    svg.push_str("</svg><ul class=\"legend\">");
    for (index, (name, points)) in series.iter().enumerate() {
        let last = points.last().map(|p| number(p.1)).unwrap_or_else(|| "no data".into());
        let _ = write!(svg, "<li class=\"s{index}\">{}: <b>{}</b></li>", esc(name), esc(&last));
    }
    svg.push_str("</ul></figure>");
    svg
}

/// Where `(t, v)` goes in the box `xs × ys`, for `[start, end) × [0, top]` (y grows downwards).
fn place((t, v): (i64, f64), start: i64, end: i64, top: f64, xs: (f64, f64), ys: (f64, f64)) -> (f64, f64) {
    let span = (end - start).max(1) as f64;
    let top = if top > 0.0 { top } else { 1.0 };
    let x = xs.0 + (xs.1 - xs.0) * ((t - start) as f64 / span).clamp(0.0, 1.0);
    let y = ys.1 - (ys.1 - ys.0) * (v / top).clamp(0.0, 1.0);
    (x, y)
}

/// An SVG path through `points`, scaled from `[start, end) × [0, top]` to the box `xs × ys`
/// (y grows downwards). A gap of more than two steps in the data breaks the line.
fn line_path(points: &Points, start: i64, end: i64, top: f64, xs: (f64, f64), ys: (f64, f64)) -> String {
    let step = points.windows(2).map(|w| w[1].0 - w[0].0).filter(|d| *d > 0).min().unwrap_or(60);
    let mut path = String::new();
    let mut previous: Option<i64> = None;
    for &(t, v) in points {
        let (x, y) = place((t, v), start, end, top, xs, ys);
        let command = match previous {
            Some(p) if t - p <= 2 * step => 'L',
            _ => 'M',
        };
        let _ = write!(path, "{command}{x:.1},{y:.1}");
        if command == 'M' {
            // A zero-length segment: with round caps a lone point still shows, as a dot.
            path.push_str("l0,0");
        }
        previous = Some(t);
    }
    if path.is_empty() {
        // No data: a flat line at zero says so without an empty box.
        let _ = write!(path, "M{:.1},{:.1}L{:.1},{:.1}", xs.0, ys.1, xs.1, ys.1);
    }
    path
}

/// A timestamp as `HH:MM` (UTC) for short ranges, `MM-DD HH:MM` for longer ones.
fn clock(t: i64, range: i64) -> String {
    let full = holdfast_api::calendar::format_iso8601_millis(t * 1000);
    // full: YYYY-MM-DDTHH:MM:SS...
    let date = full.get(5..10).unwrap_or("");
    let time = full.get(11..16).unwrap_or("");
    if range > 86_400 {
        format!("{date} {time}")
    } else {
        format!("{time} UTC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_at_gaps_and_stay_in_the_box() {
        let points = [(0, 0.0), (60, 5.0), (120, 10.0), (600, 10.0)];
        let path = line_path(&points, 0, 600, 10.0, (0.0, 100.0), (0.0, 50.0));
        assert_eq!(path.matches('M').count(), 2, "{path}");
        assert!(path.starts_with("M0.0,50.0l0,0L10.0,25.0L20.0,0.0M100.0,0.0l0,0"), "{path}");
        let empty = line_path(&[], 0, 600, 0.0, (0.0, 100.0), (0.0, 50.0));
        assert_eq!(empty, "M0.0,50.0L100.0,50.0");
    }

    #[test]
    fn chart_labels_are_escaped() {
        let chart = line_chart("<script>", &[("<img src=x>", vec![(0, 1.0)])], 0, 3600, "");
        assert!(!chart.contains("<script") && !chart.contains("<img"), "{chart}");
    }
}
