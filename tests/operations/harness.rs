//! The test harness itself: a registry that lost its picked port to another process is never
//! taken for started because that other process answers on the port (issue: an empty registry
//! of another test answered a test whose own registry never ran).

use crate::common;

use common::{PortTaken, Registry};

fn htpasswd_in(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("htpasswd");
    std::fs::write(&path, "").unwrap();
    path
}

#[test]
fn a_registry_whose_port_another_registry_holds_is_reported_not_started() {
    let first_dir = tempfile::tempdir().unwrap();
    let first = Registry::start(first_dir.path(), &htpasswd_in(first_dir.path()));

    // Another registry on the same port: the first one answers /v2/ with 401 there, exactly
    // what a started registry would.
    let second_dir = tempfile::tempdir().unwrap();
    let second = Registry::try_start_on(
        second_dir.path(),
        &htpasswd_in(second_dir.path()),
        first.port,
        None,
    );
    match second {
        Err(PortTaken(port)) => assert_eq!(port, first.port),
        Ok(r) => panic!(
            "taken for started on port {}, held by another registry",
            r.port
        ),
    }

    // Retried on fresh ports, it does start, on a port of its own.
    let third = common::on_free_port(|port| {
        Registry::try_start_on(
            second_dir.path(),
            &htpasswd_in(second_dir.path()),
            port,
            None,
        )
    });
    assert_ne!(third.port, first.port);
    let log = std::fs::read_to_string(&third.log).unwrap();
    assert!(
        log.contains(&format!("listening on 127.0.0.1:{}", third.port)),
        "{log}"
    );
}
