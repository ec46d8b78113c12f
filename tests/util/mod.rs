//! Test harness: a scratch database on the real MariaDB of
//! `scripts/dev-db.sh` (or, with `KMDB_TEST_TARGET=postgres`, on the real
//! PostgreSQL of `scripts/pg-db.sh`), a scratch directory, and the real
//! `kmdb` binary.
#![allow(dead_code)]

pub mod s3;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

pub const CONFORMANCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/conformance");
pub const REALDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/realdata/km-bgh");

/// The reasons of rejected lines, as `kmdb import` lists them in its accounting.
pub const REASONS: [&str; 9] = [
    "bad_timestamp",
    "duplicate",
    "empty",
    "ignored_user",
    "malformed",
    "no_identity",
    "not_whitelisted",
    "numeric_alias",
    "self_alias",
];

/// Whether the tests run against PostgreSQL (`KMDB_TEST_TARGET=postgres`,
/// set by scripts/test.sh on its second round) rather than MariaDB.
pub fn on_postgres() -> bool {
    std::env::var("KMDB_TEST_TARGET").is_ok_and(|t| t == "postgres")
}

/// Ends a test that checks something only MySQL has, on PostgreSQL.
#[macro_export]
macro_rules! mysql_only {
    () => {
        if $crate::util::on_postgres() {
            eprintln!("MySQL only: skipped on PostgreSQL");
            return;
        }
    };
}

/// The server tests run against (set by scripts/test.sh).
pub fn base_url() -> String {
    if on_postgres() {
        return std::env::var("KMDB_TEST_PG_URL").expect(
            "KMDB_TEST_PG_URL is not set: run the tests with scripts/test.sh, \
             which starts a private PostgreSQL",
        );
    }
    std::env::var("KMDB_TEST_DATABASE_URL").expect(
        "KMDB_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh, \
         which starts a private MariaDB",
    )
}

/// How the harness reaches the test server.
enum Admin {
    MySql(Opts),
    /// The URL of the server's own database.
    Postgres(String),
}

/// A database of its own for one test, dropped at the end.
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin: Admin,
}

/// `base` with its database replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    match base.rfind('/') {
        Some(i) if base[..i].contains('@') || base[..i].matches('/').count() > 2 => {
            format!("{}/{name}", &base[..i])
        }
        _ => format!("{base}/{name}"),
    }
}

/// MySQL's `CRC32` on PostgreSQL, for the checksums of the tests' queries.
fn pg_crc32_function() -> String {
    let table: Vec<String> = (0..256u32)
        .map(|n| {
            let mut c = n;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            c.to_string()
        })
        .collect();
    format!(
        "CREATE FUNCTION kmdb_test_crc32(t text) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
         DECLARE b bytea; crc bigint := 4294967295;
           tbl bigint[] := ARRAY[{}];
         BEGIN
           IF t IS NULL THEN RETURN NULL; END IF;
           b := convert_to(t, 'UTF8');
           FOR i IN 0 .. length(b) - 1 LOOP
             crc := (crc >> 8) # tbl[((crc # get_byte(b, i)) & 255) + 1];
           END LOOP;
           RETURN crc # 4294967295;
         END $$",
        table.join(",")
    )
}

/// A MySQL statement of the tests in PostgreSQL's words: quoted names,
/// casts to text, `CRC32`.
pub fn pg_sql(sql: &str) -> String {
    let sql = rewrite_calls(sql, "HEX(", |x| {
        format!("upper(encode(convert_to(({x})::text, 'UTF8'), 'hex'))")
    });
    let sql = rewrite_calls(&sql, "GROUP_CONCAT(", |x| {
        let (distinct, x) = match x.strip_prefix("DISTINCT ") {
            Some(x) => ("DISTINCT ", x),
            None => ("", x),
        };
        match x.split_once(" ORDER BY ") {
            Some((x, by)) => format!("string_agg({distinct}({x})::text, ',' ORDER BY {by})"),
            None => format!("string_agg({distinct}({x})::text, ',')"),
        }
    });
    // `t PARTITION (p)`: the partition's own table.
    let mut sql = sql;
    while let Some(at) = sql.find(" PARTITION (") {
        let table_start = sql[..at].rfind(' ').map_or(0, |i| i + 1);
        let end = at + sql[at..].find(')').unwrap();
        let part = sql[at + " PARTITION (".len()..end]
            .trim()
            .to_ascii_lowercase();
        let table = sql[table_start..at].to_owned();
        sql = format!("{}{table}_{part}{}", &sql[..table_start], &sql[end + 1..]);
    }
    sql.replace('`', "\"")
        .replace(" AS BINARY)", " AS text)")
        .replace(" AS CHAR)", " AS text)")
        .replace("CRC32(", "kmdb_test_crc32(")
        .replace("FROM DUAL", "")
        .replace("DATABASE()", "current_schema()")
        .replace("COALESCE(event_id,'-')", "COALESCE(event_id::text,'-')")
        .replace(
            "COALESCE(p.event_id, '-')",
            "COALESCE(p.event_id::text, '-')",
        )
}

/// `sql` with every call `name…)` replaced by `f(arguments)`.
fn rewrite_calls(sql: &str, name: &str, f: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find(name) {
        out.push_str(&rest[..at]);
        let args = &rest[at + name.len()..];
        let mut depth = 1;
        let mut end = args.len();
        for (i, c) in args.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push_str(&f(&args[..end]));
        rest = &args[(end + 1).min(args.len())..];
    }
    out.push_str(rest);
    out
}

impl TestDb {
    pub fn new(test: &str) -> TestDb {
        let base = base_url();
        let name = format!("kmdb_t_{test}");
        let url = with_database(&base, &name);
        if on_postgres() {
            let mut c = postgres::Client::connect(&base, postgres::NoTls)
                .expect("connect to the test server");
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            // An autovacuum worker may still be in it for a moment.
            for _ in 0..40 {
                if c.batch_execute(&drop).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
            let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            db.batch_execute(&pg_crc32_function()).unwrap();
            return TestDb {
                name,
                url,
                admin: Admin::Postgres(base),
            };
        }
        let admin = Opts::from_url(&base).expect("valid KMDB_TEST_DATABASE_URL");
        let mut conn = Conn::new(admin.clone()).expect("connect to the test server");
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
            .unwrap();
        conn.query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .unwrap();
        TestDb {
            name,
            url,
            admin: Admin::MySql(admin),
        }
    }

    /// Drops the database and creates it again, empty.
    pub fn recreate(&self) {
        let name = self.name.trim_start_matches("kmdb_t_").to_owned();
        let again = TestDb::new(&name);
        std::mem::forget(again);
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.admin, Admin::Postgres(_))
    }

    /// A MySQL session on the test database (MySQL-only tests).
    pub fn conn(&self) -> Conn {
        let Admin::MySql(admin) = &self.admin else {
            panic!("a MySQL session asked of a PostgreSQL test database");
        };
        let opts = OptsBuilder::from_opts(admin.clone())
            .db_name(Some(self.name.clone()))
            .init(vec!["SET time_zone = '+00:00'"]);
        Conn::new(opts).expect("connect to the test database")
    }

    /// A PostgreSQL session on the test database.
    pub fn pg(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test database")
    }

    /// The first column of the first row of `sql` (MySQL's words; turned
    /// into PostgreSQL's by [`pg_sql`] there), as text; `NULL` for none.
    pub fn query_string(&self, sql: &str) -> String {
        if self.is_postgres() {
            let rows = self.pg().simple_query(&pg_sql(sql)).unwrap();
            for m in rows {
                if let postgres::SimpleQueryMessage::Row(r) = m {
                    return r.get(0).unwrap_or("NULL").to_owned();
                }
            }
            return "NULL".into();
        }
        let v: Option<mysql::Value> = self.conn().query_first(sql).unwrap();
        match v {
            None | Some(mysql::Value::NULL) => "NULL".into(),
            Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
            Some(mysql::Value::Int(i)) => i.to_string(),
            Some(mysql::Value::UInt(i)) => i.to_string(),
            Some(other) => other.as_sql(true),
        }
    }

    /// [`TestDb::query_string`] for checksums that only compare two
    /// databases of one target: on PostgreSQL `CRC32` becomes the server's
    /// own `hashtext` (C), not the exact CRC32 in PL/pgSQL, which takes
    /// tens of seconds over a few hundred thousand rows. Answers compared
    /// with the expected ones of a fixture use `query_string`.
    pub fn query_digest(&self, sql: &str) -> String {
        if self.is_postgres() {
            return self.query_string(&sql.replace("CRC32(", "hashtext("));
        }
        self.query_string(sql)
    }

    /// Every row of `sql` (as [`TestDb::query_string`] takes it), each
    /// value as text, `NULL` for null.
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        if self.is_postgres() {
            return self
                .pg()
                .simple_query(&pg_sql(sql))
                .unwrap()
                .into_iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(r) => Some(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                            .collect(),
                    ),
                    _ => None,
                })
                .collect();
        }
        let rows: Vec<mysql::Row> = self.conn().query(sql).unwrap();
        rows.into_iter()
            .map(|r| {
                r.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql::Value::NULL => "NULL".into(),
                        mysql::Value::Bytes(b) => {
                            String::from_utf8(b).expect("UTF-8 from the server")
                        }
                        mysql::Value::Int(i) => i.to_string(),
                        mysql::Value::UInt(i) => i.to_string(),
                        other => other.as_sql(true),
                    })
                    .collect()
            })
            .collect()
    }

    /// The first column of every row of `sql`, as text (a time as
    /// `YYYY-MM-DD HH:MM:SS`, NULL as `NULL`).
    pub fn column(&self, sql: &str) -> Vec<String> {
        if self.is_postgres() {
            // The session's DateStyle is ISO: times print as MySQL's do.
            return self
                .rows(sql)
                .into_iter()
                .map(|mut r| r.remove(0))
                .collect();
        }
        let rows: Vec<mysql::Row> = self.conn().query(sql).unwrap();
        rows.into_iter()
            .map(|r| match r.unwrap().into_iter().next() {
                None | Some(mysql::Value::NULL) => "NULL".into(),
                Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
                Some(mysql::Value::Int(i)) => i.to_string(),
                Some(mysql::Value::UInt(i)) => i.to_string(),
                Some(mysql::Value::Date(y, mo, d, h, mi, s, _)) => {
                    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
                }
                Some(other) => other.as_sql(true),
            })
            .collect()
    }

    pub fn count(&self, table: &str) -> u64 {
        self.query_string(&format!("SELECT COUNT(*) FROM `{table}`"))
            .parse()
            .unwrap()
    }

    pub fn exec(&self, sql: &str) {
        if self.is_postgres() {
            self.pg().batch_execute(&pg_sql(sql)).unwrap();
            return;
        }
        self.conn().query_drop(sql).unwrap();
    }

    /// Makes every INSERT into `kmdb_imports` fail with `message`, as a
    /// crash at that moment would stop the import (a trigger).
    pub fn fail_inserts_into_imports(&self, message: &str) {
        if self.is_postgres() {
            self.exec(&format!(
                "CREATE FUNCTION kmdb_test_crash() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION '{message}'; END $$;
                 CREATE TRIGGER kmdb_test_crash BEFORE INSERT ON kmdb_imports
                 FOR EACH ROW EXECUTE FUNCTION kmdb_test_crash()"
            ));
            return;
        }
        self.exec(&format!(
            "CREATE TRIGGER kmdb_test_crash BEFORE INSERT ON kmdb_imports FOR EACH ROW \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{message}'"
        ));
    }

    /// Removes what [`TestDb::fail_inserts_into_imports`] added.
    pub fn stop_failing_inserts(&self) {
        if self.is_postgres() {
            self.exec("DROP TRIGGER kmdb_test_crash ON kmdb_imports");
            return;
        }
        self.exec("DROP TRIGGER kmdb_test_crash");
    }

    /// Inserts `name` into the filter table `table`.
    pub fn insert_name(&self, table: &str, name: &str) {
        if self.is_postgres() {
            self.pg()
                .execute(&format!("INSERT INTO {table}(name) VALUES($1)"), &[&name])
                .unwrap();
            return;
        }
        self.conn()
            .exec_drop(format!("INSERT INTO {table}(name) VALUES(?)"), (name,))
            .unwrap();
    }

    /// Fills the filter tables from a conformance-style filters.json.
    pub fn insert_filters(&self, filters_json: &Path) {
        let text = std::fs::read_to_string(filters_json).unwrap();
        let v: sonic_rs::Value = sonic_rs::from_str(&text).unwrap();
        for table in [
            "ignored_users",
            "whitelisted_events",
            "blacklisted_properties",
        ] {
            let names = v
                .get(table)
                .and_then(|a| a.as_array().map(|a| a.to_vec()))
                .unwrap_or_default();
            for n in names {
                self.insert_name(table, n.as_str().unwrap());
            }
        }
    }

    /// Answers to every query of queries.json.
    pub fn answers(&self) -> BTreeMap<String, String> {
        self.answers_by(TestDb::query_string)
    }

    fn answers_by(&self, query: fn(&TestDb, &str) -> String) -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(format!("{CONFORMANCE}/queries.json")).unwrap();
        let v: sonic_rs::Value = sonic_rs::from_str(&text).unwrap();
        let obj = v.as_object().unwrap();
        obj.iter()
            .map(|(k, sql)| {
                let sql = sql.as_str().unwrap();
                (k.to_owned(), query(self, sql))
            })
            .collect()
    }

    /// Row-level fingerprint of the whole database, by names (ids of users
    /// and keys may differ between import orders).
    /// Its checksums compare databases of one target ([`TestDb::query_digest`]).
    pub fn fingerprint(&self) -> BTreeMap<String, String> {
        let mut out = self.answers_by(TestDb::query_digest);
        for (name, sql) in [
            ("events_ids", "SELECT COALESCE(SUM(CRC32(CONCAT_WS('|', id, t))),0) FROM events"),
            ("properties_ids", "SELECT COALESCE(SUM(CRC32(CONCAT_WS('|', id, t, COALESCE(event_id,'-')))),0) FROM properties"),
            ("aliases_ids", "SELECT COALESCE(SUM(CRC32(CONCAT_WS('|', id, t))),0) FROM aliases"),
            ("user_of_event", "SELECT COALESCE(SUM(CRC32(CONCAT_WS('|', e.id, CAST(u.name AS BINARY)))),0) FROM events e JOIN users u ON u.id = e.user_id"),
            ("user_of_property", "SELECT COALESCE(SUM(CRC32(CONCAT_WS('|', p.id, CAST(u.name AS BINARY)))),0) FROM properties p JOIN users u ON u.id = p.user_id"),
            ("properties", "SELECT COUNT(*) FROM properties"),
        ] {
            out.insert(name.into(), self.query_digest(sql));
        }
        out
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.admin {
            Admin::MySql(admin) => {
                if let Ok(mut c) = Conn::new(admin.clone()) {
                    let _ = c.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name));
                }
            }
            Admin::Postgres(base) => {
                if let Ok(mut c) = postgres::Client::connect(base, postgres::NoTls) {
                    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                    let _ = c.batch_execute(&sql);
                }
            }
        }
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A scratch directory, removed at the end.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Writes `revisions/N.json` files of an export.
    pub fn export(&self, name: &str, revisions: &[(u64, &str)]) -> PathBuf {
        let root = self.join(name);
        let dir = root.join("revisions");
        std::fs::create_dir_all(&dir).unwrap();
        for (n, text) in revisions {
            std::fs::write(dir.join(format!("{n}.json")), text).unwrap();
        }
        root
    }
}

/// Writes the export `x` in the scratch directory: revision N holds the
/// given lines, each ended by `\n`.
pub fn write_export(s: &Scratch, revisions: &[(u64, Vec<&str>)]) -> PathBuf {
    let texts: Vec<(u64, String)> = revisions
        .iter()
        .map(|(n, lines)| (*n, lines.iter().map(|l| format!("{l}\n")).collect()))
        .collect();
    let texts: Vec<(u64, &str)> = texts.iter().map(|(n, t)| (*n, t.as_str())).collect();
    s.export("x", &texts)
}

/// Runs the real binary.
pub struct Kmdb {
    cmd: Command,
}

impl Kmdb {
    pub fn new(db: Option<&TestDb>, cwd: &Path) -> Kmdb {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kmdb"));
        cmd.current_dir(cwd);
        cmd.env_remove("DATABASE_URL");
        for (k, _) in std::env::vars() {
            if k.starts_with("KMDB_") && !k.starts_with("KMDB_TEST") {
                cmd.env_remove(k);
            }
        }
        if let Some(db) = db {
            cmd.env("DATABASE_URL", &db.url);
        }
        Kmdb { cmd }
    }

    pub fn args<I, S>(mut self, args: I) -> Kmdb
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Kmdb {
        self.cmd.env(k, v);
        self
    }

    pub fn output(mut self) -> Output {
        self.cmd.output().expect("run kmdb")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(self) -> String {
        let out = self.output();
        assert!(
            out.status.success(),
            "kmdb failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts failure with exit code 1; returns stderr.
    pub fn fails(self) -> String {
        let out = self.output();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "expected exit 1, stderr:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }
}

/// The state file `kmdb` uses in `scratch` for `db` when `--state` is not
/// given: `kmdb-state-HOST-PORT-DATABASE.sqlite`.
pub fn default_state(db: &TestDb, scratch: &Scratch) -> PathBuf {
    let url = kmdb::db::DatabaseUrl::parse(&db.url).unwrap();
    let port = url
        .port()
        .unwrap_or(if db.is_postgres() { 5432 } else { 3306 });
    scratch.join(&format!(
        "kmdb-state-{}-{}-{}.sqlite",
        url.host(),
        port,
        db.name
    ))
}

/// `setup` + `partition` in a fresh test database.
pub fn prepared_db(test: &str, scratch: &Scratch) -> TestDb {
    let db = TestDb::new(test);
    Kmdb::new(Some(&db), scratch.path()).args(["setup"]).ok();
    Kmdb::new(Some(&db), scratch.path())
        .args([
            "partition",
            "--min-date",
            "2013-12-01",
            "--max-date",
            "2016-02-01",
            "--days-per-partition",
            "120",
        ])
        .ok();
    db
}

/// `kmdb import SOURCE -q` with the scratch dir's state and work dir.
pub fn import(db: &TestDb, scratch: &Scratch, source: &Path, extra: &[&str]) -> String {
    Kmdb::new(Some(db), scratch.path())
        .args(["import", "-q"])
        .arg_path(source)
        .args(extra)
        .ok()
}

impl Kmdb {
    pub fn arg_path(mut self, p: &Path) -> Kmdb {
        self.cmd.arg(p);
        self
    }

    /// The command, to run it otherwise (spawned, with other stdio).
    pub fn command(self) -> Command {
        self.cmd
    }
}

/// Expected answers from an expected.json (numbers as text, no `_accounting`).
pub fn expected(path: &str) -> BTreeMap<String, String> {
    let read = |path: &str| -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(path).unwrap();
        let v: sonic_rs::Value = sonic_rs::from_str(&text).unwrap();
        let obj = v.as_object().unwrap();
        obj.iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k.to_owned(), sonic_rs::to_string(v).unwrap()))
            .collect()
    };
    let mut out = read(path);
    // Where PostgreSQL's answers differ (U+0000 stored as U+FFFD), its
    // expected-postgres.json beside says how.
    let pg = path.replace("expected.json", "expected-postgres.json");
    if on_postgres() && Path::new(&pg).exists() {
        out.extend(read(&pg));
    }
    out
}

/// The accounting table of expected.json as the lines `kmdb import` prints.
pub fn expected_accounting(path: &str) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let v: sonic_rs::Value = sonic_rs::from_str(&text).unwrap();
    let acc = v.get("_accounting").unwrap();
    let mut out = Vec::new();
    let mut rejected_total = 0;
    for k in ["lines", "blank", "events", "property_sets", "aliases"] {
        let n = acc.get(k).and_then(|v| v.as_u64()).unwrap();
        out.push((k.to_owned(), n));
    }
    if let Some(rej) = acc.get("rejected").and_then(|r| r.as_object().cloned()) {
        for (k, v) in rej.iter() {
            let n = v.as_u64().unwrap();
            rejected_total += n;
            out.push((k.to_owned(), n));
        }
    }
    out.push(("rejected".into(), rejected_total));
    out
}

/// Asserts that `db` gives every answer of the expected.json at `path`.
pub fn assert_expected_answers(db: &TestDb, path: &str) {
    let want = expected(path);
    let got = db.answers();
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "query {k} on {}", db.name);
    }
}

/// Asserts that the accounting `printed` by an import (its stdout: `out`) has
/// every line of the accounting of the expected.json at `path`.
pub fn assert_expected_accounting(printed: &BTreeMap<String, u64>, out: &str, path: &str) {
    for (k, n) in expected_accounting(path) {
        assert_eq!(printed.get(&k), Some(&n), "accounting {k} in:\n{out}");
    }
}

/// Parses the accounting table printed by `kmdb import` (counts are
/// written `1,234,567`).
pub fn printed_accounting(stdout: &str) -> BTreeMap<String, u64> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (k, v) = (it.next()?, it.next()?);
            if it.next().is_some() {
                return None;
            }
            Some((k.to_owned(), v.replace(',', "").parse().ok()?))
        })
        .collect()
}
