//! Reading images (JPEG, PNG) into RGB8, and encoding annotated frames.

use std::path::Path;

use crate::Error;

pub use image::RgbImage;

/// Decodes JPEG or PNG bytes (format detected from the bytes) into RGB8.
/// `what` names the source in errors.
pub fn decode(bytes: &[u8], what: &str) -> Result<RgbImage, Error> {
    let format = image::guess_format(bytes)
        .map_err(|_| Error::Image(format!("{what}: not a JPEG or PNG image")))?;
    let img = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| Error::Image(format!("{what}: cannot decode {format:?} image: {e}")))?;
    let rgb = img.to_rgb8();
    if rgb.width() == 0 || rgb.height() == 0 {
        return Err(Error::Image(format!("{what}: the image has no pixels")));
    }
    Ok(rgb)
}

/// Reads and decodes an image file.
pub fn load(path: &Path) -> Result<RgbImage, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Image(format!("cannot read {}: {e}", path.display())))?;
    decode(&bytes, &path.display().to_string())
}

/// Encodes an RGB8 image as JPEG at `quality` (1..=100) into `out` (cleared first).
pub fn encode_jpeg(img: &RgbImage, quality: u8, out: &mut Vec<u8>) -> Result<(), Error> {
    out.clear();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(out, quality.clamp(1, 100));
    enc.encode_image(img)
        .map_err(|e| Error::Image(format!("cannot encode JPEG: {e}")))
}

/// Saves an image; the format follows the extension (`.jpg`, `.jpeg`, `.png`).
pub fn save(img: &RgbImage, path: &Path) -> Result<(), Error> {
    img.save(path)
        .map_err(|e| Error::Image(format!("cannot write {}: {e}", path.display())))
}
