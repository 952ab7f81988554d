//! The fonts a PDF report embeds, and text turned into positioned glyphs.
//!
//! DejaVu Sans and DejaVu Sans Bold ship inside the binary, cut down by `infra/fonts/subset.sh`
//! to Latin (Basic, Latin-1, Extended-A and -B), Greek, Cyrillic, general punctuation and
//! currency symbols (licence: `shared/assets/fonts/LICENSE-DejaVu.txt`); krilla subsets them
//! again to the glyphs each document uses. Text is laid out one glyph per character, without
//! shaping (none of these scripts needs it). A character the font lacks is drawn as U+FFFD
//! (`?` if the font had none), and a control character (tab, line break) as a space: PDF/A
//! forbids drawing the font's `.notdef` glyph, and a report should not fail on one odd
//! character. The attached CSV keeps the exact text.

use std::ops::Range;
use std::sync::LazyLock;

use krilla::text::{Font, GlyphId, KrillaGlyph};
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};

static REGULAR_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-subset.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold-subset.ttf");

/// Code points looked up in a table; the subset has nothing above this but U+FFFD.
const TABLE_END: u32 = 0x2100;

/// The report's two faces.
pub struct Fonts {
    pub regular: Face,
    pub bold: Face,
}

static FONTS: LazyLock<Fonts> = LazyLock::new(|| Fonts {
    regular: Face::parse(REGULAR_TTF).expect("the shipped regular font parses"),
    bold: Face::parse(BOLD_TTF).expect("the shipped bold font parses"),
});

/// The shipped fonts, parsed once per process.
pub fn fonts() -> &'static Fonts {
    &FONTS
}

/// One face: the font for krilla and what laying out text needs (glyph and advance per
/// character).
pub struct Face {
    pub font: Font,
    /// Glyph and advance (in ems) per code point below [`TABLE_END`]; glyph 0 is missing.
    table: Vec<(u16, f32)>,
    /// What a missing character is drawn as.
    replacement: (char, u16, f32),
    space: (u16, f32),
    ellipsis: Option<(u16, f32)>,
}

/// Text laid out on one line: glyphs with their text ranges into `text`.
#[derive(Debug, Default)]
pub struct Line {
    pub glyphs: Vec<KrillaGlyph>,
    /// The text the glyphs stand for (after replacements and truncation), for copy and search.
    pub text: String,
    /// Width in ems.
    pub width: f32,
}

impl Line {
    /// Width in points at `size`.
    pub fn width_at(&self, size: f32) -> f32 {
        self.width * size
    }

    fn push(&mut self, ch: char, glyph: u16, advance: f32) {
        let start = self.text.len();
        self.text.push(ch);
        let range: Range<usize> = start..self.text.len();
        self.glyphs.push(KrillaGlyph::new(GlyphId::new(glyph as u32), advance, 0.0, 0.0, 0.0, range, None));
        self.width += advance;
    }
}

impl Face {
    fn parse(data: &'static [u8]) -> Option<Face> {
        let font = Font::new(data.into(), 0)?;
        let font_ref = skrifa::FontRef::new(data).ok()?;
        let upem = font_ref.metrics(Size::unscaled(), LocationRef::default()).units_per_em as f32;
        let metrics = font_ref.glyph_metrics(Size::unscaled(), LocationRef::default());
        let advance = |gid: skrifa::GlyphId| metrics.advance_width(gid).unwrap_or(0.0) / upem;
        let mut table = vec![(0u16, 0.0f32); TABLE_END as usize];
        let mut fffd = None;
        for (cp, gid) in font_ref.charmap().mappings() {
            let Ok(g) = u16::try_from(gid.to_u32()) else { continue };
            if cp < TABLE_END {
                table[cp as usize] = (g, advance(gid));
            } else if cp == 0xFFFD {
                fffd = Some((g, advance(gid)));
            }
        }
        let at = |c: char| Some(table[c as usize]).filter(|e| e.0 != 0);
        let replacement = match fffd {
            Some((g, a)) => ('\u{FFFD}', g, a),
            None => {
                let (g, a) = at('?')?;
                ('?', g, a)
            }
        };
        let space = at(' ')?;
        let ellipsis = at('…');
        Some(Face { font, table, replacement, space, ellipsis })
    }

    /// The glyph and advance `c` is drawn with, and the character it stands for.
    #[inline]
    fn glyph(&self, c: char) -> (char, u16, f32) {
        let cp = c as u32;
        if cp < TABLE_END {
            let (g, a) = self.table[cp as usize];
            if g != 0 {
                return (c, g, a);
            }
            if c.is_control() {
                return (' ', self.space.0, self.space.1);
            }
        }
        self.replacement
    }

    /// Width of `text` in ems.
    pub fn measure(&self, text: &str) -> f32 {
        text.chars().map(|c| self.glyph(c).2).sum()
    }

    /// `text` on one line, cut to at most `max` ems: a longer text ends in `…` (or `...` where
    /// a font lacks it) at the last character that fits.
    pub fn line(&self, text: &str, max: f32) -> Line {
        let mut line = Line { glyphs: Vec::with_capacity(text.len()), text: String::with_capacity(text.len()), width: 0.0 };
        if self.measure(text) <= max {
            for c in text.chars() {
                let (ch, g, a) = self.glyph(c);
                line.push(ch, g, a);
            }
            return line;
        }
        let (dots, per, count) = match self.ellipsis {
            Some((g, a)) => ('…', (g, a), 1),
            None => {
                let (_, g, a) = self.glyph('.');
                ('.', (g, a), 3)
            }
        };
        let room = max - per.1 * count as f32;
        for c in text.chars() {
            let (ch, g, a) = self.glyph(c);
            if line.width + a > room {
                break;
            }
            line.push(ch, g, a);
        }
        if room >= 0.0 {
            for _ in 0..count {
                line.push(dots, per.0, per.1);
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_greek_and_cyrillic_have_glyphs() {
        let f = &fonts().regular;
        for c in "Aé Ωλ Жд ř € – ‰".chars() {
            let (ch, g, a) = f.glyph(c);
            assert_eq!(ch, c, "{c:?} is drawn as itself");
            assert!(g != 0 && (c == ' ' || a > 0.0), "{c:?} has a glyph and advance");
        }
        assert!(fonts().bold.glyph('Ж').1 != 0);
    }

    #[test]
    fn characters_outside_the_font_become_the_replacement_and_controls_a_space() {
        let f = &fonts().regular;
        let line = f.line("a漢\tb", 100.0);
        assert_eq!(line.text, "a\u{FFFD} b");
        assert_eq!(line.glyphs.len(), 4);
        assert!(line.glyphs.iter().all(|g| g.glyph_id.to_u32() != 0));
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis_within_the_width() {
        let f = &fonts().regular;
        let text = "The quick brown fox jumps over the lazy dog";
        let full = f.measure(text);
        let line = f.line(text, full / 2.0);
        assert!(line.text.ends_with('…') && line.text.len() < text.len(), "{}", line.text);
        assert!(line.width <= full / 2.0 + 1e-4);
        assert!(text.starts_with(line.text.trim_end_matches('…')));
        let whole = f.line(text, full);
        assert_eq!(whole.text, text);
        assert!((whole.width - full).abs() < 1e-4);
        // A width too small for even the ellipsis draws nothing rather than overflowing.
        assert_eq!(f.line(text, 0.1).text, "");
    }
}
