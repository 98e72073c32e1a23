//! A small chart in SVG, written by hand: a title, two labelled axes with
//! ticks (linear or log), and marks — points, lines, step lines, crosses
//! and rectangles — each with an optional tooltip (`<title>`). Nothing to
//! run: the file reads in any browser, offline, and prints.

use std::fmt::Write as _;

/// The picture's size in pixels and its margins around the plotting area.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 62.0;
const BOTTOM: f64 = 56.0;

/// Colours of the marks, colour-blind safe (Okabe and Ito's palette).
pub const BLUE: &str = "#0072b2";
pub const ORANGE: &str = "#e69f00";
pub const RED: &str = "#d55e00";
pub const GREEN: &str = "#009e73";
pub const GREY: &str = "#999999";
pub const PURPLE: &str = "#cc79a7";

/// How an axis maps values to positions.
#[derive(Clone, Debug, PartialEq)]
pub enum Scale {
    Linear {
        low: f64,
        high: f64,
    },
    /// Both ends positive.
    Log {
        low: f64,
        high: f64,
    },
    /// One band per name, in order (for categorical values, or lanes).
    Bands(Vec<String>),
}

impl Scale {
    /// A linear scale spanning `values` (finite ones), padded by 5% each
    /// side; 0 … 1 with none, ± 1 around a single value.
    pub fn linear_over(values: impl IntoIterator<Item = f64>) -> Scale {
        let (low, high) = span(values);
        let pad = if high > low { (high - low) * 0.05 } else { low.abs().max(1.0) };
        Scale::Linear { low: low - pad, high: high + pad }
    }

    /// A log scale spanning the positive `values`, padded by a tenth of a
    /// decade each side; a linear one when any value is not positive.
    pub fn log_over(values: impl IntoIterator<Item = f64>) -> Scale {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if values.is_empty() || values.iter().any(|&v| v <= 0.0) {
            return Scale::linear_over(values);
        }
        let (low, high) = span(values.iter().map(|v| v.log10()));
        let pad = if high > low { 0.1 } else { 0.5 };
        Scale::Log { low: 10f64.powf(low - pad), high: 10f64.powf(high + pad) }
    }

    /// Where `value` falls, from 0 (the low end) to 1.
    fn fraction(&self, value: f64) -> f64 {
        match self {
            Scale::Linear { low, high } => (value - low) / (high - low),
            Scale::Log { low, high } => (value.log10() - low.log10()) / (high.log10() - low.log10()),
            // The middle of band `value` (its index).
            Scale::Bands(names) => (value + 0.5) / names.len().max(1) as f64,
        }
    }

    /// Tick positions and their labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        match self {
            Scale::Linear { low, high } => nice_ticks(*low, *high).into_iter().map(|t| (t, number(t))).collect(),
            Scale::Log { low, high } => {
                let (a, b) = (low.log10().ceil() as i32, high.log10().floor() as i32);
                let decades: Vec<i32> = (a..=b).collect();
                // Every decade, thinned to at most 8 labels.
                let step = decades.len().div_ceil(8).max(1);
                let mut ticks: Vec<(f64, String)> =
                    decades.iter().step_by(step).map(|&e| (10f64.powi(e), number(10f64.powi(e)))).collect();
                if ticks.len() < 2 {
                    ticks = nice_ticks(*low, *high).into_iter().filter(|&t| t > 0.0).map(|t| (t, number(t))).collect();
                }
                ticks
            }
            Scale::Bands(names) => names.iter().enumerate().map(|(i, n)| (i as f64, n.clone())).collect(),
        }
    }
}

/// The lowest and highest finite value; (0, 1) with none.
fn span(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if low > high { (0.0, 1.0) } else { (low, high) }
}

/// About six round ticks (1, 2 or 5 times a power of ten apart) within
/// `low` … `high`.
pub fn nice_ticks(low: f64, high: f64) -> Vec<f64> {
    if !(low.is_finite() && high.is_finite()) || high <= low {
        return vec![low];
    }
    let rough = (high - low) / 6.0;
    let power = 10f64.powf(rough.log10().floor());
    let m = [1.0, 2.0, 5.0, 10.0].into_iter().find(|&m| m * power >= rough).unwrap_or(10.0);
    let step = m * power;
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    // i·m over a whole power of ten, so that 3 steps of 0.1 read 0.3.
    let tick = |i: i64| if power < 1.0 { (i as f64 * m) / (1.0 / power).round() } else { i as f64 * step };
    (first..=last).map(tick).collect()
}

/// A number as a tick label or tooltip shows it: at most four significant
/// digits, exponent form when very large or small.
pub fn number(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-3..6).contains(&magnitude) {
        return format!("{v:.2e}");
    }
    let decimals = (3 - magnitude).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// Text made safe inside an SVG element or attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newline are not XML.
            c if c.is_control() && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// What a chart draws.
#[derive(Clone, Debug, PartialEq)]
pub enum Mark {
    /// Dots; `tips[i]` (if any) is point i's tooltip.
    Points { xs: Vec<f64>, ys: Vec<f64>, colour: &'static str, tips: Vec<String> },
    /// Crosses, as for trials stopped early.
    Crosses { xs: Vec<f64>, ys: Vec<f64>, colour: &'static str, tips: Vec<String> },
    /// A polyline through the points; `step`: horizontal then vertical.
    Line { xs: Vec<f64>, ys: Vec<f64>, colour: &'static str, step: bool, tip: Option<String> },
    /// Rectangles from (x0, y0) to (x1, y1) in data units (a band's index
    /// ± 0.4 on a band scale).
    Rects { rects: Vec<[f64; 4]>, colours: Vec<String>, tips: Vec<String> },
    /// Words at points (centred, a little above each).
    Texts { xs: Vec<f64>, ys: Vec<f64>, texts: Vec<String> },
    /// Faint lines, each through its own points (many trials at once).
    Polylines { lines: Vec<(Vec<f64>, Vec<f64>)>, colour: &'static str, opacity: f64, tips: Vec<String> },
}

/// A chart: see the module docs.
#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x: Scale,
    pub y: Scale,
    pub marks: Vec<Mark>,
    /// Names and colours shown at the top right.
    pub legend: Vec<(String, &'static str)>,
    /// A line under the title (what was left out, say).
    pub note: Option<String>,
    /// Whether the y axis shows its ticks (not when each position has its
    /// own axis, as in parallel coordinates).
    pub y_ticks: bool,
    /// The margin left of the plotting area: room for the y tick labels.
    left: f64,
}

impl Chart {
    pub fn new(title: &str, x_label: &str, y_label: &str, x: Scale, y: Scale) -> Self {
        // About 7 pixels a character of the longest tick label, within reason.
        let longest = y.ticks().iter().map(|(_, l)| l.chars().count()).max().unwrap_or(0);
        let left = (40.0 + 7.0 * longest as f64).clamp(LEFT, 260.0);
        Chart {
            left,
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x,
            y,
            marks: Vec::new(),
            legend: Vec::new(),
            note: None,
            y_ticks: true,
        }
    }

    fn px(&self, x: f64) -> f64 {
        self.left + self.x.fraction(x) * (WIDTH - self.left - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        HEIGHT - BOTTOM - self.y.fraction(y) * (HEIGHT - TOP - BOTTOM)
    }

    /// Whether (x, y) can be drawn: finite, and positive on a log axis.
    fn drawable(&self, x: f64, y: f64) -> bool {
        let fits = |s: &Scale, v: f64| v.is_finite() && !(matches!(s, Scale::Log { .. }) && v <= 0.0);
        fits(&self.x, x) && fits(&self.y, y)
    }

    /// The picture, as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12" role="img" aria-label="{}">"#,
            escape(&self.title)
        );
        let _ = write!(s, r#"<title>{}</title><rect width="100%" height="100%" fill="white"/>"#, escape(&self.title));
        let _ = write!(
            s,
            r#"<text class="title" x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
            WIDTH / 2.0,
            escape(&self.title)
        );
        if let Some(note) = &self.note {
            let _ = write!(
                s,
                r##"<text class="note" x="{}" y="37" text-anchor="middle" fill="#555">{}</text>"##,
                WIDTH / 2.0,
                escape(note)
            );
        }
        self.axes(&mut s);
        // Unique in a page that holds many charts (a report).
        static CHARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let clip = format!("plot-area-{}", CHARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let _ = write!(
            s,
            r#"<clipPath id="{clip}"><rect x="{}" y="{TOP}" width="{}" height="{}"/></clipPath><g clip-path="url(#{clip})">"#,
            self.left,
            WIDTH - self.left - RIGHT,
            HEIGHT - TOP - BOTTOM
        );
        for mark in &self.marks {
            self.draw(mark, &mut s);
        }
        s.push_str("</g>");
        // The legend: one row above the plotting area.
        let mut x = self.left;
        for (name, colour) in &self.legend {
            let y = TOP - 10.0;
            let _ = write!(
                s,
                r#"<g class="legend"><rect x="{x:.1}" y="{}" width="10" height="10" fill="{colour}"/><text x="{:.1}" y="{y}">{}</text></g>"#,
                y - 9.0,
                x + 14.0,
                escape(name)
            );
            x += 30.0 + 6.5 * name.chars().count() as f64;
        }
        s.push_str("</svg>\n");
        s
    }

    fn axes(&self, s: &mut String) {
        let (x0, x1, y0, y1) = (self.left, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM);
        let _ = write!(
            s,
            r##"<g class="axes" stroke="#333" fill="none"><line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/></g>"##
        );
        let x_ticks = self.x.ticks();
        // Many named ticks (bands) would run into each other: slanted.
        let slant = matches!(self.x, Scale::Bands(_))
            && x_ticks.iter().map(|(_, l)| l.chars().count() as f64 * 7.0).sum::<f64>() > (x1 - x0) * 0.8;
        for (t, label) in x_ticks {
            let x = self.px(t);
            if !(x0 - 0.5..=x1 + 0.5).contains(&x) {
                continue;
            }
            let (anchor, turn) = if slant {
                ("end", format!(r#" transform="rotate(-25 {x:.1} {})""#, y1 + 14.0))
            } else {
                ("middle", String::new())
            };
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" y1="{y1}" x2="{x:.1}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" text-anchor="{anchor}"{turn}>{}</text>"##,
                y1 + 5.0,
                y1 + 14.0,
                escape(&label)
            );
        }
        let y_ticks = if self.y_ticks { self.y.ticks() } else { Vec::new() };
        for (t, label) in y_ticks {
            let y = self.py(t);
            if !(y0 - 0.5..=y1 + 0.5).contains(&y) {
                continue;
            }
            let _ = write!(
                s,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#eee"/><line x1="{}" y1="{y:.1}" x2="{x0}" y2="{y:.1}" stroke="#333"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                x0 - 5.0,
                x0 - 8.0,
                y + 4.0,
                escape(&label)
            );
        }
        let _ = write!(
            s,
            r#"<text class="x-label" x="{}" y="{}" text-anchor="middle">{}</text>"#,
            (x0 + x1) / 2.0,
            HEIGHT - 14.0,
            escape(&self.x_label)
        );
        let _ = write!(
            s,
            r#"<text class="y-label" transform="translate(18 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
            (y0 + y1) / 2.0,
            escape(&self.y_label)
        );
    }

    fn draw(&self, mark: &Mark, s: &mut String) {
        let tip =
            |tips: &[String], i: usize| tips.get(i).map_or(String::new(), |t| format!("<title>{}</title>", escape(t)));
        match mark {
            Mark::Points { xs, ys, colour, tips } => {
                let _ = write!(s, r#"<g class="points" fill="{colour}" fill-opacity="0.8">"#);
                for (i, (&x, &y)) in xs.iter().zip(ys).enumerate().filter(|(_, (x, y))| self.drawable(**x, **y)) {
                    let _ = write!(
                        s,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3.5">{}</circle>"#,
                        self.px(x),
                        self.py(y),
                        tip(tips, i)
                    );
                }
                s.push_str("</g>");
            }
            Mark::Crosses { xs, ys, colour, tips } => {
                let _ = write!(s, r#"<g class="crosses" stroke="{colour}" stroke-width="2">"#);
                for (i, (&x, &y)) in xs.iter().zip(ys).enumerate().filter(|(_, (x, y))| self.drawable(**x, **y)) {
                    let (cx, cy) = (self.px(x), self.py(y));
                    let _ = write!(
                        s,
                        r#"<path d="M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}">{}</path>"#,
                        cx - 4.0,
                        cy - 4.0,
                        cx + 4.0,
                        cy + 4.0,
                        cx - 4.0,
                        cy + 4.0,
                        cx + 4.0,
                        cy - 4.0,
                        tip(tips, i)
                    );
                }
                s.push_str("</g>");
            }
            Mark::Line { xs, ys, colour, step, tip: line_tip } => {
                let mut d = String::new();
                let mut last: Option<(f64, f64)> = None;
                for (&x, &y) in xs.iter().zip(ys).filter(|(x, y)| self.drawable(**x, **y)) {
                    let (px, py) = (self.px(x), self.py(y));
                    match last {
                        None => {
                            let _ = write!(d, "M{px:.1} {py:.1}");
                        }
                        Some((_, ly)) if *step => {
                            let _ = write!(d, "L{px:.1} {ly:.1}L{px:.1} {py:.1}");
                        }
                        Some(_) => {
                            let _ = write!(d, "L{px:.1} {py:.1}");
                        }
                    }
                    last = Some((px, py));
                }
                if !d.is_empty() {
                    let title = line_tip.as_ref().map_or(String::new(), |t| format!("<title>{}</title>", escape(t)));
                    let _ = write!(
                        s,
                        r#"<path class="line" d="{d}" fill="none" stroke="{colour}" stroke-width="1.6" stroke-opacity="0.85">{title}</path>"#
                    );
                }
            }
            Mark::Texts { xs, ys, texts } => {
                s.push_str(r##"<g class="texts" text-anchor="middle" fill="#333">"##);
                for ((&x, &y), t) in xs.iter().zip(ys).zip(texts).filter(|((x, y), _)| self.drawable(**x, **y)) {
                    let _ =
                        write!(s, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, self.px(x), self.py(y) - 4.0, escape(t));
                }
                s.push_str("</g>");
            }
            Mark::Polylines { lines, colour, opacity, tips } => {
                let _ = write!(
                    s,
                    r#"<g class="polylines" fill="none" stroke="{colour}" stroke-opacity="{opacity}" stroke-width="1.2">"#
                );
                for (i, (xs, ys)) in lines.iter().enumerate() {
                    let points: Vec<String> = xs
                        .iter()
                        .zip(ys)
                        .filter(|(x, y)| self.drawable(**x, **y))
                        .map(|(&x, &y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
                        .collect();
                    let _ = write!(s, r#"<polyline points="{}">{}</polyline>"#, points.join(" "), tip(tips, i));
                }
                s.push_str("</g>");
            }
            Mark::Rects { rects, colours, tips } => {
                s.push_str(r#"<g class="rects">"#);
                for (i, r) in rects.iter().enumerate() {
                    if !(self.drawable(r[0], r[1]) && self.drawable(r[2], r[3])) {
                        continue;
                    }
                    let (xa, xb) = (self.px(r[0]), self.px(r[2]));
                    let (ya, yb) = (self.py(r[1]), self.py(r[3]));
                    let colour = colours.get(i).map_or(BLUE, String::as_str);
                    let _ = write!(
                        s,
                        r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}">{}</rect>"#,
                        xa.min(xb),
                        ya.min(yb),
                        (xb - xa).abs().max(1.0),
                        (yb - ya).abs().max(1.0),
                        tip(tips, i)
                    );
                }
                s.push_str("</g>");
            }
        }
    }
}

/// `charts` side by side, `columns` to a row, as one SVG document.
pub fn grid(charts: &[Chart], columns: usize) -> String {
    let columns = columns.clamp(1, charts.len().max(1));
    let rows = charts.len().div_ceil(columns).max(1);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}">"#,
        w = WIDTH * columns as f64,
        h = HEIGHT * rows as f64
    );
    for (i, chart) in charts.iter().enumerate() {
        let (x, y) = ((i % columns) as f64 * WIDTH, (i / columns) as f64 * HEIGHT);
        let inner = chart.to_svg();
        // The chart's own <svg>, placed at its cell.
        s.push_str(&inner.replacen("<svg ", &format!(r#"<svg x="{x}" y="{y}" "#), 1));
    }
    s.push_str("</svg>\n");
    s
}

/// Viridis (matplotlib's perceptually uniform map), at nine stops.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// The colour of `t` in 0 … 1 on the viridis map (dark purple to yellow).
pub fn viridis(t: f64) -> String {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 } * (VIRIDIS.len() - 1) as f64;
    let (i, f) = ((t.floor() as usize).min(VIRIDIS.len() - 2), t - t.floor().min((VIRIDIS.len() - 2) as f64));
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * f).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The y position of band `index`'s edge in data units (for [`Mark::Rects`]
/// on a band scale): its centre ± 0.4.
pub fn band(index: usize) -> (f64, f64) {
    (index as f64 - 0.4, index as f64 + 0.4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_within_the_range() {
        assert_eq!(nice_ticks(0.0, 10.0), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(nice_ticks(0.12, 0.58), [0.2, 0.3, 0.4, 0.5]);
        assert_eq!(nice_ticks(-3.0, 3.0), [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]);
        assert_eq!(nice_ticks(5.0, 5.0), [5.0]);
        let log = Scale::Log { low: 1e-4, high: 0.3 }.ticks();
        let labels: Vec<&str> = log.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["1.00e-4", "0.001", "0.01", "0.1"]);
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        for (v, want) in
            [(0.0, "0"), (0.5, "0.5"), (1234.5678, "1235"), (0.012345, "0.01235"), (2e7, "2.00e7"), (-3.0, "-3")]
        {
            assert_eq!(number(v), want, "{v}");
        }
    }

    #[test]
    fn text_is_escaped_and_the_chart_is_xml() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot; ");
        let mut chart =
            Chart::new("A <title>", "x & y", "value", Scale::linear_over([0.0, 1.0]), Scale::log_over([0.1, 10.0]));
        chart.marks.push(Mark::Points {
            xs: vec![0.0, 1.0, 0.5],
            ys: vec![0.1, 10.0, -1.0],
            colour: BLUE,
            tips: vec!["<one>".into()],
        });
        chart.marks.push(Mark::Line {
            xs: vec![0.0, 1.0],
            ys: vec![1.0, f64::NAN],
            colour: RED,
            step: true,
            tip: None,
        });
        chart.legend.push(("complete".into(), BLUE));
        let svg = chart.to_svg();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(texts.contains(&"A <title>") && texts.contains(&"x & y") && texts.contains(&"<one>"), "{texts:?}");
        // The point at -1 cannot go on a log axis: two circles.
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("circle")).count(), 2);
    }
}
