//! Images end to end, as a user has them: IDX files (MNIST's format, gzip'd
//! or not) with their labels beside them, and a CSV of pixel columns —
//! through `gradus train --model cnn`, `evaluate` and `predict` as real
//! processes, and the bad inputs each must refuse with exit 2.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

fn gradus(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradus")).args(args).current_dir(dir).output().expect("the gradus binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// An IDX file of unsigned bytes with `sizes` and `data`.
fn idx(sizes: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, sizes.len() as u8];
    sizes.iter().for_each(|s| bytes.extend(s.to_be_bytes()));
    bytes.extend(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    out.write_all(bytes).unwrap();
    out.finish().unwrap()
}

/// `n` seeded 8x8 images of three classes — a bright bar across the top,
/// down the left side, or a bright centre — at a random offset of up to one
/// pixel, over noise: a class a convolution finds wherever it sits.
fn shapes(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let class = (i % 3) as u8;
        let (dy, dx) = ((next() % 3) as usize, (next() % 3) as usize);
        for y in 0..8 {
            for x in 0..8 {
                let on = match class {
                    0 => (dy..dy + 2).contains(&y) && (1..7).contains(&x),
                    1 => (dx..dx + 2).contains(&x) && (1..7).contains(&y),
                    _ => (2 + dy..4 + dy).contains(&y) && (2 + dx..4 + dx).contains(&x),
                };
                pixels.push(if on { 200 + (next() % 56) as u8 } else { (next() % 60) as u8 });
            }
        }
        labels.push(class * 3 + 1);
    }
    (pixels, labels)
}

/// Writes `prefix`-images-idx3-ubyte.gz and its labels (gzip'd) into `dir`.
fn write_idx(dir: &Path, prefix: &str, n: usize, seed: u64) {
    let (pixels, labels) = shapes(n, seed);
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte.gz")), gzip(&idx(&[n as u32, 8, 8], &pixels))).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte.gz")), gzip(&idx(&[n as u32], &labels))).unwrap();
}

const SMALL_CNN: &[&str] = &["--model", "cnn", "--channels", "4,8", "--kernel", "3", "--hidden", "16", "--lr", "0.01"];

#[test]
fn a_cnn_trains_on_idx_files_and_evaluates_and_predicts_on_others() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "train", 300, 1);
    write_idx(dir.path(), "t10k", 90, 2);
    let mut args =
        vec!["train", "--data", "train-images-idx3-ubyte.gz", "--epochs", "8", "--out", "m.gradus", "--json"];
    args.extend(SMALL_CNN);
    args.extend(["--shift", "1"]);
    let out = gradus(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["architecture"], "CNN 1x8x8 4k3p1-pool2 8k3p1-pool2 16-3 relu, augment shift 1");

    let out = gradus(dir.path(), &["evaluate", "--model", "m.gradus", "--data", "t10k-images-idx3-ubyte.gz", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(eval["rows"], 90);
    let accuracy = eval["metrics"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.9, "held-out accuracy {accuracy}");

    // Predictions need no labels: one row per image, the labels' classes by name.
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let out = gradus(dir.path(), &["predict", "--model", "m.gradus", "--data", "t10k-images-idx3-ubyte.gz"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 91, "a header and one row per image");
    assert_eq!(lines[0], "prediction");
    assert!(lines[1..].iter().all(|l| ["1", "4", "7"].contains(l)), "{lines:?}");
}

#[test]
fn a_pixel_csv_trains_a_cnn_given_its_image_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (pixels, labels) = shapes(150, 3);
    let mut csv = (0..64).map(|i| format!("p{i}")).collect::<Vec<_>>().join(",") + ",digit\n";
    for (row, label) in pixels.chunks(64).zip(&labels) {
        csv += &(row.iter().map(u8::to_string).collect::<Vec<_>>().join(",") + &format!(",{label}\n"));
    }
    std::fs::write(dir.path().join("pixels.csv"), csv).unwrap();
    let mut args = vec!["train", "--data", "pixels.csv", "--epochs", "2", "--quiet", "--image-shape", "1,8,8"];
    args.extend(SMALL_CNN);
    let out = gradus(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));

    // Without a shape, or with one whose size is not the row's.
    let mut args = vec!["train", "--data", "pixels.csv", "--epochs", "1"];
    args.extend(SMALL_CNN);
    let out = gradus(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--model cnn needs images") && stderr(&out).contains("--image-shape C,H,W"));
    args.extend(["--image-shape", "3,8,8"]);
    let out = gradus(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("3x8x8 needs 192 values a row; pixels.csv has 64 features"), "{}", stderr(&out));
}

#[test]
fn a_model_of_a_pixel_csv_reads_idx_files_whatever_it_calls_its_target() {
    // As a model of builtin:mnist_5k (target `digit`) on MNIST's test file.
    let dir = tempfile::tempdir().unwrap();
    let (pixels, labels) = shapes(150, 3);
    let mut csv = (0..64).map(|i| format!("px{i}")).collect::<Vec<_>>().join(",") + ",digit\n";
    for (row, label) in pixels.chunks(64).zip(&labels) {
        csv += &(row.iter().map(u8::to_string).collect::<Vec<_>>().join(",") + &format!(",{label}\n"));
    }
    std::fs::write(dir.path().join("pixels.csv"), csv).unwrap();
    write_idx(dir.path(), "t10k", 90, 2);
    let args = ["train", "--data", "pixels.csv", "--model", "mlp", "--epochs", "20", "--out", "m.gradus", "--quiet"];
    let out = gradus(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    for command in ["evaluate", "explain"] {
        let out =
            gradus(dir.path(), &[command, "--model", "m.gradus", "--data", "t10k-images-idx3-ubyte.gz", "--json"]);
        assert!(out.status.success(), "{command}: {}", stderr(&out));
    }
    let out = gradus(dir.path(), &["evaluate", "--model", "m.gradus", "--data", "t10k-images-idx3-ubyte.gz", "--json"]);
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["rows"], 90);
    assert!(found["metrics"]["accuracy"].as_f64().unwrap() > 0.5, "{found}");
}

#[test]
fn bad_images_and_shapes_are_errors_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_idx(d, "train", 30, 4);
    let fails = |args: &[&str], needle: &str| {
        let out = gradus(d, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    };
    // The small network, with `extra` flags in place of its own.
    let train = |data: &'static str, extra: &[&'static str]| {
        let mut args = vec!["train", "--data", data, "--epochs", "1", "--quiet"];
        for pair in SMALL_CNN.chunks(2) {
            if !extra.contains(&pair[0]) {
                args.extend(pair);
            }
        }
        args.extend(extra);
        args
    };
    // A header that disagrees with the file's length.
    std::fs::write(d.join("short-images-idx3-ubyte"), idx(&[30, 8, 8], &[0; 100])).unwrap();
    std::fs::write(d.join("short-labels-idx1-ubyte"), idx(&[30], &[0; 30])).unwrap();
    fails(&train("short-images-idx3-ubyte", &[]), "short-images-idx3-ubyte: the header says 30 x 8 x 8 (1920 bytes");
    // No labels beside the images.
    std::fs::write(d.join("lone-images-idx3-ubyte"), idx(&[2, 8, 8], &[0; 128])).unwrap();
    fails(&train("lone-images-idx3-ubyte", &[]), "no labels beside it (looked for lone-labels-idx1-ubyte)");
    // A truncated gzip.
    let gz = std::fs::read(d.join("train-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(d.join("cut-images-idx3-ubyte.gz"), &gz[..gz.len() / 2]).unwrap();
    std::fs::copy(d.join("train-labels-idx1-ubyte.gz"), d.join("cut-labels-idx1-ubyte.gz")).unwrap();
    fails(&train("cut-images-idx3-ubyte.gz", &[]), "cut-images-idx3-ubyte.gz");
    // A kernel larger than the image; pooling past a single pixel.
    fails(&train("train-images-idx3-ubyte.gz", &["--kernel", "9"]), "9x9 kernel is larger than its 8x8 input");
    fails(
        &train("train-images-idx3-ubyte.gz", &["--channels", "2,2,2,2", "--kernel", "1"]),
        "stage 4 (2k1-pool2): the 2x2 pooling window is larger than its 1x1 input",
    );
    // --image-shape for another model; a target IDX files do not have.
    fails(
        &["train", "--data", "train-images-idx3-ubyte.gz", "--model", "mlp", "--image-shape", "1,8,8"],
        "--image-shape applies to --model cnn",
    );
    fails(&train("train-images-idx3-ubyte.gz", &["--target", "digit"]), "its labels ('label'), not 'digit'");
    // Augmentation out of range, or asked of another model.
    fails(&train("train-images-idx3-ubyte.gz", &["--rotate", "200"]), "augmentation rotation 200");
    fails(&train("train-images-idx3-ubyte.gz", &["--shift", "-1"]), "augmentation shift -1");
    fails(
        &["train", "--data", "train-images-idx3-ubyte.gz", "--model", "mlp", "--flip"],
        "--flip applies to --model cnn",
    );

    // A model's input shape that is not the data's, at predict and evaluate.
    let mut args = train("train-images-idx3-ubyte.gz", &["--out", "m.gradus"]);
    args.retain(|a| *a != "--quiet");
    assert!(gradus(d, &args).status.success());
    let pixels: Vec<u8> = (0..2 * 64).map(|i| i as u8).collect();
    std::fs::write(d.join("wide-images-idx3-ubyte"), idx(&[2, 4, 16], &pixels)).unwrap();
    std::fs::write(d.join("wide-labels-idx1-ubyte"), idx(&[2], &[1, 4])).unwrap();
    for command in ["predict", "evaluate"] {
        fails(
            &[command, "--model", "m.gradus", "--data", "wide-images-idx3-ubyte"],
            "m.gradus takes images of 1x8x8; wide-images-idx3-ubyte holds images of 1x4x16",
        );
    }
}

/// A folder of 8x8 grey PNGs: `n` per class of a bar across (`across`) or
/// down (`down`), at a seeded offset, over noise.
fn bars_folder(dir: &Path, n: usize, seed: u64) {
    let (pixels, labels) = shapes(3 * n, seed);
    for (i, (image, label)) in pixels.chunks(64).zip(labels).enumerate() {
        let class = match label {
            1 => "across",
            4 => "down",
            _ => continue,
        };
        let png = image::GrayImage::from_fn(8, 8, |x, y| image::Luma([image[(y * 8 + x) as usize]]));
        std::fs::create_dir_all(dir.join(class)).unwrap();
        png.save(dir.join(class).join(format!("{i:03}.png"))).unwrap();
    }
}

#[test]
fn a_folder_of_images_per_class_trains_evaluates_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    bars_folder(&d.join("train"), 60, 5);
    bars_folder(&d.join("test"), 20, 6);
    let mut args = vec!["train", "--data", "train", "--epochs", "8", "--out", "m.gradus", "--json"];
    args.extend(SMALL_CNN);
    let out = gradus(d, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["classes"], serde_json::json!(["across", "down"]));
    assert!(report["architecture"].as_str().unwrap().starts_with("CNN 1x8x8"), "{report}");

    let out = gradus(d, &["evaluate", "--model", "m.gradus", "--data", "test", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(eval["metrics"]["accuracy"].as_f64().unwrap() > 0.9, "{eval}");

    // Unlabelled: one row per file, its path first.
    let out = gradus(d, &["predict", "--model", "m.gradus", "--data", "test/down"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "path,prediction");
    assert_eq!(lines.len(), 21);
    assert!(lines[1].starts_with("test/down/") && lines[1].ends_with(".png,down"), "{lines:?}");

    // Mixed sizes need --image-size; then they are resized.
    image::GrayImage::from_pixel(16, 12, image::Luma([0])).save(d.join("train/down/big.png")).unwrap();
    let mut args = vec!["train", "--data", "train", "--epochs", "1", "--quiet"];
    args.extend(SMALL_CNN);
    let out = gradus(d, &args);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("big.png: 16x12 pixels where") && stderr(&out).contains("--image-size"));
    args.extend(["--image-size", "8x8"]);
    assert!(gradus(d, &args).status.success());
}

#[test]
fn bad_image_folders_are_errors_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fails = |args: &[&str], needle: &str| {
        let out = gradus(d, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    };
    let train = |data: &'static str| {
        let mut args = vec!["train", "--data", data, "--epochs", "1", "--quiet"];
        args.extend(SMALL_CNN);
        args
    };
    bars_folder(&d.join("one"), 5, 7);
    std::fs::remove_dir_all(d.join("one/down")).unwrap();
    fails(&train("one"), "at least two; found 1 (across)");
    std::fs::create_dir_all(d.join("none")).unwrap();
    fails(&train("none"), "found 0");
    bars_folder(&d.join("cut"), 5, 8);
    let png = std::fs::read(d.join("cut/across/000.png")).unwrap();
    std::fs::write(d.join("cut/across/000.png"), &png[..png.len() / 2]).unwrap();
    fails(&train("cut"), "000.png: not a readable PNG or JPEG image");
    fails(
        &["train", "--data", "builtin:digits", "--model", "mlp", "--image-size", "8x8"],
        "--image-size applies to a folder",
    );
    fails(&["train", "--data", "one", "--model", "mlp", "--image-size", "0x8"], "'0x8' is not a size");
}

#[test]
fn tune_searches_cnns_on_images_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = gradus(
        d,
        &[
            "tune",
            "--data",
            "builtin:digits",
            "--model",
            "cnn",
            "--trials",
            "2",
            "--epochs",
            "2",
            "--jobs",
            "1",
            "--ensemble",
            "1",
            "--quiet",
            "--out",
            "m.gradus",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = gradus(d, &["inspect", "m.gradus", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("CNN 1x8x8"), "{text}");

    // A CSV of pixels needs its shape, of its width; the shape is for CNNs.
    let (pixels, labels) = shapes(60, 9);
    let mut csv = (0..64).map(|i| format!("p{i}")).collect::<Vec<_>>().join(",") + ",digit\n";
    for (row, label) in pixels.chunks(64).zip(&labels) {
        csv += &(row.iter().map(u8::to_string).collect::<Vec<_>>().join(",") + &format!(",{label}\n"));
    }
    std::fs::write(d.join("pixels.csv"), csv).unwrap();
    let fails = |args: &[&str], needle: &str| {
        let out = gradus(d, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    };
    fails(&["tune", "--data", "pixels.csv", "--model", "cnn", "--quiet"], "--model cnn needs images");
    fails(
        &["tune", "--data", "pixels.csv", "--model", "cnn", "--image-shape", "1,4,4", "--quiet"],
        "needs 16 pixel columns; pixels.csv has 64",
    );
    fails(
        &["tune", "--data", "pixels.csv", "--model", "mlp", "--image-shape", "1,8,8"],
        "--image-shape applies to CNNs",
    );
    let out = gradus(
        d,
        &[
            "tune",
            "--data",
            "pixels.csv",
            "--model",
            "cnn",
            "--image-shape",
            "1,8,8",
            "--trials",
            "1",
            "--epochs",
            "1",
            "--jobs",
            "1",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn tune_reads_idx_files_and_image_folders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_idx(d, "train", 90, 10);
    write_idx(d, "t10k", 20, 12);
    bars_folder(&d.join("bars"), 30, 11);
    for data in ["train-images-idx3-ubyte.gz", "bars"] {
        let out = gradus(
            d,
            &[
                "tune",
                "--data",
                data,
                "--model",
                "cnn",
                "--trials",
                "2",
                "--epochs",
                "2",
                "--jobs",
                "1",
                "--ensemble",
                "1",
                "--quiet",
                "--out",
                "m.gradus",
                "--storage",
                "sqlite:s.db",
            ],
        );
        assert!(out.status.success(), "{data}: {}", stderr(&out));
        let out = gradus(d, &["inspect", "m.gradus", "--json"]);
        assert!(String::from_utf8(out.stdout).unwrap().contains("CNN 1x8x8"), "{data}");
        // The tuned model reads other images of the kind (its pixels were
        // encoded with fills, not as plain numbers: this was refused).
        let other = if data == "bars" { "bars" } else { "t10k-images-idx3-ubyte.gz" };
        for command in ["evaluate", "predict"] {
            let out = gradus(d, &[command, "--model", "m.gradus", "--data", other]);
            assert!(out.status.success(), "{data}: {command}: {}", stderr(&out));
        }
    }
    let fails = |args: &[&str], needle: &str| {
        let out = gradus(d, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    };
    fails(&["tune", "--data", "bars", "--categorical", "px0"], "--categorical applies to CSV tables");
    fails(&["tune", "--data", "bars", "--target", "kind"], "not 'kind'");
    fails(&["tune", "--data", "builtin:digits", "--image-size", "8"], "--image-size applies to a folder");
}

#[test]
fn a_cnn_with_batch_norm_trains_and_predicts_with_its_running_statistics() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "train", 300, 1);
    write_idx(dir.path(), "t10k", 90, 2);
    let mut args = vec![
        "train",
        "--data",
        "train-images-idx3-ubyte.gz",
        "--epochs",
        "8",
        "--batch-norm",
        "--out",
        "m.gradus",
        "--json",
    ];
    args.extend(SMALL_CNN);
    let out = gradus(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["architecture"], "CNN 1x8x8 4k3p1-pool2 8k3p1-pool2 16-3 relu, batch norm");
    // The file keeps the running statistics; evaluation reads them (one image at a time would be
    // normalised by nothing else).
    let out = gradus(dir.path(), &["evaluate", "--model", "m.gradus", "--data", "t10k-images-idx3-ubyte.gz", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let accuracy = eval["metrics"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.9, "held-out accuracy {accuracy}");
    let file = std::fs::read(dir.path().join("m.gradus")).unwrap();
    let holds = |name: &str| file.windows(name.len()).any(|w| w == name.as_bytes());
    assert!(holds("batchnorm.0.running_mean") && holds("batchnorm.1.running_var"), "tensors named in the file");
    // Refused: batch norm for an MLP, or with L-BFGS.
    let refused = |extra: &[&str], says: &str| {
        let out = gradus(dir.path(), &[&["train", "--data", "train-images-idx3-ubyte.gz"][..], extra].concat());
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{extra:?}: {}", stderr(&out));
    };
    refused(&["--model", "mlp", "--batch-norm"], "--batch-norm applies to --model cnn");
    refused(&["--model", "cnn", "--batch-norm", "--optimizer", "lbfgs"], "batch norm makes each row's output");
}
