//! The PostgreSQL target's pieces against the real PostgreSQL of
//! `scripts/pg-db.sh` (`KMDB_TEST_PG_URL`, set by scripts/test.sh): schema,
//! partitions, COPY loads exactly once, the catch-up's statements, errors.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use kmdb::dates::Day;
use kmdb::db::postgres::{
    self as pg,
    load::{self, PgLoader as Loader, Replace, Rows},
    partition, rows as catchup, schema,
};
use kmdb::db::{DatabaseUrl, ImportRecord};
use kmdb::partition::{plan, PartitionMap};
use kmdb::report::Accounting;
use kmdb::rows::{RowSink, TsvFile, TsvWriter};
use kmdb::table::Table;
use postgres::{Client, NoTls};

/// Records an import of `revisions` that took `seconds`; returns its id.
fn record(c: &mut Client, a: &Accounting, revisions: &str, seconds: u64) -> u64 {
    catchup::record_import(
        c,
        &ImportRecord {
            source: "src".into(),
            revisions: revisions.into(),
            accounting: a,
            rejects_file: None,
            seconds,
            replaces: None,
            state_store: "state.sqlite".into(),
            host: "here".into(),
        },
    )
    .unwrap()
}

/// Imports in kmdb_imports.
fn import_count(c: &mut Client) -> i64 {
    c.query_one("SELECT COUNT(*) FROM kmdb_imports", &[])
        .unwrap()
        .get(0)
}

/// The server tests run against.
fn base_url() -> String {
    std::env::var("KMDB_TEST_PG_URL").expect(
        "KMDB_TEST_PG_URL is not set: run the tests with scripts/test.sh, which starts a \
         private PostgreSQL (scripts/pg-db.sh)",
    )
}

/// `base` with its database replaced by `db`.
fn with_database(base: &str, db: &str) -> String {
    let (head, _) = base.rsplit_once('/').expect("a URL with a database");
    format!("{head}/{db}")
}

/// Drops `name`, retrying while an autovacuum worker is in it: a user who
/// is not a superuser cannot end that worker (PostgreSQL 15 refuses with
/// "must be a member of the role whose process is being terminated").
fn drop_database(admin: &mut Client, name: &str) {
    // One statement: DROP DATABASE refuses a multi-statement string.
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    for _ in 0..60 {
        if admin.batch_execute(&sql).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    admin.batch_execute(&sql).unwrap();
}

/// A database of its own for one test, dropped at the end.
struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    fn new(test: &str) -> TestDb {
        let name = format!("kmdb_t_pg_{test}");
        let mut admin = Client::connect(&base_url(), NoTls).expect("connect to the test server");
        drop_database(&mut admin, &name);
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        TestDb {
            url: with_database(&base_url(), &name),
            name,
        }
    }

    fn url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&self.url).unwrap()
    }

    /// A kmdb session (UTC).
    fn client(&self) -> Client {
        pg::connect(&self.url()).unwrap()
    }

    /// A session with kmdb's schema, partitioned by `bounds`.
    fn with_schema(&self, bounds: &[Day]) -> Client {
        let mut c = self.client();
        schema::setup(&mut c).unwrap();
        partition::extend_partitions(&mut c, bounds).unwrap();
        c
    }

    fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // At once, or by the next run of the test.
        if let Ok(mut admin) = Client::connect(&base_url(), NoTls) {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = admin.batch_execute(&sql);
        }
    }
}

fn day(s: &str) -> Day {
    Day::parse(s).unwrap()
}

/// Unix seconds of `YYYY-MM-DD HH:MM:SS` (UTC).
fn secs(t: &str) -> i64 {
    let d = day(&t[..10]);
    let hms: Vec<i64> = t[11..].split(':').map(|p| p.parse().unwrap()).collect();
    let midnight = Day::parse("1970-01-01").unwrap();
    (d.0 - midnight.0) * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

fn maps(c: &mut Client) -> [PartitionMap; 3] {
    [
        partition::partitions(c, Table::Events).unwrap(),
        partition::partitions(c, Table::Properties).unwrap(),
        partition::partitions(c, Table::Aliases).unwrap(),
    ]
}

/// The partition table of each row of `table`, by id.
fn placement(db: &TestDb, table: &str) -> Vec<(i64, String)> {
    db.client()
        .query(
            &format!("SELECT id, tableoid::regclass::text FROM {table} ORDER BY id"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn setup_creates_the_schema_once_and_check_wants_it() {
    let db = TestDb::new("setup");
    let mut c = db.client();
    let err = schema::check(&mut c).unwrap_err().to_string();
    assert_eq!(
        err,
        "the database has no kmdb schema: run `kmdb setup` first"
    );
    assert_eq!(schema::setup(&mut c).unwrap(), [1, 2, 3]);
    assert_eq!(schema::setup(&mut c).unwrap(), Vec::<u32>::new());
    schema::check(&mut c).unwrap();
    let token = schema::token(&mut c).unwrap();
    assert_eq!(token.len(), 32);
    schema::setup(&mut c).unwrap();
    assert_eq!(
        schema::token(&mut c).unwrap(),
        token,
        "setup keeps the token"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM kmdb_migrations"), 3);
    for table in Table::ALL {
        let map = partition::partitions(&mut c, table).unwrap();
        assert_eq!((map.len(), map.name(0)), (1, "pLast"), "{table:?}");
    }
    c.batch_execute("DELETE FROM kmdb_migrations").unwrap();
    let err = schema::check(&mut c).unwrap_err().to_string();
    assert_eq!(
        err,
        "the database schema is out of date: run `kmdb setup` to upgrade it"
    );
}

#[test]
fn the_schema_has_the_types_collations_and_indexes_of_spec_8() {
    let db = TestDb::new("types");
    let mut c = db.with_schema(&[]);
    let columns: HashMap<String, (String, Option<String>)> = c
        .query(
            "SELECT table_name || '.' || column_name, data_type ||
                    COALESCE('(' || character_maximum_length || ')', ''), collation_name
             FROM information_schema.columns WHERE table_schema = current_schema()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let text = ("character varying(255)".to_string(), Some("C".to_string()));
    for name in [
        "keys.string",
        "users.name",
        "properties.value",
        "aliases.name1",
        "aliases.name2",
        "ignored_users.name",
        "whitelisted_events.name",
        "blacklisted_properties.name",
    ] {
        assert_eq!(columns[name], text, "{name}");
    }
    for t in ["events.t", "properties.t", "aliases.t"] {
        assert_eq!(columns[t].0, "timestamp without time zone", "{t}");
    }
    assert_eq!(columns["aliases.applied"].0, "smallint");
    assert_eq!(columns["events.id"].0, "bigint");
    assert_eq!(columns["keys.id"].0, "integer");
    assert_eq!(columns["properties.event_id"].0, "bigint");
    let indexes: Vec<String> = c
        .query(
            "SELECT indexrelid::regclass::text || ' ' ||
                    split_part(pg_get_indexdef(indexrelid), ' USING ', 2)
             FROM pg_index WHERE indrelid IN ('events'::regclass, 'properties'::regclass,
                                              'aliases'::regclass, 'users'::regclass,
                                              'keys'::regclass)
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        indexes,
        [
            "aliases_pkey btree (t, id)",
            "events_pkey btree (t, id)",
            "index_aliases_on_name1 btree (name1)",
            "index_aliases_on_name2 btree (name2)",
            "index_events_on_n btree (n)",
            "index_events_on_user_id_and_n_and_t btree (user_id, n, t)",
            "index_keys_on_string btree (string)",
            "index_properties_on_event_id btree (event_id)",
            "index_properties_on_key btree (key)",
            "index_properties_on_user_id_and_key_and_t btree (user_id, key, t)",
            "index_users_on_alias_of btree (alias_of)",
            "index_users_on_name btree (name)",
            "keys_pkey btree (id)",
            "properties_pkey btree (t, id)",
            "users_pkey btree (id)",
        ]
    );
    // Byte order, byte-exact equality: `abc`, `abc ` and `ABC` are three names.
    c.batch_execute("INSERT INTO ignored_users VALUES ('abc'), ('abc '), ('ABC'), ('Ab')")
        .unwrap();
    let names: Vec<String> = schema::filters(&mut c).unwrap().ignored_users;
    assert_eq!(names, ["ABC", "Ab", "abc", "abc "]);
}

#[test]
fn connection_errors_say_what_to_check_and_hide_the_password() {
    let base = base_url();
    let real = DatabaseUrl::parse(&base).unwrap();
    let password = base
        .split_once("://")
        .and_then(|(_, r)| r.rsplit_once('@'))
        .and_then(|(u, _)| u.split_once(':'))
        .map(|(_, p)| p.to_owned())
        .expect("the test URL has a password");
    let (user, server) = (real.user().to_owned(), real.server());
    let cases = [
        (
            format!("postgres://{user}:{password}@127.0.0.1:1/kmdb"),
            "cannot connect to PostgreSQL at 127.0.0.1:1".to_string(),
            "is the server running, and are the host and port of DATABASE_URL right?",
        ),
        (
            base.replace(&format!(":{password}@"), ":wrong-pw-123@"),
            format!("PostgreSQL at {server} refused the password of user \"{user}\""),
            "check the password in DATABASE_URL",
        ),
        (
            with_database(&base, "kmdb_no_such_db"),
            format!("database \"kmdb_no_such_db\" does not exist on PostgreSQL at {server}"),
            "CREATE DATABASE \"kmdb_no_such_db\"",
        ),
    ];
    for (url, says, advice) in cases {
        let Err(err) = pg::connect(&DatabaseUrl::parse(&url).unwrap()) else {
            panic!("{url} connected");
        };
        let err = err.to_string();
        assert!(err.starts_with(&says), "{err}");
        assert!(err.contains(advice), "{err}");
        assert!(!err.contains(&password), "{err}");
        assert!(!err.contains("wrong-pw-123"), "{err}");
    }
}

#[test]
fn sessions_are_utc_whatever_the_server_zone() {
    let db = TestDb::new("utc");
    let mut admin = Client::connect(&db.url, NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET timezone = 'Asia/Kolkata'",
            db.name
        ))
        .unwrap();
    let mut c = db.with_schema(&[]);
    let zone: String = c.query_one("SHOW TimeZone", &[]).unwrap().get(0);
    assert_eq!(zone, "UTC");
    let a = Accounting {
        lines: 3,
        events: 2,
        blank: 1,
        ..Default::default()
    };
    let id = record(&mut c, &a, "1", 90);
    c.execute(
        "UPDATE kmdb_imports SET state_generation = 'g' WHERE id = $1",
        &[&(id as i64)],
    )
    .unwrap();
    // finished_at is UTC, and started_at the duration before it.
    let row = c
        .query_one(
            "SELECT EXTRACT(EPOCH FROM finished_at)::bigint,
                    EXTRACT(EPOCH FROM finished_at - started_at)::bigint
             FROM kmdb_imports WHERE id = $1",
            &[&(id as i64)],
        )
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (row.get::<_, i64>(0) - now).abs() < 120,
        "{} vs {now}",
        row.get::<_, i64>(0)
    );
    assert_eq!(row.get::<_, i64>(1), 90);
    let last = catchup::last_import(&mut c).unwrap().unwrap();
    assert_eq!(
        (
            last.id,
            last.revisions.as_str(),
            last.accounting.lines,
            last.accounting.events,
            last.accounting.blank
        ),
        (id, "1", 3, 2, 1)
    );
}

#[test]
fn a_plan_splits_the_default_partition_and_moves_its_rows() {
    let db = TestDb::new("plan");
    let mut c = db.with_schema(&[]);
    // Rows in pLast before any plan: before, inside and after the plan.
    c.batch_execute(
        "INSERT INTO events VALUES
           (1, '1970-01-01 00:00:00', 1, 1), (2, '2014-01-07 23:59:59', 1, 1),
           (3, '2014-01-08 00:00:00', 1, 1), (4, '2014-01-21 12:00:00', 1, 1),
           (5, '2014-01-22 00:00:00', 1, 1), (6, '9999-12-31 23:59:59', 1, 1);
         INSERT INTO aliases VALUES (1, '2014-01-02 00:00:00', 'a', 'b', 1);",
    )
    .unwrap();
    let bounds = plan(day("2014-01-01"), day("2014-01-20"), 7).unwrap();
    assert_eq!(partition::extend_partitions(&mut c, &bounds).unwrap(), 3);
    let map = partition::partitions(&mut c, Table::Events).unwrap();
    let names: Vec<&str> = (0..map.len()).map(|i| map.name(i)).collect();
    assert_eq!(names, ["p20140108", "p20140115", "p20140122", "pLast"]);
    assert_eq!(
        placement(&db, "events"),
        [
            (1, "events_p20140108".into()),
            (2, "events_p20140108".into()),
            (3, "events_p20140115".into()),
            (4, "events_p20140122".into()),
            (5, "events_plast".into()),
            (6, "events_plast".into()),
        ]
    );
    assert_eq!(placement(&db, "aliases"), [(1, "aliases_p20140108".into())]);
    // The same plan again adds nothing; a longer one adds past the last bound.
    assert_eq!(partition::extend_partitions(&mut c, &bounds).unwrap(), 0);
    let longer = plan(day("2014-01-01"), day("2014-02-01"), 7).unwrap();
    assert_eq!(partition::extend_partitions(&mut c, &longer).unwrap(), 2);
    assert_eq!(placement(&db, "events")[4], (5, "events_p20140129".into()));
    assert_eq!(placement(&db, "events")[5], (6, "events_plast".into()));
    // All of pLast moves (the TRUNCATE way), and the DEFAULT partition is
    // back in place: a row past the plan still lands in it.
    c.batch_execute(
        "DELETE FROM events WHERE id = 6;
         INSERT INTO events VALUES (7, '2014-02-06 00:00:00', 1, 1)",
    )
    .unwrap();
    let all = plan(day("2014-01-01"), day("2014-02-10"), 7).unwrap();
    assert_eq!(partition::extend_partitions(&mut c, &all).unwrap(), 1);
    c.batch_execute("INSERT INTO events VALUES (8, '2020-01-01 00:00:00', 1, 1)")
        .unwrap();
    assert_eq!(
        placement(&db, "events")[5..],
        [(7, "events_p20140212".into()), (8, "events_plast".into())]
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 7);
    let constraints =
        db.count("SELECT COUNT(*) FROM pg_constraint WHERE conname = 'kmdb_plast_bound'");
    assert_eq!(constraints, 0, "the helper constraint is gone");
    let empty = partition::empty_partitions(&mut c, Table::Events).unwrap();
    assert_eq!(empty, ["p20140205"], "the partition row 6 was not moved to");
}

#[test]
fn a_plan_past_the_partition_limit_is_refused() {
    let db = TestDb::new("limit");
    let mut c = db.with_schema(&[]);
    let many: Vec<Day> = (1..=8192).map(Day).collect();
    let err = partition::extend_partitions(&mut c, &many)
        .unwrap_err()
        .to_string();
    assert!(err.contains("would have 8193 partitions"), "{err}");
}

/// Hostile values: every TSV escape, `\N` as text, a backslash before
/// digits, a lone `\.`, 4-byte UTF-8, combining marks, U+FFFD, 255 chars.
fn hostile_values() -> Vec<String> {
    vec![
        "tab\there".into(),
        "line\nbreak\r\nand cr\r".into(),
        "back\\slash\\".into(),
        "\\N".into(),
        "\\0 and \\303\\251".into(),
        "\\.".into(),
        ".".into(),
        "emoji 😀 and Cafe\u{301} and Café".into(),
        "nul\u{FFFD}".into(),
        "\u{1}\u{7}\u{8}\u{b}\u{c}\u{1b}\u{7f}".into(),
        "".into(),
        " ".into(),
        "é".repeat(255),
    ]
}

/// The second name of alias `id` whose first is `v`: 255 characters at most.
fn name2(v: &str, id: u64) -> String {
    format!("{id}-{v}").chars().take(255).collect()
}

/// Writes events, properties and aliases with the TSV writer the import
/// uses; returns its files.
fn write_rows(dir: &Path, maps: [PartitionMap; 3], first: u64, count: u64) -> Vec<TsvFile> {
    let mut w = TsvWriter::new(dir, maps, 1 << 20, 4 << 20).unwrap();
    let values = hostile_values();
    let base = secs("2014-01-01 00:00:00");
    let mut files = Vec::new();
    for i in first..first + count {
        let t = base + (i as i64 * 7919) % (40 * 86_400);
        w.event(i, t, (i % 5) as u32 + 1, i % 17 + 1).unwrap();
        let v = &values[i as usize % values.len()];
        w.property(i, t, 1, v, i % 17 + 1, Some(i)).unwrap();
        w.alias(i, t, v, &name2(v, i), i % 2 == 0).unwrap();
        files.extend(w.take_ready());
    }
    files.extend(w.finish().unwrap());
    files
}

fn load_all(db: &TestDb, files: &[TsvFile]) -> u64 {
    let mut loader = Loader::new(db.client()).unwrap();
    files.iter().map(|f| loader.load(f).unwrap()).sum()
}

#[test]
fn kmdb_tsv_loads_by_copy_byte_for_byte_and_exactly_once() {
    let db = TestDb::new("copy");
    let bounds = plan(day("2014-01-01"), day("2014-02-01"), 7).unwrap();
    let mut c = db.with_schema(&bounds);
    let dir = tempfile::tempdir().unwrap();
    let files = write_rows(dir.path(), maps(&mut c), 1, 3000);
    assert!(files.len() > 3, "{} files", files.len());
    assert_eq!(load_all(&db, &files), 9000);
    // Every row in its partition, values as written.
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 3000);
    let past_plan = (1..=3000i64)
        .filter(|i| i * 7919 % (40 * 86_400) >= 35 * 86_400)
        .count();
    assert!(past_plan > 100);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM events_plast"),
        past_plan as i64
    );
    let values = hostile_values();
    let rows = c
        .query(
            "SELECT p.id, p.value, a.name1, a.name2, a.applied, p.t::text, p.event_id
             FROM properties p JOIN aliases a USING (id) ORDER BY id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 3000);
    for r in &rows {
        let id = r.get::<_, i64>(0) as u64;
        let v = &values[id as usize % values.len()];
        assert_eq!(&r.get::<_, String>(1), v, "property {id}");
        assert_eq!(&r.get::<_, String>(2), v, "alias {id}");
        assert_eq!(r.get::<_, String>(3), name2(v, id));
        assert_eq!(r.get::<_, i16>(4), (id % 2 == 0) as i16);
        let t = secs("2014-01-01 00:00:00") + (id as i64 * 7919) % (40 * 86_400);
        assert_eq!(
            r.get::<_, String>(5).as_bytes(),
            &kmdb::dates::datetime(t)[..],
            "t of {id}"
        );
        assert_eq!(r.get::<_, Option<i64>>(6), Some(id as i64));
    }
    // Loading the same files again (a re-run) adds nothing.
    assert_eq!(load_all(&db, &files), 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM properties"), 3000);
    // Overlapping files: only the new rows go in.
    let dir2 = tempfile::tempdir().unwrap();
    let more = write_rows(dir2.path(), maps(&mut c), 2001, 2000);
    assert_eq!(load_all(&db, &more), 3 * 1000);
    assert_eq!(db.count("SELECT COUNT(*) FROM aliases"), 4000);
    assert_eq!(db.count("SELECT COUNT(DISTINCT id) FROM aliases"), 4000);
}

#[test]
fn an_empty_partition_is_filled_by_one_frozen_copy_and_a_failed_one_leaves_it_empty() {
    let db = TestDb::new("freeze");
    let mut c = db.with_schema(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut w = TsvWriter::new(dir.path(), maps(&mut c), 64, 1 << 20).unwrap();
    w.hold(Table::Events, "pLast");
    for id in 1..=50u64 {
        w.event(
            id,
            secs("2014-01-01 00:00:00") + (id as i64 * 37) % 500,
            1,
            1,
        )
        .unwrap();
    }
    assert!(w.take_ready().is_empty());
    let files = w.finish().unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].parts.len() > 1, "a held partition comes in runs");
    let filenode = |c: &mut Client| -> u32 {
        c.query_one("SELECT pg_relation_filenode('events_plast')", &[])
            .unwrap()
            .get(0)
    };
    let before = filenode(&mut c);
    assert_eq!(load_all(&db, &files), 50);
    // Truncated first (a new file), which is what lets COPY FREEZE and skip
    // the WAL; a second load into the filled partition goes through a
    // staging table and leaves the file in place.
    let filled = filenode(&mut c);
    assert_ne!(filled, before, "the empty partition was truncated");
    assert_eq!(load_all(&db, &files), 0);
    assert_eq!(filenode(&mut c), filled);

    // A file with a bad last row: the COPY fails whole.
    let bad_dir = tempfile::tempdir().unwrap();
    let path = bad_dir.path().join("aliases.pLast.000001.tsv");
    let long = "x".repeat(256);
    std::fs::write(
        &path,
        format!("1\t2014-01-01 00:00:00\ta\tb\t1\n2\t2014-01-01 00:00:01\t{long}\tb\t1\n"),
    )
    .unwrap();
    let file = TsvFile {
        table: Table::Aliases,
        partition: "pLast".into(),
        path: path.clone(),
        parts: vec![path.clone()],
        rows: 2,
        late: false,
    };
    let err = format!(
        "{:#}",
        Loader::new(db.client()).unwrap().load(&file).unwrap_err()
    );
    assert!(
        err.contains("value too long for type character varying(255)"),
        "{err}"
    );
    assert!(
        err.contains(&format!("loading {}", path.display())),
        "{err}"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM aliases"), 0);
    // PostgreSQL's text format has no `\0`: U+0000 must be gone upstream.
    std::fs::write(&path, "1\t2014-01-01 00:00:00\tnul\\0\tb\t1\n").unwrap();
    let err = format!(
        "{:#}",
        Loader::new(db.client()).unwrap().load(&file).unwrap_err()
    );
    assert!(
        err.contains("invalid byte sequence for encoding \"UTF8\": 0x00"),
        "{err}"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM aliases"), 0);
}

#[test]
fn a_lost_session_says_so_and_the_reload_is_exact() {
    let db = TestDb::new("lost");
    let mut c = db.with_schema(&[]);
    let dir = tempfile::tempdir().unwrap();
    let files = write_rows(dir.path(), maps(&mut c), 1, 500);
    let mut session = db.client();
    let pid: i32 = session
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let mut loader = Loader::new(session).unwrap();
    c.execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let err = loader.load(&files[0]).unwrap_err().to_string();
    assert!(
        err.starts_with("lost the connection to the PostgreSQL server while loading"),
        "{err}"
    );
    assert!(
        err.contains("run the same `kmdb import` again: it resumes"),
        "{err}"
    );
    assert_eq!(load_all(&db, &files), 1500);
    assert_eq!(load_all(&db, &files), 0);
}

#[test]
fn users_and_keys_replace_their_rows() {
    let db = TestDb::new("users");
    let mut c = db.with_schema(&[]);
    let users = |rows: &str| load::replace_rows(&mut db.client(), Replace::Users, rows.as_bytes());
    // Into an empty table: one COPY.
    assert_eq!(
        users("1\talice\t\\N\n2\tbob\t\\N\n3\ttab\\there\t1\n").unwrap(),
        3
    );
    // Changed canonicals, a new user, and a name that moved to another id.
    assert_eq!(
        users("2\tbob\t1\n4\tcarol\t\\N\n5\talice\t\\N\n").unwrap(),
        3
    );
    let rows: Vec<(i64, String, Option<i64>)> = c
        .query("SELECT id, name, alias_of FROM users ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        [
            (2, "bob".into(), Some(1)),
            (3, "tab\there".into(), Some(1)),
            (4, "carol".into(), None),
            (5, "alice".into(), None),
        ]
    );
    let mut loader = Loader::new(db.client()).unwrap();
    loader
        .replace(
            Replace::Keys,
            Rows::Bytes(b"1\tsigned up\n2\tvisited\n"),
            "keys",
        )
        .unwrap();
    loader
        .replace(
            Replace::Keys,
            Rows::Bytes(b"2\tvisited\n3\tbilled\n"),
            "keys",
        )
        .unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM keys"), 3);
    assert_eq!(load::replace_rows(&mut c, Replace::Keys, b"").unwrap(), 0);
}

#[test]
fn the_catch_up_repoints_deletes_and_removes_uncommitted_rows() {
    let db = TestDb::new("catchup");
    let mut c = db.with_schema(&[]);
    let r1 = 1u64 << 40;
    let r2 = 2u64 << 40;
    c.batch_execute(&format!(
        "INSERT INTO keys VALUES (1, 'visit'), (2, 'plan'), (3, 'only ignored');
         INSERT INTO users VALUES (1, 'a', NULL), (2, 'b', NULL), (3, 'c', NULL), (4, 'x', NULL);
         INSERT INTO events VALUES ({r1}, '2014-01-01', 1, 1), ({}, '2014-01-01', 1, 2),
                                   ({}, '2014-01-02', 3, 3), ({r2}, '2014-01-03', 1, 1);
         INSERT INTO properties VALUES ({r1}, '2014-01-01', 2, 'v', 1, {r1}),
                                       ({}, '2014-01-01', 2, 'w', 2, NULL);
         INSERT INTO aliases VALUES ({}, '2014-01-01', 'c', 'x', 0);",
        r1 + 1,
        r1 + 2,
        r1 + 1,
        r1 + 3
    ))
    .unwrap();
    // User 2 merged into 1; user 3 ignored.
    catchup::repoint_users(&mut c, &[(2, 1)]).unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM events WHERE user_id = 1"), 3);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM properties WHERE user_id = 1"),
        2
    );
    assert_eq!(
        catchup::aliases_naming(&mut c, &["c".to_string()]).unwrap(),
        [("c".to_string(), "x".to_string())]
    );
    assert!(catchup::user_has_rows(&mut c, 3).unwrap());
    assert!(!catchup::user_has_rows(&mut c, 4).unwrap());
    catchup::delete_rows_of_users(&mut c, &[3]).unwrap();
    catchup::delete_identities(&mut c, &["c".to_string()]).unwrap();
    catchup::delete_unused_keys(&mut c).unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 3);
    assert_eq!(db.count("SELECT COUNT(*) FROM aliases"), 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM users"), 3);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM keys"),
        2,
        "'only ignored' is gone"
    );
    // An interrupted import of revision 2 added user 4 and key 3.
    c.batch_execute("INSERT INTO keys VALUES (3, 'new')")
        .unwrap();
    catchup::remove_revisions(&mut c, &[2], 3, 2).unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM events"), 2);
    assert_eq!(db.count("SELECT MAX(id) FROM users"), 2);
    assert_eq!(db.count("SELECT MAX(id)::bigint FROM keys"), 2);
}

#[test]
fn flush_empties_the_data_and_renews_the_token() {
    let db = TestDb::new("flush");
    let mut c = db.with_schema(&[]);
    let token = schema::token(&mut c).unwrap();
    c.batch_execute(
        "INSERT INTO users VALUES (1, 'a', NULL); INSERT INTO keys VALUES (1, 'k');
         INSERT INTO events VALUES (1, '2014-01-01', 1, 1);
         INSERT INTO ignored_users VALUES ('boss');",
    )
    .unwrap();
    let a = Accounting::default();
    let first = record(&mut c, &a, "1", 0);
    assert_eq!(import_count(&mut c), 1);
    let counts = schema::counts(&mut c).unwrap();
    assert_eq!(
        counts,
        [
            ("events", 1),
            ("properties", 0),
            ("aliases", 0),
            ("users", 1),
            ("keys", 1)
        ]
    );
    let new = schema::flush(&mut c).unwrap();
    assert_ne!(new, token);
    assert_eq!(schema::token(&mut c).unwrap(), new);
    assert!(schema::counts(&mut c).unwrap().iter().all(|(_, n)| *n == 0));
    assert_eq!(import_count(&mut c), 0);
    assert_eq!(schema::filters(&mut c).unwrap().ignored_users, ["boss"]);
    assert!(catchup::last_import(&mut c).unwrap().is_none());
    // Import numbers start over, as AUTO_INCREMENT after TRUNCATE on MySQL.
    let again = record(&mut c, &a, "1", 0);
    assert_eq!(again, first);
}

/// `kmdb ARGS` with `DATABASE_URL=url`: its exit code and stderr.
fn kmdb(url: &str, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kmdb"))
        .args(args)
        .env("DATABASE_URL", url)
        .current_dir(dir.path())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_commands_say_what_is_wrong_with_a_postgres_url_and_never_show_its_password() {
    let db = TestDb::new("cli_errors");
    let url = db.url();
    let (user, pass) = (url.user(), url.password().unwrap());
    let server = url.server();
    let at = |p: &str, d: &str| format!("postgres://{user}:{p}@{server}/{d}");
    let shown = |d: &str| format!("postgres://{user}:***@{server}/{d}");
    // (URL, exit code, message)
    let cases = [
        (
            format!("postgres://{user}:{pass}@127.0.0.1:1/db"),
            1,
            format!(
                "kmdb: error: cannot connect to PostgreSQL at 127.0.0.1:1 \
                 (postgres://{user}:***@127.0.0.1:1/db): error connecting to server: \
                 Connection refused (os error 111): is the server running, and are the host \
                 and port of DATABASE_URL right?\n"
            ),
        ),
        (
            at("wrong-pw-123", &db.name),
            1,
            format!(
                "kmdb: error: PostgreSQL at {server} refused the password of user \"{user}\": \
                 check the password in DATABASE_URL ({})\n",
                shown(&db.name)
            ),
        ),
        (
            format!("postgresql://{user}:{pass}@{server}/kmdb_no_such_db"),
            1,
            format!(
                "kmdb: error: database \"kmdb_no_such_db\" does not exist on PostgreSQL at \
                 {server}: create it (CREATE DATABASE \"kmdb_no_such_db\" OWNER \"{user}\") or \
                 fix DATABASE_URL (postgresql://{user}:***@{server}/kmdb_no_such_db)\n"
            ),
        ),
        (
            at(&pass, &db.name),
            1,
            "kmdb: error: the database has no kmdb schema: run `kmdb setup` first\n".to_owned(),
        ),
        (
            format!("oracle://{user}:{pass}@{server}/db"),
            2,
            format!(
                "kmdb: error: DATABASE_URL must look like \
                 mysql://user:password@host:port/database or \
                 postgres://user:password@host:port/database \
                 (got oracle://{user}:***@{server}/db)\n"
            ),
        ),
    ];
    for (url, want_code, want) in cases {
        for args in [&["status"][..], &["prune", "--before", "2014-01-01"]] {
            let (code, err) = kmdb(&url, args);
            assert_eq!(code, Some(want_code), "{args:?} {err}");
            assert_eq!(err, want, "{args:?}");
            assert!(
                !err.contains(&pass) && !err.contains("wrong-pw-123"),
                "{err}"
            );
        }
    }
}
