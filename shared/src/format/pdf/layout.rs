//! Where things go on a report page: A4 in portrait or landscape, the page header (title,
//! generation time, filters), the table (header row, rows at a fixed height) and the footer,
//! and the width of each column. All lengths are in points (1/72 inch), from the top left.

use crate::model::spec::PdfOrientation;

/// A4 in points.
const A4_SHORT: f32 = 595.28;
const A4_LONG: f32 = 841.89;
pub const MARGIN: f32 = 28.0;

pub const TITLE_SIZE: f32 = 12.0;
pub const META_SIZE: f32 = 7.0;
pub const META_LINE: f32 = 9.0;
/// Lines of filters in the page header at most; the last is cut with an ellipsis.
pub const MAX_FILTER_LINES: usize = 3;
pub const CELL_SIZE: f32 = 7.0;
pub const ROW_HEIGHT: f32 = 10.0;
pub const HEADER_ROW_HEIGHT: f32 = 12.0;
/// Space between a cell's text and the column's edges.
pub const CELL_PAD: f32 = 3.0;
/// A column keeps at least this width (or its natural width, if smaller) before the page
/// turns landscape.
pub const MIN_COLUMN: f32 = 60.0;
/// Narrower than this, a column shows nothing useful: the table does not fit.
pub const FLOOR_COLUMN: f32 = 14.0;
/// A column's natural width is capped here: a long memo should not take the whole page.
pub const MAX_NATURAL: f32 = 220.0;

/// The size of a page and the vertical positions of its parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Page {
    pub width: f32,
    pub height: f32,
    pub landscape: bool,
    /// Top of the table's header row.
    pub table_top: f32,
    /// Baseline of the footer line.
    pub footer_baseline: f32,
    /// Data rows per page.
    pub rows_per_page: usize,
}

impl Page {
    /// The page for `landscape`, with `filter_lines` lines of filters in its header.
    pub fn new(landscape: bool, filter_lines: usize) -> Page {
        let (width, height) = if landscape { (A4_LONG, A4_SHORT) } else { (A4_SHORT, A4_LONG) };
        // Title, the generation line, the filter lines, then a gap before the table.
        let table_top = MARGIN + TITLE_SIZE + 4.0 + META_LINE * (1 + filter_lines) as f32 + 6.0;
        let footer_baseline = height - MARGIN;
        let table_bottom = footer_baseline - META_LINE - 4.0;
        let rows_per_page = (((table_bottom - table_top - HEADER_ROW_HEIGHT) / ROW_HEIGHT).floor() as usize).max(1);
        Page { width, height, landscape, table_top, footer_baseline, rows_per_page }
    }

    /// The width between the margins.
    pub fn usable_width(&self) -> f32 {
        self.width - 2.0 * MARGIN
    }
}

/// Whether the report is landscape: as asked, or under `auto` when the columns at their
/// minimum widths (the smaller of [`MIN_COLUMN`] and their natural width) do not fit a portrait
/// page.
pub fn choose_landscape(orientation: PdfOrientation, natural: &[f32]) -> bool {
    match orientation {
        PdfOrientation::Portrait => false,
        PdfOrientation::Landscape => true,
        PdfOrientation::Auto => {
            let min: f32 = natural.iter().map(|w| w.min(MIN_COLUMN)).sum();
            min > A4_SHORT - 2.0 * MARGIN
        }
    }
}

/// Column widths that fill `usable` exactly. Wider than needed, columns share the slack in
/// proportion to their natural widths. Narrower: the `fixed` columns (numbers, dates,
/// timestamps: short and useless when cut) keep their natural widths if the others can still
/// have [`FLOOR_COLUMN`] each, and the text columns give way, the widest first (see [`fill`]);
/// failing that, all columns give way alike. `None` when even [`FLOOR_COLUMN`] per column does
/// not fit.
pub fn column_widths(natural: &[f32], fixed: &[bool], usable: f32) -> Option<Vec<f32>> {
    if natural.is_empty() {
        return Some(Vec::new());
    }
    if natural.len() as f32 * FLOOR_COLUMN > usable {
        return None;
    }
    let natural: Vec<f32> = natural.iter().map(|w| w.clamp(FLOOR_COLUMN, MAX_NATURAL)).collect();
    let total: f32 = natural.iter().sum();
    if total <= usable {
        let k = usable / total;
        return Some(natural.iter().map(|w| w * k).collect());
    }
    let is_fixed = |i: usize| fixed.get(i).copied().unwrap_or(false);
    let fixed_total: f32 = natural.iter().enumerate().filter(|(i, _)| is_fixed(*i)).map(|(_, w)| w).sum();
    let text: Vec<f32> = natural.iter().enumerate().filter(|(i, _)| !is_fixed(*i)).map(|(_, w)| *w).collect();
    let left = usable - fixed_total;
    if !text.is_empty() && left >= text.len() as f32 * FLOOR_COLUMN {
        let cap = fill(&text, left);
        return Some(natural.iter().enumerate().map(|(i, w)| if is_fixed(i) { *w } else { w.min(cap) }).collect());
    }
    let cap = fill(&natural, usable);
    Some(natural.iter().map(|w| w.min(cap)).collect())
}

/// Water filling: the cap such that the widths, each cut to it, add up to `usable` (which is
/// less than their sum).
fn fill(widths: &[f32], usable: f32) -> f32 {
    let mut sorted = widths.to_vec();
    sorted.sort_by(f32::total_cmp);
    let mut left = usable;
    for (i, w) in sorted.iter().enumerate() {
        let share = left / (sorted.len() - i) as f32;
        if *w > share {
            return share;
        }
        left -= w;
    }
    usable / sorted.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_tables_fill_the_width_in_proportion() {
        let w = column_widths(&[50.0, 100.0], &[], 300.0).unwrap();
        assert!((w[0] - 100.0).abs() < 1e-3 && (w[1] - 200.0).abs() < 1e-3, "{w:?}");
    }

    #[test]
    fn wide_columns_give_way_first() {
        let w = column_widths(&[40.0, 40.0, 200.0, 200.0], &[], 300.0).unwrap();
        assert_eq!(&w[..2], &[40.0, 40.0]);
        assert!((w[2] - 110.0).abs() < 1e-3 && (w[3] - 110.0).abs() < 1e-3, "{w:?}");
        assert!((w.iter().sum::<f32>() - 300.0).abs() < 1e-3);
    }

    #[test]
    fn numbers_and_dates_keep_their_width_while_text_gives_way() {
        let w = column_widths(&[100.0, 120.0, 200.0, 200.0], &[true, true, false, false], 300.0).unwrap();
        assert_eq!(&w[..2], &[100.0, 120.0]);
        assert!((w[2] - 40.0).abs() < 1e-3 && (w[3] - 40.0).abs() < 1e-3, "{w:?}");
        // When the text columns would get less than the floor, all give way alike.
        let w = column_widths(&[100.0, 190.0, 200.0], &[true, true, false], 300.0).unwrap();
        assert!(w[1] < 190.0 && w[2] >= 50.0, "{w:?}");
        assert!((w.iter().sum::<f32>() - 300.0).abs() < 1e-3);
    }

    #[test]
    fn too_many_columns_do_not_fit() {
        assert!(column_widths(&[30.0; 100], &[], 500.0).is_none());
    }

    #[test]
    fn auto_turns_landscape_only_when_minimum_widths_overflow_portrait() {
        assert!(!choose_landscape(PdfOrientation::Auto, &[100.0; 4]));
        assert!(choose_landscape(PdfOrientation::Auto, &[100.0; 13]));
        assert!(!choose_landscape(PdfOrientation::Auto, &[30.0; 13]));
        assert!(choose_landscape(PdfOrientation::Landscape, &[10.0]));
        assert!(!choose_landscape(PdfOrientation::Portrait, &[100.0; 13]));
    }

    #[test]
    fn pages_hold_rows_between_header_and_footer() {
        let p = Page::new(false, 1);
        let l = Page::new(true, 1);
        assert!(p.rows_per_page > l.rows_per_page && l.rows_per_page > 30, "{} {}", p.rows_per_page, l.rows_per_page);
        let bottom = p.table_top + HEADER_ROW_HEIGHT + p.rows_per_page as f32 * ROW_HEIGHT;
        assert!(bottom < p.footer_baseline - META_LINE);
        assert!(Page::new(false, 3).rows_per_page < p.rows_per_page);
    }
}
