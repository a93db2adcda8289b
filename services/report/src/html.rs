//! The report as one printable HTML page, laid out from [`crate::doc`]: every style inline,
//! the hourly chart as inline SVG, no script, nothing fetched from anywhere. The status band
//! is fixed, so a browser repeats it on every printed page, and each printed page says "Page N
//! of M" (a page margin box of the style, as the PDF's footer does).

use std::fmt::Write as _;

use saleboard_proto::v1::EventReport;

use crate::doc::{Block, Cell, document};

/// `text` safe inside HTML text and attribute values.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:2.6em 1.6cm 2em;color:#111;font-size:10.5pt}\
h1{font-size:20pt;margin:.2em 0}h2{font-size:13pt;margin-top:1.6em;border-bottom:1px solid #999}h3{font-size:11pt}\
.band{position:fixed;top:0;left:0;right:0;padding:.35em 1.6cm;font-weight:bold;color:#fff;background:#444}\
.band.provisional{background:#b3261e}.headline{font-size:22pt;font-weight:bold}\
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{padding:.15em .4em;border-bottom:1px solid #ddd;text-align:left}\
.n{text-align:right;font-variant-numeric:tabular-nums}.moved{font-weight:bold}\
code{display:block;font-size:8pt;word-break:break-all}\
@page{size:A4;margin:1.5cm;@bottom-right{content:\"Page \" counter(page) \" of \" counter(pages);font-size:8pt;color:#444}}";

fn cell(out: &mut String, tag: &str, c: &Cell) {
    let mut classes = Vec::new();
    if c.numeric {
        classes.push("n");
    }
    if c.strong {
        classes.push("moved");
    }
    if classes.is_empty() {
        let _ = write!(out, "<{tag}>{}</{tag}>", escape(&c.text));
    } else {
        let _ = write!(
            out,
            "<{tag} class=\"{}\">{}</{tag}>",
            classes.join(" "),
            escape(&c.text)
        );
    }
}

/// The hourly national net as an inline SVG bar chart (vectors; no script).
fn chart(caption: &str, bars: &[(String, i128)], label_every: usize) -> String {
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let (w, h) = (680.0_f64, 160.0_f64);
    #[allow(clippy::cast_precision_loss)]
    let bar = w / bars.len().max(1) as f64;
    let mut svg = format!(
        "<figure><svg role=img aria-label=\"{}\" viewBox=\"0 0 {w} {}\" width=\"100%\"><line x1=0 y1={h} x2={w} y2={h} stroke=#333 />",
        escape(caption),
        h + 14.0
    );
    let mut free_from = 0.0_f64;
    for (i, (label, v)) in bars.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let height = ((*v).max(0) as f64) / (max as f64) * h;
        #[allow(clippy::cast_precision_loss)]
        let x = i as f64 * bar;
        let _ = write!(
            svg,
            "<rect x=\"{x:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{height:.2}\" fill=\"#1f5fa8\"><title>{}</title></rect>",
            h - height,
            (bar * 0.85).max(0.5),
            escape(label)
        );
        // Labels where they fit (about 4.6 units a character at this size).
        #[allow(clippy::cast_precision_loss)]
        let label_w = label.chars().count() as f64 * 4.6;
        if label_every > 0 && i % label_every == 0 && x >= free_from && x + label_w <= w {
            free_from = x + label_w + 6.0;
            let _ = write!(
                svg,
                "<text x=\"{x:.2}\" y=\"{}\" font-size=\"8\">{}</text>",
                h + 11.0,
                escape(label)
            );
        }
    }
    let _ = write!(
        svg,
        "</svg><figcaption>{}</figcaption></figure>",
        escape(caption)
    );
    svg
}

/// The report as a page. `hashes`: the data files' names and SHA-256, as the verification
/// statement lists them.
#[must_use]
pub fn page(report: &EventReport, hashes: &[(String, String)]) -> String {
    let doc = document(report, hashes);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{}</title><style>{STYLE}</style></head><body><div class=\"band{}\">{}</div><h1>{}</h1>",
        escape(&doc.title),
        if doc.provisional { " provisional" } else { "" },
        escape(&doc.band),
        escape(&doc.title)
    );
    for block in &doc.blocks {
        match block {
            Block::Heading(t) => {
                let _ = write!(out, "<h2>{}</h2>", escape(t));
            }
            Block::Subheading(t) => {
                let _ = write!(out, "<h3>{}</h3>", escape(t));
            }
            Block::Headline(t) => {
                let _ = write!(out, "<p class=headline>{}</p>", escape(t));
            }
            Block::Para(t) => {
                let _ = write!(out, "<p>{}</p>", escape(t));
            }
            Block::Code(t) => {
                let _ = write!(out, "<code>{}</code>", escape(t));
            }
            Block::Table { header, rows } => {
                out.push_str("<table><tr>");
                for c in header {
                    cell(&mut out, "th", c);
                }
                out.push_str("</tr>");
                for row in rows {
                    out.push_str("<tr>");
                    for c in row {
                        cell(&mut out, "td", c);
                    }
                    out.push_str("</tr>");
                }
                out.push_str("</table>");
            }
            Block::Chart {
                caption,
                bars,
                label_every,
            } => out.push_str(&chart(caption, bars, *label_every)),
        }
    }
    out.push_str("</body></html>\n");
    out
}
