//! `registry_admin_robots_expiring`: robots that expire within 14 days (or have expired), so
//! an alert fires before a CI pipeline breaks at night.

use chrono::Utc;

use super::store::RobotsStore;

/// The window of the gauge and of the UI's banner.
pub const EXPIRING_DAYS: i64 = 14;

/// The gauge in Prometheus text format; an unreadable robots.json leaves it out (the log says
/// why) rather than reporting 0.
pub fn render(robots: &RobotsStore) -> String {
    match robots.current() {
        Ok(all) => format!(
            "# HELP registry_admin_robots_expiring Robot accounts that expire within {EXPIRING_DAYS} days or have expired.\n\
             # TYPE registry_admin_robots_expiring gauge\n\
             registry_admin_robots_expiring {}\n",
            all.expiring_within(Utc::now(), EXPIRING_DAYS)
        ),
        Err(e) => {
            log::error!("robots.json: {e}");
            String::new()
        }
    }
}
