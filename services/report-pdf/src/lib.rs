//! The official report as an A4 PDF (issue 29), laid out from the same document as the HTML
//! page (`saleboard_report::doc`), so the two say the same. Made in-process with `pdf-writer`
//! (chosen by measurement, see ARCHITECTURE.md): DejaVu Sans and DejaVu Sans Bold are in the
//! binary, subset to the glyphs used and embedded (Type0 / CIDFontType2, Identity-H, with a
//! ToUnicode map so the text can be searched and copied); the chart is vectors. Nothing is
//! fetched, nothing depends on the clock: the same report gives the same bytes.

use std::collections::BTreeMap;

use miniz_oxide::deflate::compress_to_vec_zlib;
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str};
use saleboard_proto::v1::EventReport;
use saleboard_report::doc::{Block, Cell, Document, document};
use subsetter::GlyphRemapper;

static REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// A4 in points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const LEFT: f32 = 50.0;
const RIGHT: f32 = PAGE_W - 50.0;
/// Below the band.
const TOP: f32 = 62.0;
/// Above the footer.
const BOTTOM: f32 = PAGE_H - 52.0;

/// Why a PDF cannot be made.
#[derive(Debug)]
pub struct PdfError(String);

impl std::fmt::Display for PdfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot make the PDF: {}", self.0)
    }
}

impl std::error::Error for PdfError {}

/// One embedded font: its face, and the glyphs used so far (renumbered for the subset).
struct Font {
    data: &'static [u8],
    face: ttf_parser::Face<'static>,
    resource: &'static [u8],
    remapper: GlyphRemapper,
    to_unicode: BTreeMap<u16, char>,
}

impl Font {
    fn new(data: &'static [u8], resource: &'static [u8]) -> Result<Self, PdfError> {
        let face = ttf_parser::Face::parse(data, 0).map_err(|e| PdfError(e.to_string()))?;
        let mut remapper = GlyphRemapper::new();
        remapper.remap(0);
        Ok(Self {
            data,
            face,
            resource,
            remapper,
            to_unicode: BTreeMap::new(),
        })
    }

    /// Width of `text` at `size` in points (advances; no kerning).
    fn width(&self, text: &str, size: f32) -> f32 {
        let units: u32 = text
            .chars()
            .map(|c| {
                self.face
                    .glyph_index(c)
                    .and_then(|g| self.face.glyph_hor_advance(g))
                    .map_or(0, u32::from)
            })
            .sum();
        #[allow(clippy::cast_precision_loss)]
        let w = units as f32 * size / f32::from(self.face.units_per_em());
        w
    }

    /// `text` as two-byte glyph ids of the subset, recording what each stands for.
    fn encode(&mut self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let old = self.face.glyph_index(c).map_or(0, |g| g.0);
            let new = self.remapper.remap(old);
            if old != 0 {
                self.to_unicode.entry(new).or_insert(c);
            }
            out.extend_from_slice(&new.to_be_bytes());
        }
        out
    }

    /// Writes the font's objects: Type0, CIDFont, descriptor, the subset program, ToUnicode.
    fn write(
        &self,
        pdf: &mut Pdf,
        next: &mut impl FnMut() -> Ref,
        type0: Ref,
    ) -> Result<(), PdfError> {
        let (cid_ref, descriptor, file, cmap_ref) = (next(), next(), next(), next());
        let scale = |v: f32| v * 1000.0 / f32::from(self.face.units_per_em());
        // The subset's tag, from the glyphs it holds (the same glyphs, the same tag).
        let mut h: u32 = 2_166_136_261;
        for g in self.remapper.remapped_gids() {
            h = (h ^ u32::from(g)).wrapping_mul(16_777_619);
        }
        let tag: String = (0..6)
            .map(|i| char::from(b'A' + u8::try_from((h >> (i * 5)) % 26).unwrap_or(0)))
            .collect();
        let ps_name = self
            .face
            .names()
            .into_iter()
            .find(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME && n.is_unicode())
            .and_then(|n| n.to_string())
            .unwrap_or_else(|| "DejaVuSans".into());
        let base_font = format!("{tag}+{ps_name}");
        let base = Name(base_font.as_bytes());
        pdf.type0_font(type0)
            .base_font(base)
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid_ref)
            .to_unicode(cmap_ref);
        let system = SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        };
        let mut cid = pdf.cid_font(cid_ref);
        cid.subtype(CidFontType::Type2)
            .base_font(base)
            .system_info(system)
            .font_descriptor(descriptor)
            .default_width(0.0)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        let widths: Vec<f32> = self
            .remapper
            .remapped_gids()
            .map(|old| {
                scale(f32::from(
                    self.face
                        .glyph_hor_advance(ttf_parser::GlyphId(old))
                        .unwrap_or(0),
                ))
            })
            .collect();
        cid.widths().consecutive(0, widths);
        cid.finish();
        let bbox = self.face.global_bounding_box();
        let ascent = scale(f32::from(self.face.ascender()));
        pdf.font_descriptor(descriptor)
            .name(base)
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(
                scale(f32::from(bbox.x_min)),
                scale(f32::from(bbox.y_min)),
                scale(f32::from(bbox.x_max)),
                scale(f32::from(bbox.y_max)),
            ))
            .italic_angle(self.face.italic_angle())
            .ascent(ascent)
            .descent(scale(f32::from(self.face.descender())))
            .cap_height(
                self.face
                    .capital_height()
                    .map_or(ascent, |c| scale(f32::from(c))),
            )
            .stem_v(80.0)
            .font_file2(file);
        let subset = subsetter::subset(self.data, 0, &self.remapper)
            .map_err(|e| PdfError(format!("{e:?}")))?;
        let packed = compress_to_vec_zlib(&subset, 6);
        pdf.stream(file, &packed).filter(Filter::FlateDecode).pair(
            Name(b"Length1"),
            i32::try_from(subset.len()).unwrap_or(i32::MAX),
        );
        let mut cmap = UnicodeCmap::new(Name(b"Custom"), system);
        for (&gid, &c) in &self.to_unicode {
            cmap.pair(gid, c);
        }
        pdf.cmap(cmap_ref, &cmap.finish());
        Ok(())
    }
}

/// Which face.
#[derive(Clone, Copy)]
enum Face {
    Regular,
    Bold,
}

/// Pages being laid out, top to bottom.
struct Layout {
    regular: Font,
    bold: Font,
    pages: Vec<Content>,
    /// The page drawn on: the last one, unless set (the bands and footers drawn at the end).
    target: Option<usize>,
    /// Distance from the top of the page of the next line's top.
    y: f32,
}

impl Layout {
    fn font(&mut self, face: Face) -> &mut Font {
        match face {
            Face::Regular => &mut self.regular,
            Face::Bold => &mut self.bold,
        }
    }

    fn width(&self, face: Face, text: &str, size: f32) -> f32 {
        match face {
            Face::Regular => self.regular.width(text, size),
            Face::Bold => self.bold.width(text, size),
        }
    }

    fn page(&mut self) -> &mut Content {
        if self.pages.is_empty() {
            self.pages.push(Content::new());
        }
        let i = self
            .target
            .unwrap_or(self.pages.len() - 1)
            .min(self.pages.len() - 1);
        &mut self.pages[i]
    }

    fn new_page(&mut self) {
        self.pages.push(Content::new());
        self.y = TOP;
    }

    /// Makes room for `height` below the cursor, on a new page if this one is full.
    fn room(&mut self, height: f32) {
        if self.y + height > BOTTOM && self.y > TOP {
            self.new_page();
        }
    }

    /// Draws `text` with its baseline `size` below `top`, from `x`.
    fn text_at(&mut self, face: Face, size: f32, x: f32, top: f32, text: &str) {
        let font = self.font(face);
        let bytes = font.encode(text);
        let resource = font.resource;
        let page = self.page();
        page.begin_text();
        page.set_font(Name(resource), size);
        page.next_line(x, PAGE_H - top - size);
        page.show(Str(&bytes));
        page.end_text();
    }

    /// `text` broken into lines no wider than `width` (at words; a word wider than a line is
    /// broken anywhere).
    fn wrap(&self, face: Face, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split(' ') {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if self.width(face, &candidate, size) <= width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // The word alone; broken anywhere if it is still too wide.
            for c in word.chars() {
                let mut next = line.clone();
                next.push(c);
                if self.width(face, &next, size) > width && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    line.push(c);
                } else {
                    line = next;
                }
            }
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        lines
    }

    fn paragraph(&mut self, face: Face, size: f32, text: &str, before: f32) {
        let leading = size * 1.3;
        self.y += before;
        for line in self.wrap(face, text, size, RIGHT - LEFT) {
            self.room(leading);
            let y = self.y;
            self.text_at(face, size, LEFT, y, &line);
            self.y += leading;
        }
    }

    fn rule(&mut self, top: f32, gray: f32) {
        let page = self.page();
        page.set_stroke_gray(gray);
        page.set_line_width(0.5);
        page.move_to(LEFT, PAGE_H - top);
        page.line_to(RIGHT, PAGE_H - top);
        page.stroke();
    }

    fn table(&mut self, header: &[Cell], rows: &[Vec<Cell>]) {
        const SIZE: f32 = 8.5;
        const PAD: f32 = 6.0;
        let leading = SIZE * 1.3;
        let columns = header.len();
        if columns == 0 {
            return;
        }
        // Natural widths; figures keep theirs, text columns share the rest.
        let mut natural = vec![0.0_f32; columns];
        for (n, row) in std::iter::once(header)
            .chain(rows.iter().map(Vec::as_slice))
            .enumerate()
        {
            for (i, c) in row.iter().enumerate().take(columns) {
                let face = if n == 0 || c.strong {
                    Face::Bold
                } else {
                    Face::Regular
                };
                natural[i] = natural[i].max(self.width(face, &c.text, SIZE) + PAD);
            }
        }
        let available = RIGHT - LEFT;
        let fixed: f32 = (0..columns)
            .filter(|&i| header[i].numeric)
            .map(|i| natural[i])
            .sum();
        let flexible: f32 = (0..columns)
            .filter(|&i| !header[i].numeric)
            .map(|i| natural[i])
            .sum();
        let widths: Vec<f32> = if fixed + flexible <= available || flexible <= 0.0 {
            natural
        } else {
            let rest = (available - fixed).max(available * 0.3);
            (0..columns)
                .map(|i| {
                    if header[i].numeric {
                        natural[i]
                    } else {
                        natural[i] / flexible * rest
                    }
                })
                .collect()
        };
        let face_of = |c: &Cell, bold: bool| {
            if bold || c.strong {
                Face::Bold
            } else {
                Face::Regular
            }
        };
        let wrap_row = |layout: &Self, row: &[Cell], bold: bool| -> Vec<Vec<String>> {
            row.iter()
                .enumerate()
                .take(columns)
                .map(|(i, c)| layout.wrap(face_of(c, bold), &c.text, SIZE, widths[i] - PAD))
                .collect()
        };
        let draw_row = |layout: &mut Self, row: &[Cell], wrapped: &[Vec<String>], bold: bool| {
            let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1);
            #[allow(clippy::cast_precision_loss)]
            let height = lines as f32 * leading + 2.0;
            let top = layout.y;
            let mut x = LEFT;
            for (i, cell_lines) in wrapped.iter().enumerate() {
                let c = &row[i];
                let face = face_of(c, bold);
                for (n, line) in cell_lines.iter().enumerate() {
                    let lx = if c.numeric {
                        x + widths[i] - PAD / 2.0 - layout.width(face, line, SIZE)
                    } else {
                        x + PAD / 2.0
                    };
                    #[allow(clippy::cast_precision_loss)]
                    let ly = top + 1.0 + n as f32 * leading;
                    layout.text_at(face, SIZE, lx, ly, line);
                }
                x += widths[i];
            }
            layout.y += height;
            let y = layout.y;
            layout.rule(y, if bold { 0.3 } else { 0.85 });
        };
        let head = wrap_row(self, header, true);
        #[allow(clippy::cast_precision_loss)]
        let height_of =
            |w: &[Vec<String>]| w.iter().map(Vec::len).max().unwrap_or(1) as f32 * leading + 2.0;
        self.y += 4.0;
        self.room(height_of(&head) + leading * 2.0);
        draw_row(self, header, &head, true);
        for row in rows {
            let wrapped = wrap_row(self, row, false);
            if self.y + height_of(&wrapped) > BOTTOM {
                // A table that goes on over a page names its columns again there.
                self.new_page();
                draw_row(self, header, &head, true);
            }
            draw_row(self, row, &wrapped, false);
        }
        self.y += 4.0;
    }

    fn chart(&mut self, caption: &str, bars: &[(String, i128)], label_every: usize) {
        const HEIGHT: f32 = 150.0;
        self.room(HEIGHT + 40.0);
        let top = self.y + 6.0;
        let base = top + HEIGHT;
        let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
        #[allow(clippy::cast_precision_loss)]
        let step = (RIGHT - LEFT) / bars.len().max(1) as f32;
        {
            let page = self.page();
            page.set_fill_rgb(0.12, 0.37, 0.66);
            for (i, (_, v)) in bars.iter().enumerate() {
                #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
                let h = ((*v).max(0) as f64 / max as f64) as f32 * HEIGHT;
                #[allow(clippy::cast_precision_loss)]
                let x = LEFT + i as f32 * step;
                page.rect(x, PAGE_H - base, (step * 0.85).max(0.3), h);
            }
            page.fill_nonzero();
            page.set_fill_gray(0.0);
            page.set_stroke_gray(0.0);
            page.set_line_width(0.8);
            page.move_to(LEFT, PAGE_H - top);
            page.line_to(LEFT, PAGE_H - base);
            page.line_to(RIGHT, PAGE_H - base);
            page.stroke();
        }
        // Labels where they fit: one never runs into the one before.
        let mut free_from = LEFT;
        for (i, (label, _)) in bars.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let x = LEFT + i as f32 * step;
            let w = self.width(Face::Regular, label, 6.5);
            if label_every > 0 && i % label_every == 0 && x >= free_from && x + w <= RIGHT {
                self.text_at(Face::Regular, 6.5, x, base + 3.0, label);
                free_from = x + w + 6.0;
            }
        }
        self.y = base + 14.0;
        self.paragraph(Face::Regular, 8.5, caption, 0.0);
    }
}

/// The report as PDF bytes. `hashes`: the data files' names and SHA-256, as the verification
/// statement lists them.
///
/// # Errors
/// When the embedded fonts cannot be read or subset (never for the fonts built in).
pub fn render(report: &EventReport, hashes: &[(String, String)]) -> Result<Vec<u8>, PdfError> {
    render_document(&document(report, hashes))
}

/// A document as PDF bytes.
///
/// # Errors
/// As [`render`].
pub fn render_document(doc: &Document) -> Result<Vec<u8>, PdfError> {
    let mut layout = Layout {
        regular: Font::new(REGULAR, b"F1")?,
        bold: Font::new(BOLD, b"F2")?,
        pages: vec![Content::new()],
        target: None,
        y: TOP,
    };
    layout.paragraph(Face::Bold, 18.0, &doc.title, 0.0);
    for block in &doc.blocks {
        match block {
            Block::Heading(t) => {
                // A heading stays with the start of what it heads.
                layout.room(140.0);
                layout.paragraph(Face::Bold, 12.5, t, 12.0);
                let y = layout.y;
                layout.rule(y - 2.0, 0.5);
                layout.y += 3.0;
            }
            Block::Subheading(t) => layout.paragraph(Face::Bold, 10.0, t, 6.0),
            Block::Headline(t) => layout.paragraph(Face::Bold, 20.0, t, 2.0),
            Block::Para(t) => layout.paragraph(Face::Regular, 9.5, t, 3.0),
            Block::Code(t) => layout.paragraph(Face::Regular, 7.0, t, 0.0),
            Block::Table { header, rows } => layout.table(header, rows),
            Block::Chart {
                caption,
                bars,
                label_every,
            } => layout.chart(caption, bars, *label_every),
        }
    }
    // The band and the footer on every page, now that the pages are counted.
    let total = layout.pages.len();
    for n in 0..total {
        let footer = format!("Page {} of {total}", n + 1);
        let band = doc.band.clone();
        {
            let page = &mut layout.pages[n];
            if doc.provisional {
                page.set_fill_rgb(0.70, 0.15, 0.12);
            } else {
                page.set_fill_gray(0.27);
            }
            page.rect(0.0, PAGE_H - 30.0, PAGE_W, 30.0);
            page.fill_nonzero();
            page.set_fill_gray(1.0);
        }
        layout.target = Some(n);
        let band_lines = layout.wrap(Face::Bold, &band, 8.5, PAGE_W - 2.0 * LEFT);
        for (i, line) in band_lines.iter().take(2).enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let top = if band_lines.len() > 1 { 4.0 } else { 10.0 } + i as f32 * 11.0;
            layout.text_at(Face::Bold, 8.5, LEFT, top, line);
        }
        layout.page().set_fill_gray(0.3);
        let w = layout.width(Face::Regular, &footer, 8.0);
        layout.text_at(
            Face::Regular,
            8.0,
            (PAGE_W - w) / 2.0,
            PAGE_H - 36.0,
            &footer,
        );
        layout.target = None;
    }

    let mut pdf = Pdf::new();
    let mut count = 0;
    let mut next = || {
        count += 1;
        Ref::new(count)
    };
    let (catalog, tree, regular, bold) = (next(), next(), next(), next());
    let page_refs: Vec<(Ref, Ref)> = (0..total).map(|_| (next(), next())).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_refs.iter().map(|(p, _)| *p))
        .count(i32::try_from(total).unwrap_or(i32::MAX));
    for ((page_ref, content_ref), content) in page_refs.iter().zip(layout.pages) {
        let mut page = pdf.page(*page_ref);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H))
            .parent(tree)
            .contents(*content_ref);
        page.resources()
            .fonts()
            .pair(Name(b"F1"), regular)
            .pair(Name(b"F2"), bold);
        page.finish();
        let packed = compress_to_vec_zlib(&content.finish(), 6);
        pdf.stream(*content_ref, &packed)
            .filter(Filter::FlateDecode);
    }
    layout.regular.write(&mut pdf, &mut next, regular)?;
    layout.bold.write(&mut pdf, &mut next, bold)?;
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use saleboard_report::doc::{Block, Cell, Document};

    fn doc(rows: usize, provisional: bool) -> Document {
        Document {
            title: "Harbolnas 2026 — FINAL".into(),
            band: "FINAL · Harbolnas 2026 · final figures, ledger position 42".into(),
            provisional,
            blocks: vec![
                Block::Heading("1. Headline".into()),
                Block::Headline("Net Rp 31.234.567.890".into()),
                Block::Table {
                    header: vec![Cell { text: "site".into(), numeric: false, strong: false }, Cell { text: "net".into(), numeric: true, strong: false }],
                    rows: (0..rows)
                        .map(|i| {
                            vec![
                                Cell { text: format!("Toko {i} with a rather long name that must wrap somewhere in its column because it goes on"), numeric: false, strong: false },
                                Cell { text: format!("Rp {i}.000"), numeric: true, strong: i == 1 },
                            ]
                        })
                        .collect(),
                },
                Block::Chart { caption: "per hour".into(), bars: (0..24).map(|i| (format!("{i:02}:00"), i * 10)).collect(), label_every: 4 },
                Block::Code("ab".repeat(40)),
            ],
        }
    }

    fn page_count(pdf: &[u8]) -> usize {
        let text = String::from_utf8_lossy(pdf);
        text.matches("/Type /Page\n").count()
            + text.matches("/Type /Page ").count()
            + text.matches("/Type /Page/").count()
    }

    #[test]
    fn the_same_document_gives_the_same_bytes() {
        let a = render_document(&doc(5, false)).expect("pdf");
        let b = render_document(&doc(5, false)).expect("pdf");
        assert!(a.starts_with(b"%PDF-"));
        assert_eq!(a, b);
        // Subset fonts are embedded, not the whole 700 KB faces.
        assert!(a.len() < 80_000, "{} bytes", a.len());
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("/FontFile2") && text.contains("/ToUnicode"));
        assert!(text.contains("+DejaVuSans-Bold") && text.contains("+DejaVuSans"));
    }

    #[test]
    fn a_long_table_goes_on_over_pages() {
        let short = render_document(&doc(5, true)).expect("pdf");
        let long = render_document(&doc(400, true)).expect("pdf");
        let (s, l) = (page_count(&short), page_count(&long));
        assert_eq!(s, 1, "short: {s} pages");
        assert!(l > 5, "long: {l} pages");
    }
}
