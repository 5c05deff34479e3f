//! Finding the cgroup hierarchies previewd may put previews in: the mounts of
//! `/proc/self/mountinfo`, previewd's own cgroup in each from `/proc/self/cgroup`, and a probe
//! directory created and removed under `<own cgroup>/previewd` to prove it is writable and
//! carries the controller's files. A cgroup v2 hierarchy is used even without controllers: it
//! still holds a preview's processes together and kills them all through `cgroup.kill`.

use std::fs;
use std::path::{Path, PathBuf};

use super::cgroup::{Controller, Hierarchy, Version};

/// What detection found.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// The hierarchies previews get a directory in.
    pub hierarchies: Vec<Hierarchy>,
    /// Why each wanted controller that no hierarchy offers is missing.
    pub missing: Vec<(Controller, String)>,
}

/// A mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    point: PathBuf,
    /// The cgroup the mount shows as its root.
    root: String,
    version: Version,
    /// Its controllers and options (v1), as listed in the super options.
    options: Vec<String>,
}

/// Previewd's own cgroups, from `/proc/self/cgroup`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Membership {
    /// Controllers of a v1 hierarchy, and the cgroup in it.
    v1: Vec<(Vec<String>, String)>,
    /// The cgroup in the v2 hierarchy.
    v2: Option<String>,
}

/// Finds where previews may go, enabling the `wanted` controllers in previewd's part of the v2
/// hierarchy where that is allowed. Never fails: what is not usable is reported in
/// [`Found::missing`].
pub(super) fn detect(wanted: &[Controller]) -> Found {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mounts = parse_mountinfo(&mountinfo);
    let membership = parse_membership(&own);

    let mut found = Found::default();
    let v2_why = match v2_hierarchy(&mounts, &membership, wanted) {
        Ok(hierarchy) => {
            found.hierarchies.push(hierarchy);
            "the cgroup v2 hierarchy does not offer it".to_string()
        }
        Err(why) => why,
    };
    for controller in wanted.iter().copied() {
        let in_v2 = found
            .hierarchies
            .iter()
            .any(|h| h.controllers.contains(&controller));
        if in_v2 {
            continue;
        }
        match v1_parent(&mounts, &membership, controller) {
            Ok(parent) => match found
                .hierarchies
                .iter_mut()
                .find(|h| h.version == Version::V1 && h.parent == parent)
            {
                Some(shared) => shared.controllers.push(controller),
                None => found.hierarchies.push(Hierarchy {
                    version: Version::V1,
                    parent,
                    controllers: vec![controller],
                    kill_file: false,
                }),
            },
            Err(v1_why) => found.missing.push((
                controller,
                format!("cgroup v2: {v2_why}; cgroup v1: {v1_why}"),
            )),
        }
    }
    found
}

/// The v2 hierarchy with the `wanted` controllers it could enable; an error says why there is
/// none at all.
fn v2_hierarchy(
    mounts: &[Mount],
    membership: &Membership,
    wanted: &[Controller],
) -> Result<Hierarchy, String> {
    let mount = mounts
        .iter()
        .find(|m| m.version == Version::V2)
        .ok_or("no cgroup v2 hierarchy is mounted")?;
    let own = membership
        .v2
        .as_deref()
        .ok_or("previewd has no cgroup v2 in /proc/self/cgroup")?;
    let base = cgroup_dir(mount, own);
    let parent = base.join("previewd");
    fs::create_dir_all(&parent).map_err(|err| format!("creating {}: {err}", parent.display()))?;
    let available = fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
    for controller in wanted {
        if available.split_whitespace().any(|c| c == controller.name()) {
            // Each level passes the controller down to the next; already enabled is fine.
            for dir in [&base, &parent] {
                let _ = fs::write(
                    dir.join("cgroup.subtree_control"),
                    format!("+{}", controller.name()),
                );
            }
        }
    }
    probe(&parent, |dir| {
        Ok(Hierarchy {
            version: Version::V2,
            parent: parent.clone(),
            controllers: wanted
                .iter()
                .copied()
                .filter(|c| dir.join(c.limit_file(Version::V2)).exists())
                .collect(),
            kill_file: dir.join("cgroup.kill").exists(),
        })
    })
}

/// `<own cgroup>/previewd` in the v1 hierarchy of `controller`, once proven usable.
fn v1_parent(
    mounts: &[Mount],
    membership: &Membership,
    controller: Controller,
) -> Result<PathBuf, String> {
    let name = controller.name();
    let has = |options: &[String]| options.iter().any(|o| o == name);
    let mount = mounts
        .iter()
        .find(|m| m.version == Version::V1 && has(&m.options))
        .ok_or_else(|| format!("no {name} hierarchy is mounted"))?;
    let own = membership
        .v1
        .iter()
        .find(|(controllers, _)| has(controllers))
        .map(|(_, path)| path.as_str())
        .ok_or_else(|| format!("previewd has no {name} cgroup in /proc/self/cgroup"))?;
    let parent = cgroup_dir(mount, own).join("previewd");
    fs::create_dir_all(&parent).map_err(|err| format!("creating {}: {err}", parent.display()))?;
    let file = controller.limit_file(Version::V1);
    probe(&parent, |dir| {
        if dir.join(file).exists() {
            Ok(parent.clone())
        } else {
            Err(format!("a cgroup under {} has no {file}", parent.display()))
        }
    })
}

/// Creates a probe cgroup under `parent`, runs `check` on it and removes it.
fn probe<T>(parent: &Path, check: impl FnOnce(&Path) -> Result<T, String>) -> Result<T, String> {
    let dir = parent.join(format!(
        "probe-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    fs::create_dir(&dir)
        .map_err(|err| format!("cannot create a cgroup under {}: {err}", parent.display()))?;
    let result = check(&dir);
    let _ = fs::remove_dir(&dir);
    result
}

/// The directory of cgroup `own` under `mount` (whose root may be a cgroup below the top).
fn cgroup_dir(mount: &Mount, own: &str) -> PathBuf {
    let relative = match own.strip_prefix(mount.root.as_str()) {
        Some(rest) if mount.root != "/" => rest,
        _ => own,
    };
    mount.point.join(relative.trim_start_matches('/'))
}

/// The cgroup mounts of a `/proc/<pid>/mountinfo` text.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let version = match *right.first()? {
                "cgroup" => Version::V1,
                "cgroup2" => Version::V2,
                _ => return None,
            };
            Some(Mount {
                point: PathBuf::from(unescape(left.get(4)?)),
                root: unescape(left.get(3)?),
                version,
                options: right
                    .get(2)
                    .map(|o| o.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A `/proc/<pid>/cgroup` text.
fn parse_membership(text: &str) -> Membership {
    let mut membership = Membership::default();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            membership.v2 = Some(path.to_string());
        } else {
            membership.v1.push((
                controllers.split(',').map(str::to_string).collect(),
                path.to_string(),
            ));
        }
    }
    membership
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mounts and membership of a hybrid host (v1 controllers, an empty v2 beside them),
    /// previewd's memory cgroup nested below the root.
    #[test]
    fn parses_a_hybrid_host() {
        let mountinfo = "\
25 30 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
27 25 0:24 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
28 25 0:25 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
29 25 0:26 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
30 25 0:27 / /sys/fs/cgroup/my\\040dir rw - cgroup cgroup rw,name=systemd
31 30 8:1 / / rw - ext4 /dev/vda rw";
        let mounts = parse_mountinfo(mountinfo);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[1].point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(mounts[1].options, ["rw", "memory"]);
        assert_eq!(mounts[3].version, Version::V2);
        assert_eq!(mounts[4].point, PathBuf::from("/sys/fs/cgroup/my dir"));

        let membership = parse_membership(
            "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/7afb\n1:cpu,cpuacct:/\n0::/\n",
        );
        assert_eq!(membership.v2.as_deref(), Some("/"));
        assert_eq!(
            membership.v1[2],
            (vec!["memory".into()], "/process_api/7afb".into())
        );
        assert_eq!(
            cgroup_dir(&mounts[1], "/process_api/7afb"),
            PathBuf::from("/sys/fs/cgroup/memory/process_api/7afb")
        );
        assert_eq!(
            cgroup_dir(&mounts[3], "/"),
            PathBuf::from("/sys/fs/cgroup/unified/")
        );
    }

    /// A mount whose root is a cgroup below the top (a container's view) maps own paths under it.
    #[test]
    fn maps_paths_under_a_nested_mount_root() {
        let mount = Mount {
            point: PathBuf::from("/sys/fs/cgroup"),
            root: "/kubepods/pod1".into(),
            version: Version::V2,
            options: Vec::new(),
        };
        assert_eq!(
            cgroup_dir(&mount, "/kubepods/pod1/app"),
            PathBuf::from("/sys/fs/cgroup/app")
        );
        assert_eq!(
            cgroup_dir(&mount, "/app"),
            PathBuf::from("/sys/fs/cgroup/app")
        );
    }
}
