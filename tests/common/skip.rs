//! What a test does when a component it starts is not installed (PostgreSQL, nginx and
//! moto_server for the cluster tests).

/// How the cluster tests treat a missing component (PostgreSQL, nginx, moto_server): under
/// `CI=true` the test fails; elsewhere it prints a loud banner and the test returns early, as
/// scripts/test.sh does for a missing registry:3.
pub fn component_missing(what: &str, hint: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is missing ({hint}); CI must run the cluster tests");
    }
    eprintln!(
        "\n  ************************************************************************\n  \
         WARNING: cluster test SKIPPED — {what} is missing.\n  {hint}\n  \
         ************************************************************************\n"
    );
}
