//! Sets of PostgreSQL databases a fleet test creates on the test server, dropped when it ends.

use std::process::Command;

/// `n` databases named `{prefix}_{pid}_{i}` on the server of `admin`.
pub struct PgDatabases {
    pub admin: url::Url,
    pub names: Vec<String>,
}

impl PgDatabases {
    pub fn create(admin: &str, prefix: &str, n: usize) -> Self {
        let admin = url::Url::parse(admin).expect("admin url");
        let names: Vec<String> = (0..n)
            .map(|i| format!("{prefix}_{}_{i}", std::process::id()))
            .collect();
        let dbs = Self { admin, names };
        for name in &dbs.names {
            dbs.admin_query(&format!("CREATE DATABASE \"{name}\""));
        }
        dbs
    }

    /// The URL of database `i`.
    pub fn url(&self, i: usize) -> String {
        let mut u = self.admin.clone();
        u.set_path(&format!("/{}", self.names[i]));
        u.to_string()
    }

    /// `sql` on database `i`, its output unaligned and trimmed; a failure fails the test.
    pub fn query(&self, i: usize, sql: &str) -> String {
        psql(&self.url(i), sql)
    }

    /// `sql` on the admin database.
    pub fn admin_query(&self, sql: &str) -> String {
        psql(self.admin.as_str(), sql)
    }

    /// The number of finished rows in `_prisma_migrations` of database `i`.
    pub fn finished(&self, i: usize) -> String {
        self.query(
            i,
            "SELECT COUNT(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL",
        )
    }
}

impl Drop for PgDatabases {
    fn drop(&mut self) {
        for name in self.names.clone() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.admin_query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
            }));
        }
    }
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(url)
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
