//! Image folders, the layout torchvision's `ImageFolder` reads: one
//! sub-folder per class, named for it, holding PNG or JPEG images
//! (`cats/1.png`, `dogs/a.jpg`, …). Other files are ignored, as there.
//!
//! Images are read grey when every one is grey, RGB otherwise (an alpha
//! channel is dropped), and either all share one size or are resized to a
//! given one (bilinear). Each becomes a row of pixels 0–255, channel-major,
//! with features named `px0`, `px1`, … as the IDX reader names them.

use std::path::{Path, PathBuf};

use crate::{DataError, Dataset, Encoding, ImageShape, Matrix, Target};

/// Whether `source` names a folder (of images, for the loaders here).
pub fn is_image_folder(source: &str) -> bool {
    !source.starts_with("builtin:") && Path::new(source).is_dir()
}

fn error(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Image { path: path.display().to_string(), message: message.into() }
}

/// The PNG and JPEG files in `dir` (by extension), sorted by name.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::Io { path: dir.to_path_buf(), error: e })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| DataError::Io { path: dir.to_path_buf(), error: e })?.path();
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if path.is_file() && matches!(extension.as_deref(), Some("png" | "jpg" | "jpeg")) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The sub-folders of `dir` that are not hidden, sorted by name.
fn sub_folders(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::Io { path: dir.to_path_buf(), error: e })?;
    let mut folders = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| DataError::Io { path: dir.to_path_buf(), error: e })?.path();
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if path.is_dir() && !hidden {
            folders.push(path);
        }
    }
    folders.sort();
    Ok(folders)
}

/// `files` decoded into rows of one shape: grey when all are, else RGB;
/// `size` (height, width) resizes every image, else all must share the
/// first's size.
fn decode_all(files: &[PathBuf], size: Option<[usize; 2]>) -> Result<(Matrix, ImageShape), DataError> {
    let mut images = Vec::with_capacity(files.len());
    for file in files {
        let image = image::ImageReader::open(file)
            .map_err(|e| error(file, format!("cannot read it: {e}")))?
            .with_guessed_format()
            .map_err(|e| error(file, format!("cannot read it: {e}")))?
            .decode()
            .map_err(|e| error(file, format!("not a readable PNG or JPEG image: {e}")))?;
        images.push(image);
    }
    let color = images.iter().any(|i| i.color().has_color());
    let channels = if color { 3 } else { 1 };
    let [h, w] = match size {
        Some(size) => size,
        None => {
            let (first_w, first_h) = (images[0].width(), images[0].height());
            if let Some((file, other)) =
                files.iter().zip(&images).find(|(_, i)| (i.width(), i.height()) != (first_w, first_h))
            {
                return Err(error(
                    file,
                    format!(
                        "{}x{} pixels where {} is {first_w}x{first_h}: images of mixed sizes need --image-size HxW to \
                         resize them",
                        other.width(),
                        other.height(),
                        files[0].display()
                    ),
                ));
            }
            [first_h as usize, first_w as usize]
        }
    };
    let (hh, ww) = (u32::try_from(h).unwrap_or(u32::MAX), u32::try_from(w).unwrap_or(u32::MAX));
    let width = channels * h * w;
    let mut pixels = Vec::with_capacity(files.len() * width);
    for image in images {
        let image = if (image.width(), image.height()) == (ww, hh) {
            image
        } else {
            image.resize_exact(ww, hh, image::imageops::FilterType::Triangle)
        };
        if color {
            let rgb = image.to_rgb8();
            // Channel-major: all of R, then G, then B.
            for c in 0..3 {
                pixels.extend(rgb.pixels().map(|p| f32::from(p.0[c])));
            }
        } else {
            pixels.extend(image.to_luma8().pixels().map(|p| f32::from(p.0[0])));
        }
    }
    let x = Matrix::from_vec(files.len(), width, pixels).expect("n x C·H·W");
    Ok((x, [channels, h, w]))
}

/// The labelled images of a folder with one sub-folder per class, and
/// their shape. Classes are the sub-folders' names, sorted; `size`
/// (height, width) resizes every image.
pub fn load_image_folder(dir: &Path, size: Option<[usize; 2]>) -> Result<(Dataset, ImageShape), DataError> {
    let classes = sub_folders(dir)?;
    let names: Vec<String> =
        classes.iter().map(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect();
    if classes.len() < 2 {
        return Err(error(
            dir,
            format!(
                "an image folder needs a sub-folder per class, at least two; found {}{}",
                classes.len(),
                if names.is_empty() { String::new() } else { format!(" ({})", names.join(", ")) }
            ),
        ));
    }
    let mut files = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let found = image_files(class)?;
        if found.is_empty() {
            return Err(error(class, "a class folder with no PNG or JPEG images"));
        }
        labels.extend(std::iter::repeat_n(label as u32, found.len()));
        files.extend(found);
    }
    let (x, shape) = decode_all(&files, size)?;
    let features: Vec<String> = (0..x.cols()).map(|i| format!("px{i}")).collect();
    let y = Target::Classes { labels, classes: names };
    let name = dir.display().to_string();
    Ok((
        Dataset {
            name,
            x,
            y,
            encoding: Encoding::numbers(&features),
            target_name: "label".into(),
            expansion: None,
            sparse: None,
        },
        shape,
    ))
}

/// The images of a folder for prediction, no labels needed: the PNG and
/// JPEG files in it and in its sub-folders (one level), sorted by path, as
/// rows, with their paths and shape.
pub fn load_image_files(dir: &Path, size: Option<[usize; 2]>) -> Result<(Matrix, ImageShape, Vec<PathBuf>), DataError> {
    let mut files = image_files(dir)?;
    for folder in sub_folders(dir)? {
        files.extend(image_files(&folder)?);
    }
    files.sort();
    if files.is_empty() {
        return Err(error(dir, "no PNG or JPEG images in it or its sub-folders"));
    }
    let (x, shape) = decode_all(&files, size)?;
    Ok((x, shape, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a `w`x`h` image whose pixel (x, y) is `f(x, y)` (grey, or RGB
    /// when `rgb`) as `path` (PNG or JPEG by extension).
    fn write(path: &Path, w: u32, h: u32, rgb: bool, f: impl Fn(u32, u32) -> u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if rgb {
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([f(x, y), 0, 255 - f(x, y)])).save(path).unwrap();
        } else {
            image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)])).save(path).unwrap();
        }
    }

    #[test]
    fn a_folder_per_class_loads_as_labelled_rows_of_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("dogs/b.png"), 3, 2, false, |x, y| (10 * x + y) as u8);
        write(&d.join("cats/a.png"), 3, 2, false, |x, _| x as u8);
        write(&d.join("cats/c.png"), 3, 2, false, |_, _| 7);
        std::fs::write(d.join("cats/notes.txt"), "not an image").unwrap();
        std::fs::create_dir_all(d.join(".cache")).unwrap();
        let (data, shape) = load_image_folder(d, None).unwrap();
        assert_eq!(shape, [1, 2, 3]);
        assert_eq!(data.y, Target::Classes { labels: vec![0, 0, 1], classes: vec!["cats".into(), "dogs".into()] });
        assert_eq!(data.x.row(0), [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
        assert_eq!(data.x.row(2), [0.0, 10.0, 20.0, 1.0, 11.0, 21.0]);
    }

    #[test]
    fn rgb_images_are_channel_major_and_a_size_resizes_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("a/1.png"), 2, 2, true, |x, y| (100 * x + 50 * y) as u8);
        write(&d.join("b/1.png"), 4, 4, false, |_, _| 9);
        let err = load_image_folder(d, None).unwrap_err().to_string();
        assert!(err.contains("b/1.png: 4x4 pixels where") && err.contains("--image-size"), "{err}");
        let (data, shape) = load_image_folder(d, Some([2, 2])).unwrap();
        assert_eq!(shape, [3, 2, 2], "one RGB image makes them all RGB");
        assert_eq!(data.x.row(0), [0.0, 100.0, 50.0, 150.0, 0.0, 0.0, 0.0, 0.0, 255.0, 155.0, 205.0, 105.0]);
        assert_eq!(data.x.row(1), [9.0; 12], "a grey image is grey in each channel");
    }

    #[test]
    fn bad_folders_and_images_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("only/1.png"), 2, 2, false, |_, _| 0);
        let err = load_image_folder(d, None).unwrap_err().to_string();
        assert!(err.contains("at least two; found 1 (only)"), "{err}");
        std::fs::create_dir_all(d.join("empty")).unwrap();
        let err = load_image_folder(d, None).unwrap_err().to_string();
        assert!(err.contains("empty: a class folder with no PNG or JPEG images"), "{err}");
        write(&d.join("empty/1.jpg"), 2, 2, false, |_, _| 0);
        let png = std::fs::read(d.join("only/1.png")).unwrap();
        std::fs::write(d.join("only/2.png"), &png[..png.len() / 2]).unwrap();
        let err = load_image_folder(d, None).unwrap_err().to_string();
        assert!(err.contains("only/2.png: not a readable PNG or JPEG image"), "{err}");
        let err = load_image_files(&d.join("nothing-here"), None).unwrap_err().to_string();
        assert!(err.contains("nothing-here"), "{err}");
    }

    #[test]
    fn unlabelled_images_load_with_their_paths() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join("z.png"), 2, 1, false, |x, _| x as u8);
        write(&d.join("sub/a.jpg"), 2, 1, false, |_, _| 200);
        let (x, shape, files) = load_image_files(d, None).unwrap();
        assert_eq!(shape, [1, 1, 2]);
        assert_eq!(files, [d.join("sub/a.jpg"), d.join("z.png")]);
        assert_eq!(x.row(1), [0.0, 1.0]);
    }
}
