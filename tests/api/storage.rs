//! The store: migrations, and the SQLite settings that make the embedded default safe.

use sea_orm::{ConnectionTrait, Statement};
use shiplog::store::Store;

use crate::helpers::{backend, Backend, TestDatabase};

#[tokio::test]
async fn replicas_starting_together_apply_migrations_once() {
    let database = TestDatabase::create().await;
    let stores: Vec<Store> = futures_util::future::try_join_all((0..3).map(|_| Store::connect(&database.url)))
        .await
        .unwrap();

    let results = futures_util::future::join_all(stores.iter().map(Store::migrate)).await;

    for result in results {
        result.unwrap();
    }
    let conn = stores[0].conn();
    let row = conn
        .query_one(Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM seaql_migrations".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), migration_count());
    for store in stores {
        store.close().await;
    }
}

#[tokio::test]
async fn migrating_again_changes_nothing() {
    let database = TestDatabase::create().await;
    let store = Store::connect(&database.url).await.unwrap();

    store.migrate().await.unwrap();
    store.migrate().await.unwrap();

    store.ping().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn the_embedded_sqlite_database_runs_in_wal_mode_with_foreign_keys() {
    if backend() != Backend::Sqlite {
        // A property of the SQLite engine only; PostgreSQL has neither setting.
        return;
    }
    let database = TestDatabase::create().await;
    let store = Store::connect(&database.url).await.unwrap();
    let conn = store.conn();
    let pragma = |name: &str| Statement::from_string(conn.get_database_backend(), format!("PRAGMA {name}"));

    let journal = conn.query_one(pragma("journal_mode")).await.unwrap().unwrap();
    let foreign_keys = conn.query_one(pragma("foreign_keys")).await.unwrap().unwrap();

    assert_eq!(journal.try_get_by_index::<String>(0).unwrap(), "wal");
    assert_eq!(foreign_keys.try_get_by_index::<i32>(0).unwrap(), 1);
    store.close().await;
}

fn migration_count() -> i64 {
    use migration::MigratorTrait;
    migration::Migrator::migrations().len() as i64
}
