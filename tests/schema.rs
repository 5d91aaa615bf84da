//! The two migration trees stay twins: after migrating, SQLite and PostgreSQL have the same
//! tables, the same columns with the same nullability, and the same indexes (their columns, in
//! order, whether unique, whether partial). Types are not compared: the two type systems differ
//! on purpose (`text` for a uuid on SQLite, `integer` for a boolean). A column or an index added
//! to one tree only fails here.

mod common;

use common::{fresh_database, Backend};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use tokenmeter::server::db::Db;

/// A schema as both databases can say it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Schema {
    /// Table → column → nullable.
    columns: BTreeMap<String, BTreeMap<String, bool>>,
    indexes: BTreeSet<Index>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Index {
    table: String,
    columns: Vec<String>,
    unique: bool,
    partial: bool,
}

/// Tables of the database's own or of sqlx, not of the app.
fn is_ours(table: &str) -> bool {
    table != "_sqlx_migrations" && !table.starts_with("sqlite_")
}

async fn migrated(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    let (url, dir) = fresh_database(backend).await;
    let db = Db::connect(&url, 2).await.expect("connect");
    db.migrate().await.expect("migrate");
    (url, dir)
}

async fn sqlite_schema() -> Schema {
    let (url, _dir) = migrated(Backend::Sqlite).await;
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mut schema = Schema::default();
    let tables: Vec<String> =
        sqlx::query_scalar("select name from sqlite_master where type = 'table' order by name")
            .fetch_all(&pool)
            .await
            .unwrap();
    for table in tables.into_iter().filter(|t| is_ours(t)) {
        let columns = sqlx::query("select name, \"notnull\", pk from pragma_table_info(?)")
            .bind(&table)
            .fetch_all(&pool)
            .await
            .unwrap();
        let mut key: Vec<(i64, String)> = Vec::new();
        let mut by_name = BTreeMap::new();
        for c in &columns {
            let name: String = c.get("name");
            let pk: i64 = c.get("pk");
            // A primary key column is never null (PostgreSQL's rule; SQLite's is laxer for
            // historical reasons, but these columns are never written null).
            by_name.insert(name.clone(), c.get::<i64, _>("notnull") == 0 && pk == 0);
            if pk > 0 {
                key.push((pk, name));
            }
        }
        schema.columns.insert(table.clone(), by_name);
        let indexes =
            sqlx::query("select name, \"unique\", origin, partial from pragma_index_list(?)")
                .bind(&table)
                .fetch_all(&pool)
                .await
                .unwrap();
        let mut key_indexed = false;
        for i in &indexes {
            let name: String = i.get("name");
            let columns: Vec<String> = sqlx::query_scalar(
                "select coalesce(name, 'expression') from pragma_index_info(?) order by seqno",
            )
            .bind(&name)
            .fetch_all(&pool)
            .await
            .unwrap();
            key_indexed |= i.get::<String, _>("origin") == "pk";
            schema.indexes.insert(Index {
                table: table.clone(),
                columns,
                unique: i.get::<i64, _>("unique") == 1,
                partial: i.get::<i64, _>("partial") == 1,
            });
        }
        // An `integer primary key` is the rowid itself: no index of its own, but a unique one
        // all the same (PostgreSQL's primary key index).
        if !key.is_empty() && !key_indexed {
            key.sort();
            schema.indexes.insert(Index {
                table: table.clone(),
                columns: key.into_iter().map(|(_, name)| name).collect(),
                unique: true,
                partial: false,
            });
        }
    }
    schema
}

async fn postgres_schema() -> Schema {
    let (url, _) = migrated(Backend::Postgres).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut schema = Schema::default();
    let columns = sqlx::query(
        "select c.table_name::text as table_name, c.column_name::text as column_name,
                c.is_nullable = 'YES' as nullable
         from information_schema.columns c
         join information_schema.tables t
             on t.table_schema = c.table_schema and t.table_name = c.table_name
         where c.table_schema = current_schema() and t.table_type = 'BASE TABLE'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for c in &columns {
        let table: String = c.get("table_name");
        if is_ours(&table) {
            schema
                .columns
                .entry(table)
                .or_default()
                .insert(c.get("column_name"), c.get("nullable"));
        }
    }
    let indexes = sqlx::query(
        "select t.relname::text as table_name, i.indisunique as is_unique,
                i.indpred is not null as partial,
                array(select coalesce(a.attname::text, 'expression')
                      from unnest(i.indkey::int2[]) with ordinality as k(attnum, n)
                      left join pg_attribute a
                          on a.attrelid = t.oid and a.attnum = k.attnum and k.attnum > 0
                      order by k.n) as columns
         from pg_index i
         join pg_class t on t.oid = i.indrelid
         join pg_namespace s on s.oid = t.relnamespace
         where s.nspname = current_schema()",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for i in &indexes {
        let table: String = i.get("table_name");
        if is_ours(&table) {
            schema.indexes.insert(Index {
                table,
                columns: i.get("columns"),
                unique: i.get("is_unique"),
                partial: i.get("partial"),
            });
        }
    }
    schema
}

#[tokio::test]
async fn sqlite_and_postgres_schemas_are_twins() {
    let (sqlite, postgres) = tokio::join!(sqlite_schema(), postgres_schema());
    assert!(
        sqlite.columns.len() >= 10,
        "too few tables read: {:?}",
        sqlite.columns.keys()
    );
    let tables = |s: &Schema| s.columns.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(
        tables(&sqlite),
        tables(&postgres),
        "tables (SQLite, PostgreSQL)"
    );
    for (table, columns) in &sqlite.columns {
        assert_eq!(
            Some(columns),
            postgres.columns.get(table),
            "columns of {table} and whether each may be null (SQLite, PostgreSQL)"
        );
    }
    let only_sqlite: Vec<_> = sqlite.indexes.difference(&postgres.indexes).collect();
    let only_postgres: Vec<_> = postgres.indexes.difference(&sqlite.indexes).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "indexes on SQLite only: {only_sqlite:#?}\nindexes on PostgreSQL only: {only_postgres:#?}"
    );
}
