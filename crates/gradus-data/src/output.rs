//! Writing the files gradus produces (models, predictions) without harming
//! what is already at the path.
//!
//! A regular file (or a new path) is written beside itself and renamed over
//! the name once complete, so an interrupted write never leaves half a file
//! and an error leaves the old one as it was. A rename would destroy anything
//! else, so the rest is written in place: a device such as `/dev/null` or
//! `/dev/stdout` (renaming over `/dev/null` as root replaces the system's
//! null device with a regular file), a FIFO, and a symlink, whose target is
//! written (atomically, if it is a regular file) and whose link is kept.

use std::io::Write;
use std::path::{Path, PathBuf};

/// How [`write_file`] will write a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// A regular file or a new path (symlinks followed): written to a
    /// temporary file in the same directory, then renamed over this path.
    Replace(PathBuf),
    /// Something a rename would destroy (a device, a FIFO, a socket):
    /// opened and written in place.
    InPlace(PathBuf),
}

impl OutputTarget {
    /// The path that is finally written: the symlink's target for a link.
    pub fn path(&self) -> &Path {
        match self {
            OutputTarget::Replace(path) | OutputTarget::InPlace(path) => path,
        }
    }
}

/// Where and how `path` is written: symlinks are followed (a dangling one
/// to the path it names), and anything but a regular file is written in place.
pub fn output_target(path: &Path) -> std::io::Result<OutputTarget> {
    let is_link = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory")),
        Ok(meta) if meta.is_file() && is_link(path) => Ok(OutputTarget::Replace(std::fs::canonicalize(path)?)),
        Ok(meta) if meta.is_file() => Ok(OutputTarget::Replace(path.to_path_buf())),
        // Through the path as given: the kernel follows links, even the
        // magic ones of /dev/stdout → /proc/self/fd/1 → a pipe.
        Ok(_) => Ok(OutputTarget::InPlace(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A new file, or a dangling link (chain) to one.
            let mut resolved = path.to_path_buf();
            for _ in 0..40 {
                if !is_link(&resolved) {
                    return Ok(OutputTarget::Replace(resolved));
                }
                let link = std::fs::read_link(&resolved)?;
                resolved = match resolved.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Err(std::io::Error::other("too many levels of symbolic links"))
        }
        Err(e) => Err(e),
    }
}

/// Writes `path` through `write`: atomically for a regular or new file,
/// in place for a device or FIFO (see the module docs). On an error a
/// regular file keeps its old contents and no temporary file is left.
pub fn write_file(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
    match output_target(path)? {
        OutputTarget::InPlace(target) => {
            let mut file = std::fs::OpenOptions::new().write(true).open(&target)?;
            write(&mut file)?;
            file.flush()
        }
        OutputTarget::Replace(target) => {
            let name = target.file_name().map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
            let tmp = target.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
            let written = std::fs::File::create(&tmp)
                .and_then(|file| {
                    let mut out = std::io::BufWriter::new(file);
                    write(&mut out)?;
                    out.into_inner().map_err(|e| e.into_error())?.sync_all()
                })
                .and_then(|()| std::fs::rename(&tmp, &target));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gradus-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_regular_file_is_replaced_whole_and_kept_on_error() {
        let d = dir("regular");
        let path = d.join("model.gradus");
        write_file(&path, |w| w.write_all(b"first")).unwrap();
        write_file(&path, |w| w.write_all(b"second")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let failed = write_file(&path, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"second", "an error keeps the old contents");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "no temporary file is left");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_symlink_keeps_its_link_and_its_target_is_written() {
        let d = dir("symlink");
        std::fs::create_dir(d.join("real")).unwrap();
        std::fs::write(d.join("real/model.gradus"), b"old").unwrap();
        std::os::unix::fs::symlink("real/model.gradus", d.join("link.gradus")).unwrap();
        write_file(&d.join("link.gradus"), |w| w.write_all(b"new")).unwrap();
        assert!(std::fs::symlink_metadata(d.join("link.gradus")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(d.join("real/model.gradus")).unwrap(), b"new");
        // A dangling link is written through, creating the file it names.
        std::os::unix::fs::symlink("real/later.gradus", d.join("dangling")).unwrap();
        write_file(&d.join("dangling"), |w| w.write_all(b"made")).unwrap();
        assert!(std::fs::symlink_metadata(d.join("dangling")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(d.join("real/later.gradus")).unwrap(), b"made");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_fifo_is_written_in_place_not_replaced() {
        let d = dir("fifo");
        let fifo = d.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(&fifo).unwrap())
        };
        write_file(&fifo, |w| w.write_all(b"through the pipe")).unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "still a FIFO");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_null_device_stays_a_device() {
        assert_eq!(output_target(Path::new("/dev/null")).unwrap(), OutputTarget::InPlace("/dev/null".into()));
        write_file(Path::new("/dev/null"), |w| w.write_all(b"discarded")).unwrap();
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }

    #[test]
    fn a_directory_is_refused() {
        let d = dir("directory");
        let err = write_file(&d, |w| w.write_all(b"x")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::IsADirectory);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
