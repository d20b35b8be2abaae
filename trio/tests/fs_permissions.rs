//! Permission errors are typed and carry the path. A binary of its own: when the tests run as
//! root (who may read anything), it first drops to the `nobody` user for the whole process.

use std::io::ErrorKind::PermissionDenied;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use trio::fs::FsError;

#[track_caller]
fn denied(error: trio::Error, path: &Path) {
    let fs = error
        .downcast_ref::<FsError>()
        .unwrap_or_else(|| panic!("expected an FsError, got {error:?}"));
    assert_eq!(fs.kind(), PermissionDenied, "{error}");
    assert_eq!(fs.path(), path);
    assert!(error.to_string().contains("Permission denied"), "{error}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[test]
fn permission_denied_is_a_typed_error_with_the_path() {
    // SAFETY: getuid has no preconditions; setgid/setuid change the whole process's
    // credentials (glibc applies them to every thread), which is what this binary wants.
    unsafe {
        if libc::getuid() == 0 {
            assert_eq!(libc::setgid(65534), 0, "setgid(nobody)");
            assert_eq!(libc::setuid(65534), 0, "setuid(nobody)");
        }
    }
    let dir = std::env::temp_dir().join(format!("trio-fs-perm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, "x").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();

    let (f, l) = (file.clone(), locked.clone());
    trio::RunConfig::new()
        .ctrl_c(false)
        .run(async move {
            denied(trio::fs::read(&f).await.unwrap_err(), &f);
            denied(trio::fs::File::open(&f).await.unwrap_err(), &f);
            denied(trio::fs::write(&f, "y").await.unwrap_err(), &f);
            denied(trio::fs::read_dir(&l).await.unwrap_err(), &l);
            let inside = l.join("new");
            denied(trio::fs::write(&inside, "y").await.unwrap_err(), &inside);
            Ok(())
        })
        .expect("the run failed");

    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
