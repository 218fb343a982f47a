//! Drawing detections onto an RGB8 image: boxes, keypoints, and a
//! "label score" tag in a built-in 5x7 bitmap font (no font files).

use image::{Rgb, RgbImage};

use crate::postprocess::Detection;

/// Colours cycled through by class index.
const PALETTE: [[u8; 3]; 6] = [
    [0, 230, 64],
    [255, 64, 64],
    [64, 160, 255],
    [255, 200, 0],
    [220, 0, 220],
    [0, 220, 220],
];

/// Draws each detection (box, keypoints, and `label score` above the box)
/// onto `img`. `label` names a class index. Coordinates outside the image
/// are clipped.
pub fn draw(img: &mut RgbImage, detections: &[Detection], label: impl Fn(usize) -> String) {
    let big = img.width().max(img.height()) >= 400;
    let line = if big { 3 } else { 2 };
    let font_scale = if big { 2 } else { 1 };
    for d in detections {
        let colour = PALETTE[d.class % PALETTE.len()];
        let [x0, y0, x1, y1] = d.bbox.map(|v| v.round() as i64);
        for t in 0..line {
            rect_outline(img, x0 - t, y0 - t, x1 + t, y1 + t, colour);
        }
        let r = line;
        for k in d.keypoints() {
            let (kx, ky) = (k[0].round() as i64, k[1].round() as i64);
            fill(img, kx - r, ky - r, kx + r, ky + r, [255, 40, 40]);
        }
        let text = format!("{} {:.2}", label(d.class), d.score);
        let th = 9 * font_scale;
        let tw = text.chars().count() as i64 * 6 * font_scale + 2;
        let ty = if y0 - line - th >= 0 {
            y0 - line - th
        } else {
            y1 + line
        };
        fill(img, x0 - line, ty, x0 - line + tw, ty + th - 1, colour);
        text_at(
            img,
            x0 - line + 1,
            ty + font_scale,
            &text,
            font_scale,
            [0, 0, 0],
        );
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && x < img.width() as i64 && y < img.height() as i64 {
        img.put_pixel(x as u32, y as u32, Rgb(c));
    }
}

fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    for y in y0.max(0)..=y1.min(h - 1) {
        for x in x0.max(0)..=x1.min(w - 1) {
            img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }
}

fn rect_outline(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
    // Clamp the loops to the image so absurd coordinates cost nothing.
    let (w, h) = (img.width() as i64, img.height() as i64);
    for x in x0.max(-1)..=x1.min(w) {
        put(img, x, y0, c);
        put(img, x, y1, c);
    }
    for y in y0.max(-1)..=y1.min(h) {
        put(img, x0, y, c);
        put(img, x1, y, c);
    }
}

/// Writes `text` with its top-left corner at (`x`, `y`), each font pixel
/// `scale`x`scale` image pixels. Unknown characters draw as `?`.
pub fn text_at(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: i64, c: [u8; 3]) {
    for (i, ch) in text.chars().enumerate() {
        let g = glyph(ch);
        let gx = x + i as i64 * 6 * scale;
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    let px = gx + col * scale;
                    let py = y + row as i64 * scale;
                    fill(img, px, py, px + scale - 1, py + scale - 1, c);
                }
            }
        }
    }
}

/// The 5x7 glyph of `ch` (rows top to bottom, bit 4 = leftmost column).
fn glyph(ch: char) -> [u8; 7] {
    match ch.to_ascii_uppercase() {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        ' ' => [0; 7],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04],
    }
}
