//! The cluster-DNS trick the README documents: a private mount namespace
//! with the node's hosts file bind-mounted over /etc/hosts sees every
//! rewrite of it, because the file is rewritten in place.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use urr_local_node::network::HostsFile;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[tokio::test]
async fn a_bind_mounted_hosts_file_follows_in_place_rewrites() {
    if !is_root() || Command::new("unshare").arg("--version").output().is_err() {
        // Mount namespaces need root (or a user namespace this check does not set up).
        eprintln!("SKIPPED: needs root and unshare");
        return;
    }
    let dir = std::env::temp_dir().join(format!("urr-local-node-mount-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("hosts");
    // What a caller does before the node starts: an empty file to mount.
    std::fs::write(&path, "").expect("touch");
    let mut hosts = HostsFile::new(path.clone());
    hosts
        .write("127.0.0.1 localhost\n127.0.2.1 first-svc.urr-test\n")
        .await
        .expect("write");

    // Inside the namespace: wait for the second name, then print both.
    let script = r#"mount --bind "$1" /etc/hosts || exit 3
        i=0
        while ! getent hosts second-svc.urr-test >/dev/null; do
            i=$((i+1)); [ $i -gt 1200 ] && exit 4; sleep 0.1
        done
        getent hosts first-svc.urr-test second-svc.urr-test"#;
    let child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare");
    tokio::time::sleep(Duration::from_millis(500)).await;
    hosts
        .write("127.0.0.1 localhost\n127.0.2.1 first-svc.urr-test\n127.0.2.2 second-svc.urr-test\n")
        .await
        .expect("rewrite");
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        output.status.success(),
        "status {} after {:?}: {}{}",
        output.status,
        started.elapsed(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let resolved: Vec<Vec<&str>> = text
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        resolved,
        [
            ["127.0.2.1", "first-svc.urr-test"],
            ["127.0.2.2", "second-svc.urr-test"]
        ],
        "{text}"
    );
    let machine = std::fs::read_to_string("/etc/hosts").expect("/etc/hosts");
    assert!(
        !machine.contains("second-svc.urr-test"),
        "the machine's /etc/hosts is untouched"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
