//! Cluster mode's PostgreSQL: a bounded pool, the schema migrations, and the one error every
//! caller turns into 503 `database_unavailable`.
//!
//! The client is the synchronous `postgres` crate behind an r2d2 pool: every store in this
//! service is already called from blocking threads (`blocking::run_blocking`), so a synchronous
//! client keeps one shape for both backends. Every wait is bounded: connecting and checking a
//! connection out take at most [`WAIT`], and the server cancels a statement after
//! [`STATEMENT_TIMEOUT`], so a database that is down or stuck answers 503 and never hangs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

/// Longest wait to connect or to get a pooled connection.
pub const WAIT: Duration = Duration::from_secs(4);
/// The server ends a statement that runs longer (lock waits included).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(4);
/// How long start-up keeps trying a database that does not answer yet (compose starts
/// PostgreSQL and the replicas together).
const START_PATIENCE: Duration = Duration::from_secs(60);
/// Taken while migrating, so replicas that start together apply each migration once.
const MIGRATION_LOCK: i64 = 0x7265_6769_7374_7279; // "registry"

/// Migrations, applied in order, each once, in one transaction each.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("schema/0001_cluster.sql")),
    (10, include_str!("schema/0010_retention_plans.sql")),
];

pub type Connection = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

pub use super::error::DatabaseError;

pub struct Database {
    pool: r2d2::Pool<PostgresConnectionManager<NoTls>>,
    /// For the one connection outside the pool that waits for change notifications.
    config: postgres::Config,
    replica_id: String,
    pub(crate) documents: super::cache::DocumentCache,
}

impl Database {
    /// Connects (retrying a database that is still starting), migrates, and loads the documents.
    /// Blocking.
    pub fn open(
        url: &str,
        replica_id: &str,
        pool_size: u32,
    ) -> Result<Arc<Database>, DatabaseError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|_| DatabaseError("DATABASE_URL is not a valid connection URL".into()))?;
        config
            .connect_timeout(WAIT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .application_name("registry-admin")
            .options(&format!(
                "-c statement_timeout={} -c idle_in_transaction_session_timeout=30000",
                STATEMENT_TIMEOUT.as_millis()
            ));
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(WAIT)
            .build_unchecked(manager);
        let db = Database {
            pool,
            config,
            replica_id: replica_id.to_string(),
            documents: super::cache::DocumentCache::default(),
        };
        let started = Instant::now();
        loop {
            match db.migrate() {
                Ok(()) => break,
                Err(e) if started.elapsed() < START_PATIENCE => {
                    log::warn!("cluster mode: waiting for the database: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
        db.documents.refresh(&mut *db.connection()?)?;
        Ok(Arc::new(db))
    }

    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    /// A pooled connection, within [`WAIT`]. Blocking.
    pub fn connection(&self) -> Result<Connection, DatabaseError> {
        Ok(self.pool.get()?)
    }

    /// A connection of its own, outside the pool (the documents refresh keeps one to LISTEN on).
    /// Blocking.
    pub fn dedicated_connection(&self) -> Result<postgres::Client, DatabaseError> {
        Ok(self.config.connect(NoTls)?)
    }

    /// Applies the migrations this database lacks, under an advisory lock so replicas
    /// starting at once apply each one exactly once.
    fn migrate(&self) -> Result<(), DatabaseError> {
        let mut conn = self.connection()?;
        // Tried, not waited for: a blocking wait would be cut by the statement timeout while
        // another replica runs a long migration.
        let started = Instant::now();
        loop {
            let got: bool = conn
                .query_one("SELECT pg_try_advisory_lock($1)", &[&MIGRATION_LOCK])?
                .get(0);
            if got {
                break;
            }
            if started.elapsed() > START_PATIENCE {
                return Err(DatabaseError(
                    "another replica has been migrating the database for too long".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let result = Self::apply_migrations(&mut conn);
        let unlocked = conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
        result?;
        unlocked?;
        Ok(())
    }

    fn apply_migrations(conn: &mut postgres::Client) -> Result<(), DatabaseError> {
        let exists: bool = conn
            .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?
            .get(0);
        if !exists {
            conn.batch_execute(
                "CREATE TABLE schema_migrations (
                     version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now())",
            )?;
        }
        for (version, sql) in MIGRATIONS {
            let applied = conn
                .query_opt(
                    "SELECT 1 FROM schema_migrations WHERE version = $1",
                    &[version],
                )?
                .is_some();
            if applied {
                continue;
            }
            let mut tx = conn.transaction()?;
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )?;
            tx.commit()?;
            log::info!("cluster mode: applied database migration {version}");
        }
        Ok(())
    }

    /// One round trip: what `/health/ready` reports as `database`. Blocking.
    pub fn check(&self) -> Result<(), DatabaseError> {
        self.connection()?.batch_execute("SELECT 1")?;
        Ok(())
    }
}
