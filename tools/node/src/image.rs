//! Images without a container engine: an image is the binary named after its
//! repository's last path segment, in the `--bin-dir` the caller built, and
//! its entrypoint is that binary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why an image has no runnable binary: the kubelet's `ErrImagePull`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("the container names no image")]
    NoImage,
    #[error("image {image:?} has no repository name")]
    NoName { image: String },
    #[error("image {image:?}: no executable binary at {}", path.display())]
    NoBinary { image: String, path: PathBuf },
}

/// The binary name of an image: its last path segment without tag or
/// digest (`ghcr.io/urr-dev/urr-queue:0.1.0` is `urr-queue`). A registry
/// port (`localhost:5000/x`) is never in the last segment, so the first `:`
/// there starts the tag.
pub fn binary_name(image: &str) -> Result<&str, ImageError> {
    let without_digest = image.split_once('@').map_or(image, |(name, _)| name);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let name = last.split_once(':').map_or(last, |(name, _)| name);
    if name.is_empty() {
        return Err(ImageError::NoName {
            image: image.to_owned(),
        });
    }
    Ok(name)
}

/// The entrypoint of `image`: `<bin_dir>/<binary name>`, which must exist
/// and be executable.
pub fn entrypoint(bin_dir: &Path, image: Option<&str>) -> Result<PathBuf, ImageError> {
    let image = image.filter(|i| !i.is_empty()).ok_or(ImageError::NoImage)?;
    let path = bin_dir.join(binary_name(image)?);
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(ImageError::NoBinary {
            image: image.to_owned(),
            path,
        })
    }
}

/// The program of an explicit `command`: a bare name is looked up in the
/// "image" (`bin_dir`) first, as a container's PATH would find the image's
/// own binaries, and otherwise left for the host PATH; a path is used as is.
pub fn program(bin_dir: &Path, command: &str) -> PathBuf {
    if !command.contains('/') {
        let candidate = bin_dir.join(command);
        if is_executable(&candidate) {
            return candidate;
        }
    }
    PathBuf::from(command)
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_map_to_binaries() {
        let cases = [
            ("ghcr.io/urr-dev/urr-queue:0.1.0", "urr-queue"),
            ("ghcr.io/urr-dev/urr-ticket", "urr-ticket"),
            ("urr-payment", "urr-payment"),
            ("urr-payment:latest", "urr-payment"),
            ("localhost:5000/team/urr-queue:dev", "urr-queue"),
            ("localhost:5000/urr-queue", "urr-queue"),
            (
                "ghcr.io/urr-dev/urr-queue@sha256:0123456789abcdef",
                "urr-queue",
            ),
            (
                "ghcr.io/urr-dev/urr-queue:0.1.0@sha256:0123456789abcdef",
                "urr-queue",
            ),
        ];
        for (image, binary) in cases {
            assert_eq!(binary_name(image), Ok(binary), "{image}");
        }
        assert!(matches!(
            binary_name("ghcr.io/urr-dev/"),
            Err(ImageError::NoName { .. })
        ));
    }

    #[test]
    fn entrypoint_needs_an_executable_in_the_bin_dir() {
        let dir = crate::testing::scratch_dir("image");
        let binary = dir.join("urr-queue");
        std::fs::write(&binary, "#!/bin/sh\n").expect("write");
        let image = "ghcr.io/urr-dev/urr-queue:0.1.0";
        let error = entrypoint(&dir, Some(image)).expect_err("not executable yet");
        assert_eq!(
            error.to_string(),
            format!(
                "image \"{image}\": no executable binary at {}",
                binary.display()
            )
        );
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(entrypoint(&dir, Some(image)), Ok(binary.clone()));
        assert_eq!(entrypoint(&dir, None), Err(ImageError::NoImage));
        assert_eq!(program(&dir, "urr-queue"), binary);
        assert_eq!(program(&dir, "sh"), PathBuf::from("sh"));
        assert_eq!(program(&dir, "/bin/sh"), PathBuf::from("/bin/sh"));
    }
}
