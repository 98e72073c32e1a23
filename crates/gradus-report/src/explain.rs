//! Pictures of a model's explanation, drawn from plain numbers (the
//! training crate computes them; this module knows nothing of models):
//! permutation importance bars with their confidence intervals, partial
//! dependence with ICE curves, saliency maps beside their images, and one
//! self-contained HTML page that joins them.

use std::fmt::Write as _;

use crate::svg::{BLUE, Chart, GREY, Mark, RED, Scale, escape, number};

/// One column's permutation importance: its mean drop in the score and
/// the 95% confidence interval of that mean.
pub struct ImportanceBar {
    pub column: String,
    pub mean: f64,
    pub ci: [f64; 2],
}

/// Horizontal bars, the most important column on top, each with its
/// interval; a line marks zero (no effect).
pub fn permutation_chart(title: &str, metric: &str, bars: &[ImportanceBar], note: &str) -> Chart {
    // Bottom to top: the least important first.
    let names: Vec<String> = bars.iter().rev().map(|b| b.column.clone()).collect();
    let values = bars.iter().flat_map(|b| [b.ci[0], b.ci[1], b.mean, 0.0]);
    let mut chart = Chart::new(
        title,
        &format!("drop in {metric} when the column is shuffled (95% interval)"),
        "column",
        Scale::linear_over(values),
        Scale::Bands(names),
    );
    chart.note = Some(note.into());
    let n = bars.len();
    let (mut rects, mut tips) = (Vec::new(), Vec::new());
    for (i, b) in bars.iter().enumerate() {
        let at = (n - 1 - i) as f64;
        rects.push([0.0f64.min(b.mean), at - 0.3, 0.0f64.max(b.mean), at + 0.3]);
        tips.push(format!(
            "{}: {} (95% interval {} to {})",
            b.column,
            number(b.mean),
            number(b.ci[0]),
            number(b.ci[1])
        ));
        chart.marks.push(Mark::Line {
            xs: vec![b.ci[0], b.ci[1]],
            ys: vec![at, at],
            colour: "#333333",
            step: false,
            tip: None,
        });
    }
    let colours = bars.iter().map(|b| if b.ci[0] > 0.0 || b.ci[1] < 0.0 { BLUE } else { GREY }.to_string()).collect();
    chart.marks.insert(0, Mark::Rects { rects, colours, tips });
    chart.marks.push(Mark::Line {
        xs: vec![0.0, 0.0],
        ys: vec![-0.5, n as f64 - 0.5],
        colour: RED,
        step: false,
        tip: None,
    });
    chart.legend = vec![("interval clear of 0".into(), BLUE), ("not distinguishable from 0".into(), GREY)];
    chart
}

/// A column's partial dependence (the mean response, bold) over faint ICE
/// curves, one per sampled row: `values` on a number axis, or with `labels`
/// only (NaN values) one band per category.
pub fn dependence_chart(
    column: &str,
    response: &str,
    values: &[f64],
    labels: &[String],
    average: &[f64],
    ice: &[Vec<f64>],
) -> Chart {
    let numeric = values.iter().all(|v| v.is_finite());
    let xs: Vec<f64> = if numeric { values.to_vec() } else { (0..labels.len()).map(|i| i as f64).collect() };
    let x = if numeric { Scale::linear_over(xs.iter().copied()) } else { Scale::Bands(labels.to_vec()) };
    let y = Scale::linear_over(ice.iter().flatten().chain(average).copied());
    let mut chart = Chart::new(&format!("Partial dependence on {column}"), column, response, x, y);
    chart.note = Some(format!("mean over the rows (blue) and {} rows' own curves (ICE, grey)", ice.len()));
    chart.marks.push(Mark::Polylines {
        lines: ice.iter().map(|c| (xs.clone(), c.clone())).collect(),
        colour: GREY,
        opacity: 0.35,
        tips: Vec::new(),
    });
    chart.marks.push(Mark::Line {
        xs: xs.clone(),
        ys: average.to_vec(),
        colour: BLUE,
        step: false,
        tip: Some(format!("partial dependence on {column}")),
    });
    chart.marks.push(Mark::Points {
        xs,
        ys: average.to_vec(),
        colour: BLUE,
        tips: labels.iter().zip(average).map(|(l, a)| format!("{column} = {l}: {}", number(*a))).collect(),
    });
    chart.legend = vec![("partial dependence".into(), BLUE), ("ICE".into(), GREY)];
    chart
}

/// An image and its saliency map side by side, as one SVG: the image in
/// grey (its own range), the map in a diverging scale (blue where the
/// input pushes the class's output down, red where up, white at 0;
/// symmetric around 0 at the map's largest magnitude). `image` and `map`
/// hold `height × width` values (the first channel's, of several).
pub fn saliency_svg(title: &str, height: usize, width: usize, image: &[f32], map: &[f32]) -> String {
    const CELL: f64 = 6.0;
    let panel = width as f64 * CELL;
    let (w, h) = (2.0 * panel + 30.0, height as f64 * CELL + 40.0);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\"><title>{}</title>",
        escape(title)
    );
    let _ = write!(s, "<text x=\"0\" y=\"14\" font-family=\"sans-serif\" font-size=\"12\">{}</text>", escape(title));
    let (lo, hi) = image.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let top = map.iter().fold(0.0f32, |a, &v| a.max(v.abs())).max(f32::MIN_POSITIVE);
    for (panel_x, values) in [(0.0, image), (panel + 30.0, map)] {
        for r in 0..height {
            for c in 0..width {
                let v = values[r * width + c];
                let fill = if panel_x == 0.0 {
                    let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
                    let g = (255.0 * (1.0 - t)).round() as u8;
                    format!("#{g:02x}{g:02x}{g:02x}")
                } else {
                    diverging(v / top)
                };
                let _ = write!(
                    s,
                    "<rect x=\"{}\" y=\"{}\" width=\"{CELL}\" height=\"{CELL}\" fill=\"{fill}\"/>",
                    panel_x + c as f64 * CELL,
                    24.0 + r as f64 * CELL
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// White at 0, red towards +1, blue towards −1.
fn diverging(t: f32) -> String {
    let t = t.clamp(-1.0, 1.0);
    let fade = |full: u8, t: f32| (255.0 - (255.0 - f32::from(full)) * t.abs()).round() as u8;
    let (r, g, b) =
        if t >= 0.0 { (fade(213, t), fade(94, t), fade(0, t)) } else { (fade(0, t), fade(114, t), fade(178, t)) };
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A section of the page: a heading and its HTML (SVG, tables).
pub struct Section {
    pub heading: String,
    pub html: String,
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1480px;color:#222}\
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}\
th{background:#f4f4f4}td.text{text-align:left}.note{color:#666}svg{max-width:100%;height:auto}\
.maps svg{margin:0 1em 1em 0}section{page-break-inside:avoid}@media print{body{margin:0}}";

/// One self-contained HTML page: the title, a line under it, the sections
/// in order; no script, nothing fetched.
pub fn page(title: &str, subtitle: &str, sections: &[Section]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head><body><h1>{t}</h1><p class=\"note\">{}</p>",
        escape(subtitle),
        t = escape(title)
    );
    for section in sections {
        let _ = write!(h, "<section><h2>{}</h2>{}</section>", escape(&section.heading), section.html);
    }
    h.push_str("</body></html>\n");
    h
}

/// An HTML table: a header row and rows of cells (text left-aligned where
/// `text_columns` says so).
pub fn table(header: &[&str], rows: &[Vec<String>], text_columns: &[usize]) -> String {
    let mut h = String::from("<table><tr>");
    for c in header {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h.push_str("</tr>");
    for row in rows {
        h.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if text_columns.contains(&i) { " class=\"text\"" } else { "" };
            let _ = write!(h, "<td{class}>{}</td>", escape(cell));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parses(svg: &str) {
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
    }

    #[test]
    fn every_picture_is_xml_with_a_title() {
        let bars = [
            ImportanceBar { column: "a<b".into(), mean: 0.2, ci: [0.15, 0.25] },
            ImportanceBar { column: "c".into(), mean: -0.001, ci: [-0.01, 0.008] },
        ];
        let svg = permutation_chart("Permutation importance", "accuracy", &bars, "5 repeats").to_svg();
        parses(&svg);
        assert!(svg.contains("a&lt;b") && svg.contains("drop in accuracy"));
        let ice = vec![vec![0.1, 0.2, 0.4], vec![0.3, 0.2, 0.1]];
        let labels = ["1".to_string(), "2".into(), "3".into()];
        let svg = dependence_chart("x", "p(yes)", &[1.0, 2.0, 3.0], &labels, &[0.2, 0.2, 0.25], &ice).to_svg();
        parses(&svg);
        assert!(svg.contains("Partial dependence on x"));
        let svg = dependence_chart("kind", "p(yes)", &[f64::NAN; 3], &labels, &[0.2, 0.2, 0.25], &ice).to_svg();
        parses(&svg);
        let svg = saliency_svg("digit 3", 2, 2, &[0.0, 1.0, 2.0, 3.0], &[0.0, -1.0, 0.5, 2.0]);
        parses(&svg);
        assert_eq!(svg.matches("<rect").count(), 8);
        assert!(svg.contains("#ffffff"), "0 is white");
        let html = page(
            "Explanation",
            "m on d",
            &[Section { heading: "A".into(), html: table(&["x"], &[vec!["1".into()]], &[]) }],
        );
        assert!(html.contains("<h2>A</h2>") && !html.contains("<script"));
    }

    #[test]
    fn the_diverging_scale_ends_at_the_palette() {
        assert_eq!(diverging(0.0), "#ffffff");
        assert_eq!(diverging(1.0), "#d55e00");
        assert_eq!(diverging(-1.0), "#0072b2");
    }
}
