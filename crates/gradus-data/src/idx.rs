//! IDX files, the format MNIST comes in (gzip'd or not): a magic number
//! `0x0000_08_D` (unsigned bytes, `D` dimensions), then `D` big-endian u32
//! sizes, then the bytes. Images are `N × H × W` (one channel) or
//! `N × C × H × W`; labels are `N`. An images file finds its labels beside
//! it by name, as MNIST's files are named: `train-images-idx3-ubyte.gz` →
//! `train-labels-idx1-ubyte.gz` (also `t10k-…`, or no prefix at all).
//!
//! Pixels are read as they are stored (0–255) into one row per image,
//! channel-major, with features named `px0`, `px1`, … as in the built-in
//! `mnist_5k`; scaling them is the preprocessing's job.

use std::path::{Path, PathBuf};

use crate::{DataError, Dataset, Encoding, Matrix, Target};

/// An image's shape: channels, height, width.
pub type ImageShape = [usize; 3];

/// Whether `source` names an IDX images file (by its name: `…idx3-ubyte`
/// or `…idx4-ubyte`, gzip'd or not).
pub fn is_idx_images(source: &str) -> bool {
    let name = source.strip_suffix(".gz").unwrap_or(source);
    name.ends_with("idx3-ubyte") || name.ends_with("idx4-ubyte")
}

/// The labels file beside an images file: `images-idx3-ubyte` (or
/// `idx4`) in its name becomes `labels-idx1-ubyte`.
pub fn labels_path(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let at = name.rfind("images-idx")?;
    let rest = &name[at + "images-idx3-ubyte".len()..];
    Some(images.with_file_name(format!("{}labels-idx1-ubyte{rest}", &name[..at])))
}

/// The dimensions and the data of an IDX file of unsigned bytes.
fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let shown = path.display().to_string();
    let mut bytes = crate::memory::read_file(path)?;
    let (sizes, header) = parse_idx(&shown, &bytes, true)?;
    bytes.drain(..header);
    Ok((sizes, bytes))
}

/// The sizes an IDX file's `bytes` give and the header's length; with
/// `whole`, `bytes` is the whole file and its length must agree.
fn parse_idx(shown: &str, bytes: &[u8], whole: bool) -> Result<(Vec<usize>, usize), DataError> {
    let bad = |message: String| DataError::Idx { path: shown.to_string(), message };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(bad(format!(
            "not an IDX file of unsigned bytes (it should start 00 00 08 and a dimension count; it starts {:02x?})",
            &bytes[..bytes.len().min(4)]
        )));
    }
    let dims = bytes[3] as usize;
    let header = 4 + 4 * dims;
    if dims == 0 || bytes.len() < header {
        return Err(bad(format!(
            "an IDX header of {dims} dimensions needs {header} bytes; the file has {}",
            bytes.len()
        )));
    }
    let sizes: Vec<usize> =
        bytes[4..header].chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let expected = sizes.iter().try_fold(1usize, |p, &s| p.checked_mul(s));
    let data = bytes.len() - header;
    if whole && expected != Some(data) {
        return Err(bad(format!(
            "the header says {} ({} bytes after the {header}-byte header) but the file holds {data}",
            sizes.iter().map(usize::to_string).collect::<Vec<_>>().join(" x "),
            expected.map_or("too many".to_string(), |e| e.to_string())
        )));
    }
    Ok((sizes, header))
}

/// The image shape rows of `source` have, when it is known from the source
/// itself: an IDX images file's header, or a built-in image dataset
/// (`digits` 1×8×8, `mnist_5k` 1×28×28). `None` for other sources (a pixel
/// CSV says nothing of its shape).
pub fn image_shape(source: &str) -> Result<Option<ImageShape>, DataError> {
    Ok(match source.strip_prefix("builtin:") {
        Some("digits") => Some([1, 8, 8]),
        Some("mnist_5k") => Some([1, 28, 28]),
        Some(_) => None,
        None if is_idx_images(source) => Some(idx_image_shape(Path::new(source))?),
        None => None,
    })
}

/// The shape of the images in an IDX images file, from its header alone
/// (the rest is read, and its length checked, when the images are loaded).
pub fn idx_image_shape(path: &Path) -> Result<ImageShape, DataError> {
    images_shape(path, &read_idx_header(path)?)
}

/// The dimensions an IDX file's header gives, reading (and unpacking)
/// only the header's bytes.
fn read_idx_header(path: &Path) -> Result<Vec<usize>, DataError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let io_error = |error| DataError::Io { path: path.to_path_buf(), error };
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io_error)?);
    let gzipped = std::io::BufRead::fill_buf(&mut file).map_err(io_error)?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read> =
        if gzipped { Box::new(flate2::read::MultiGzDecoder::new(file)) } else { Box::new(file) };
    // As much of the header as the file holds: its four bytes, then its sizes.
    let mut head = Vec::new();
    reader.by_ref().take(4).read_to_end(&mut head).map_err(io_error)?;
    if head.len() == 4 && head[..3] == [0, 0, 0x08] {
        reader.take(4 * u64::from(head[3])).read_to_end(&mut head).map_err(io_error)?;
    }
    let (sizes, _) = parse_idx(&shown, &head, false)?;
    Ok(sizes)
}

fn images_shape(path: &Path, sizes: &[usize]) -> Result<ImageShape, DataError> {
    let shape = match *sizes {
        [_, h, w] => [1, h, w],
        [_, c, h, w] => [c, h, w],
        _ => {
            return Err(DataError::Idx {
                path: path.display().to_string(),
                message: format!(
                    "{} dimensions; images are N x H x W or N x C x H x W (is this a labels file?)",
                    sizes.len()
                ),
            });
        }
    };
    if shape.contains(&0) {
        return Err(DataError::Idx { path: path.display().to_string(), message: format!("images of shape {shape:?}") });
    }
    Ok(shape)
}

/// The images of an IDX images file, one row per image (no labels needed),
/// and their shape.
pub fn load_idx_images(images: &Path) -> Result<(Matrix, ImageShape), DataError> {
    let (sizes, pixels) = read_idx(images)?;
    let shape = images_shape(images, &sizes)?;
    let width: usize = shape.iter().product();
    let x = Matrix::from_vec(sizes[0], width, pixels.into_iter().map(f32::from).collect()).expect("n x C·H·W");
    Ok((x, shape))
}

/// The labelled images of an IDX images file and the labels file beside
/// it, and the images' shape. Classes are the labels that occur, in
/// numeric order.
pub fn load_idx(images: &Path) -> Result<(Dataset, ImageShape), DataError> {
    let shown = images.display().to_string();
    let labels = labels_path(images).ok_or_else(|| DataError::Idx {
        path: shown.clone(),
        message: "cannot tell the labels file's name: an images file is named like train-images-idx3-ubyte.gz".into(),
    })?;
    if !labels.exists() {
        return Err(DataError::Idx {
            path: shown,
            message: format!("no labels beside it (looked for {})", labels.display()),
        });
    }
    let (x, shape) = load_idx_images(images)?;
    let (label_sizes, label_bytes) = read_idx(&labels)?;
    let labels_shown = labels.display().to_string();
    if label_sizes.len() != 1 {
        return Err(DataError::Idx {
            path: labels_shown,
            message: format!("{} dimensions; a labels file has one", label_sizes.len()),
        });
    }
    if label_sizes[0] != x.rows() {
        return Err(DataError::Idx {
            path: labels_shown,
            message: format!("{} labels for the {} images of {shown}", label_sizes[0], x.rows()),
        });
    }
    let width = x.cols();
    let mut present = [false; 256];
    label_bytes.iter().for_each(|&l| present[l as usize] = true);
    let values: Vec<u8> = (0..=255u8).filter(|&l| present[l as usize]).collect();
    let mut index = [0u32; 256];
    values.iter().enumerate().for_each(|(i, &l)| index[l as usize] = i as u32);
    let y = Target::Classes {
        labels: label_bytes.iter().map(|&l| index[l as usize]).collect(),
        classes: values.iter().map(u8::to_string).collect(),
    };
    let names: Vec<String> = (0..width).map(|i| format!("px{i}")).collect();
    let data = Dataset {
        name: shown,
        x,
        y,
        encoding: Encoding::numbers(&names),
        target_name: "label".into(),
        expansion: None,
        sparse: None,
    };
    Ok((data, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IDX file of unsigned bytes with `sizes` and `data`.
    pub(crate) fn idx(sizes: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, 8, sizes.len() as u8];
        sizes.iter().for_each(|s| bytes.extend(s.to_be_bytes()));
        bytes.extend(data);
        bytes
    }

    #[test]
    fn labels_are_found_beside_images_by_mnist_names() {
        for (images, labels) in [
            ("d/train-images-idx3-ubyte.gz", "d/train-labels-idx1-ubyte.gz"),
            ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
            ("/x/images-idx3-ubyte.gz", "/x/labels-idx1-ubyte.gz"),
            ("rgb-images-idx4-ubyte", "rgb-labels-idx1-ubyte"),
        ] {
            assert!(is_idx_images(images));
            assert_eq!(labels_path(Path::new(images)).unwrap(), Path::new(labels));
        }
        assert!(!is_idx_images("train.csv") && !is_idx_images("train-labels-idx1-ubyte.gz"));
    }

    #[test]
    fn images_and_labels_load_as_rows_with_their_shape() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("train-images-idx3-ubyte");
        std::fs::write(&images, idx(&[3, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255])).unwrap();
        let labels = dir.path().join("train-labels-idx1-ubyte");
        std::fs::write(&labels, idx(&[3], &[7, 2, 7])).unwrap();
        let (data, shape) = load_idx(&images).unwrap();
        assert_eq!(shape, [1, 2, 2]);
        assert_eq!(data.x.row(2), [8.0, 9.0, 10.0, 255.0]);
        assert_eq!(data.y, Target::Classes { labels: vec![1, 0, 1], classes: vec!["2".into(), "7".into()] });
        assert_eq!(data.feature_names(), ["px0", "px1", "px2", "px3"]);
        assert_eq!(idx_image_shape(&images).unwrap(), [1, 2, 2]);
    }

    #[test]
    fn a_header_that_disagrees_with_the_data_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images-idx3-ubyte");
        let labels = dir.path().join("labels-idx1-ubyte");
        std::fs::write(&labels, idx(&[2], &[0, 1])).unwrap();
        let err = |bytes: Vec<u8>| {
            std::fs::write(&images, bytes).unwrap();
            load_idx(&images).unwrap_err().to_string()
        };
        let e = err(idx(&[2, 2, 2], &[0; 7]));
        assert!(e.contains("images-idx3-ubyte") && e.contains("2 x 2 x 2 (8 bytes") && e.contains("holds 7"), "{e}");
        let e = err(b"P5 not idx".to_vec());
        assert!(e.contains("not an IDX file"), "{e}");
        let e = err(idx(&[3, 1, 1], &[0; 3]));
        assert!(e.contains("2 labels for the 3 images"), "{e}");
        let e = err(idx(&[2], &[0; 2]));
        assert!(e.contains("1 dimensions") && e.contains("labels file?"), "{e}");
        std::fs::remove_file(&labels).unwrap();
        let e = err(idx(&[2, 1, 1], &[0; 2]));
        assert!(e.contains("no labels beside it") && e.contains("labels-idx1-ubyte"), "{e}");
    }

    #[test]
    fn the_image_shape_comes_from_the_header_alone_gzipd_or_not() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        // The header of 5 images of 3x4; the pixels cut short: only loading notices.
        let images = dir.path().join("images-idx3-ubyte");
        std::fs::write(&images, idx(&[5, 3, 4], &[1; 10])).unwrap();
        assert_eq!(idx_image_shape(&images).unwrap(), [1, 3, 4]);
        assert!(load_idx_images(&images).unwrap_err().to_string().contains("holds 10"));
        let gz = dir.path().join("images-idx4-ubyte.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&idx(&[2, 3, 4, 5], &[0; 120])).unwrap();
        std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
        assert_eq!(idx_image_shape(&gz).unwrap(), [3, 4, 5]);
        // A header cut short, or not IDX at all, is still an error naming the file.
        for bytes in [vec![0, 0, 8, 3, 0, 0], b"P5".to_vec()] {
            std::fs::write(&images, bytes).unwrap();
            let e = idx_image_shape(&images).unwrap_err().to_string();
            assert!(e.contains("images-idx3-ubyte") && (e.contains("header") || e.contains("not an IDX")), "{e}");
        }
    }
}
