//! Masking nvme-cli's autoconnect udev rule while we do its job.
//!
//! With `--autoconnect`, nvme-cli's `70-nvmf-autoconnect.rules` would race us for every AEN and FC
//! event. A symlink to /dev/null in /run/udev/rules.d masks it. We create the link only if nothing is
//! there, remember that we did, and remove it at exit only if it is still our link. With `--keep` the
//! link stays for the next instance, which finds our link and takes it over (recorded in the state dir).
//!
//! The ownership marker decides whether we remove a file in /run/udev, so it is handled as every
//! file in the state directory is (see [`crate::statedir`]): a symlink or anything but a regular
//! file at its name does not count as our marker.

use std::path::{Path, PathBuf};

use crate::error::{Context, Result};
use crate::statedir::StateDir;

pub const RULE_NAME: &str = "70-nvmf-autoconnect.rules";
/// Marker in the state dir: "the mask link was created by nvme-monitor", so the next instance owns it.
pub const OWNED_MARKER: &str = "udev-mask-owned";

/// The mask link and whether we own it.
#[derive(Debug)]
pub struct UdevMask {
    link: PathBuf,
    state_dir: PathBuf,
    owned: bool,
}

fn is_mask_link(path: &Path) -> bool {
    std::fs::read_link(path).is_ok_and(|t| t == Path::new("/dev/null"))
}

impl UdevMask {
    /// Create the mask under `run_dir` (normally /run) unless a file is there already.
    pub fn install(run_dir: &Path, state_dir: &Path) -> Result<UdevMask> {
        let dir = run_dir.join("udev/rules.d");
        let link = dir.join(RULE_NAME);
        if std::fs::symlink_metadata(&link).is_ok() {
            // Ours from an earlier instance (initramfs, --keep) if the marker says so and it is still a mask.
            let marked = match StateDir::open(state_dir) {
                Ok(Some(sd)) => sd.has_file(OWNED_MARKER),
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            };
            let marked = marked.unwrap_or_else(|e| {
                warn!("{e}: not taking the udev rule mask over");
                false
            });
            let owned = marked && is_mask_link(&link);
            if owned {
                info!("taking over the udev rule mask {}", link.display());
            } else {
                info!(
                    "{} exists and is not ours: leaving it alone",
                    link.display()
                );
            }
            return Ok(UdevMask {
                link,
                state_dir: state_dir.to_path_buf(),
                owned,
            });
        }
        // The marker first: a link without it would look like somebody else's and stay forever.
        let sd = StateDir::create(state_dir)?;
        sd.replace(OWNED_MARKER, b"", 0o600)?;
        let linked = std::fs::create_dir_all(&dir)
            .and_then(|()| std::os::unix::fs::symlink("/dev/null", &link))
            .context(|| format!("create {}", link.display()));
        if let Err(e) = linked {
            let _ = sd.remove(OWNED_MARKER);
            return Err(e);
        }
        info!(
            "masked nvme-cli's autoconnect udev rule: {} -> /dev/null",
            link.display()
        );
        Ok(UdevMask {
            link,
            state_dir: state_dir.to_path_buf(),
            owned: true,
        })
    }

    pub fn owned(&self) -> bool {
        self.owned
    }

    /// At exit without --keep: remove the link if it is ours and still a mask.
    pub fn remove(self) {
        if !self.owned {
            return;
        }
        if is_mask_link(&self.link) {
            match std::fs::remove_file(&self.link) {
                Ok(()) => info!("removed the udev rule mask {}", self.link.display()),
                Err(e) => warn!("unable to remove {}: {e}", self.link.display()),
            }
        } else {
            warn!(
                "{} is no longer our /dev/null link: leaving it",
                self.link.display()
            );
        }
        match StateDir::open(&self.state_dir).and_then(|sd| match sd {
            Some(sd) => sd.remove(OWNED_MARKER),
            None => Ok(false),
        }) {
            Ok(_) => {}
            Err(e) => warn!("{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(tag: &str) -> (PathBuf, PathBuf) {
        let base =
            std::env::temp_dir().join(format!("nvme-monitor-udev-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        (base.join("run"), base.join("state"))
    }

    #[test]
    fn creates_keeps_for_next_instance_and_removes() {
        let (run, state) = dirs("own");
        let m = UdevMask::install(&run, &state).unwrap();
        assert!(m.owned());
        let link = run.join("udev/rules.d").join(RULE_NAME);
        assert!(is_mask_link(&link));
        // --keep: the first instance leaves; the next one takes the link over.
        drop(m);
        let m2 = UdevMask::install(&run, &state).unwrap();
        assert!(m2.owned());
        m2.remove();
        assert!(std::fs::symlink_metadata(&link).is_err());
        let _ = std::fs::remove_dir_all(run.parent().unwrap());
    }

    #[test]
    fn never_removes_a_file_it_did_not_create() {
        let (run, state) = dirs("foreign");
        let dir = run.join("udev/rules.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.join(RULE_NAME)).unwrap();
        let m = UdevMask::install(&run, &state).unwrap();
        assert!(!m.owned(), "an admin's mask, no marker");
        m.remove();
        assert!(is_mask_link(&dir.join(RULE_NAME)));
        let _ = std::fs::remove_dir_all(run.parent().unwrap());
    }

    #[test]
    fn a_symlink_is_not_our_marker() {
        // Someone who could plant the marker as a link must not make us remove an admin's mask.
        let (run, state) = dirs("marker-link");
        let dir = run.join("udev/rules.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.join(RULE_NAME)).unwrap();
        crate::statedir::StateDir::create(&state).unwrap();
        std::fs::write(run.join("elsewhere"), b"").unwrap();
        std::os::unix::fs::symlink(run.join("elsewhere"), state.join(OWNED_MARKER)).unwrap();
        let m = UdevMask::install(&run, &state).unwrap();
        assert!(!m.owned());
        m.remove();
        assert!(is_mask_link(&dir.join(RULE_NAME)));
        assert!(std::fs::symlink_metadata(state.join(OWNED_MARKER)).is_ok());
        let _ = std::fs::remove_dir_all(run.parent().unwrap());
    }

    #[test]
    fn an_unsafe_state_dir_gets_no_mask() {
        use std::os::unix::fs::PermissionsExt;
        let (run, state) = dirs("unsafe");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = UdevMask::install(&run, &state).unwrap_err().to_string();
        assert!(e.contains("writable by group or others"), "{e}");
        assert!(std::fs::symlink_metadata(run.join("udev/rules.d").join(RULE_NAME)).is_err());
        let _ = std::fs::remove_dir_all(run.parent().unwrap());
    }
}
