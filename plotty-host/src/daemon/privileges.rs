//! Process set-up that needs (or gives up) privileges: `--user`/`--group`, and the open-files limit.
//!
//! The daemon binds its port and writes its PID file as whoever started it, then hands the files it
//! created in the workspace to the target user and drops to it (supplementary groups, group, user,
//! in that order), and checks that root cannot be regained. This happens before the async runtime is
//! built, with only the store and logging threads running; glibc applies `setgroups`/`setgid`/
//! `setuid` to every thread of the process.

use std::ffi::CString;
use std::path::PathBuf;

use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};
use nix::unistd::{Gid, Group, Uid, User, getegid, geteuid, initgroups, setgid, setgroups, setuid};

use crate::settings::{ConfigError, Problem};

/// Who to become.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Target {
    /// The user (name, id) when `--user` was given.
    pub user: Option<(String, Uid)>,
    /// The group: `--group`, else the user's primary group.
    pub group: (String, Gid),
}

/// Dropping privileges failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// A system call failed.
    #[error("cannot {what}: {source}")]
    Call {
        /// What was attempted.
        what: String,
        /// The error.
        #[source]
        source: nix::Error,
    },
    /// Root could be regained after the drop.
    #[error("the privilege drop did not stick: the process could become root again")]
    NotDropped,
}

/// Looks up `--user` and `--group` and checks that this process may switch to them. `None` when
/// there is nothing to do (no options, or they name the current identity).
pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Option<Target>, ConfigError> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String, fix: &str| {
        problems.push(Problem {
            file: None,
            location: None,
            key: key.to_owned(),
            message,
            fix: Some(fix.to_owned()),
        });
    };
    let user = user.and_then(|name| match lookup_user(name) {
        Ok(Some(u)) => Some(u),
        Ok(None) => {
            problem(
                "--user",
                format!("there is no user `{name}` on this system"),
                "create it (e.g. `useradd --system --groups dialout plotty`) or name an existing user",
            );
            None
        }
        Err(e) => {
            problem("--user", format!("cannot look up `{name}`: {e}"), "check /etc/passwd or NSS");
            None
        }
    });
    let group = match group {
        Some(name) => match lookup_group(name) {
            Ok(Some(g)) => Some((g.name, g.gid)),
            Ok(None) => {
                problem(
                    "--group",
                    format!("there is no group `{name}` on this system"),
                    "create it (`groupadd --system plotty`) or name an existing group",
                );
                None
            }
            Err(e) => {
                problem(
                    "--group",
                    format!("cannot look up `{name}`: {e}"),
                    "check /etc/group or NSS",
                );
                None
            }
        },
        None => user.as_ref().map(|u| {
            let name = Group::from_gid(u.gid)
                .ok()
                .flatten()
                .map_or_else(|| u.gid.to_string(), |g| g.name);
            (name, u.gid)
        }),
    };
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    let Some(group) = group else {
        return Ok(None);
    };
    let target = Target {
        user: user.map(|u| (u.name, u.uid)),
        group,
    };
    let already = target
        .user
        .as_ref()
        .is_none_or(|(_, uid)| *uid == geteuid())
        && target.group.1 == getegid();
    if already {
        return Ok(None);
    }
    if !geteuid().is_root() {
        let key = if target.user.is_some() {
            "--user"
        } else {
            "--group"
        };
        return Err(ConfigError::Invalid(vec![Problem {
            file: None,
            location: None,
            key: key.to_owned(),
            message: format!(
                "switching to another user or group needs root, and plotty runs as uid {}",
                geteuid()
            ),
            fix: Some(
                "start plotty as root (it binds the port, then switches), or leave out --user and \
                 --group (under systemd, set User= and Group= in the unit instead)"
                    .to_owned(),
            ),
        }]));
    }
    Ok(Some(target))
}

fn lookup_user(name: &str) -> nix::Result<Option<User>> {
    match name.parse::<u32>() {
        Ok(id) => User::from_uid(Uid::from_raw(id)),
        Err(_) => User::from_name(name),
    }
}

fn lookup_group(name: &str) -> nix::Result<Option<Group>> {
    match name.parse::<u32>() {
        Ok(id) => Group::from_gid(Gid::from_raw(id)),
        Err(_) => Group::from_name(name),
    }
}

/// Gives the files the daemon created (workspace, database, logs, PID file) to the target, so that
/// it can still write them after the drop. Symbolic links are changed themselves, not followed.
pub fn hand_over(target: &Target, paths: &[PathBuf]) -> Result<(), PrivilegeError> {
    let uid = target.user.as_ref().map(|(_, u)| u.as_raw());
    let gid = target.group.1.as_raw();
    for p in paths.iter().filter(|p| p.symlink_metadata().is_ok()) {
        std::os::unix::fs::lchown(p, uid, Some(gid)).map_err(|e| PrivilegeError::Call {
            what: format!("hand {} over to the target user", p.display()),
            source: nix::Error::from_raw(e.raw_os_error().unwrap_or(0)),
        })?;
    }
    Ok(())
}

/// Switches to `target`: supplementary groups, then group, then user; then checks that root is gone.
pub fn drop_to(target: &Target) -> Result<(), PrivilegeError> {
    let call = |what: String| move |source| PrivilegeError::Call { what, source };
    let gid = target.group.1;
    match &target.user {
        Some((name, _)) => {
            let c_name = CString::new(name.as_str()).map_err(|_| PrivilegeError::Call {
                what: format!("use the user name `{name}`"),
                source: nix::Error::EINVAL,
            })?;
            initgroups(&c_name, gid).map_err(call(format!("set the groups of {name}")))?;
        }
        None => setgroups(&[gid]).map_err(call("set the supplementary groups".into()))?,
    }
    setgid(gid).map_err(call(format!("switch to group {}", target.group.0)))?;
    if let Some((name, uid)) = &target.user {
        setuid(*uid).map_err(call(format!("switch to user {name}")))?;
        if !uid.is_root() && setuid(Uid::from_raw(0)).is_ok() {
            return Err(PrivilegeError::NotDropped);
        }
    }
    Ok(())
}

/// Raises the soft open-files limit to the hard limit (a thousand clients need about two thousand
/// descriptors; desktop sessions often start with a soft limit of 1024). Returns (before, after).
pub fn raise_nofile_limit() -> nix::Result<(u64, u64)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    // An unlimited hard limit cannot be used as a soft limit for files (the kernel caps it at
    // fs.nr_open); a million is far more than the daemon needs.
    let target = if hard == RLIM_INFINITY { 1 << 20 } else { hard };
    if soft < target {
        setrlimit(Resource::RLIMIT_NOFILE, target, hard)?;
    }
    let (now, _) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok((soft, now))
}

impl Target {
    /// `user:group` for messages.
    pub fn describe(&self) -> String {
        match &self.user {
            Some((u, uid)) => format!("{u}:{} (uid {uid}, gid {})", self.group.0, self.group.1),
            None => format!("group {} (gid {})", self.group.0, self.group.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_problems() {
        let Err(ConfigError::Invalid(p)) =
            resolve(Some("no-such-user-plotty"), Some("no-such-group-plotty"))
        else {
            panic!("expected problems");
        };
        let keys: Vec<_> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["--user", "--group"]);
    }

    #[test]
    fn nothing_to_do_without_options_or_for_the_current_identity() {
        assert_eq!(resolve(None, None).unwrap(), None);
        let me = geteuid().to_string();
        let my_group = getegid().to_string();
        assert_eq!(resolve(Some(&me), Some(&my_group)).unwrap(), None);
    }

    #[test]
    fn open_files_limit_is_raised_to_the_hard_limit() {
        let (_, after) = raise_nofile_limit().unwrap();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(after, soft);
        assert!(soft == hard || (hard == RLIM_INFINITY && soft == 1 << 20));
    }
}
