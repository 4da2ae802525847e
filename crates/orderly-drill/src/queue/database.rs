//! The drill's own PostgreSQL database, where the replicas write one effect row per message.

use sqlx::{Connection as _, PgConnection, Row as _};

use crate::error::{Error, redact};

/// The effects table every replica writes: one row per message id, `handled` counting the
/// handlings (a duplicate is visible as `handled > 1`). `attempt` is for consumers that record
/// the delivery attempt; it may stay at its default.
const EFFECTS: &str = "CREATE TABLE effects (message_id text PRIMARY KEY, value bigint NOT NULL, \
     handled int NOT NULL, attempt int NOT NULL DEFAULT 1)";

/// A database created for one drill.
#[derive(Debug)]
pub(crate) struct Database {
    admin_url: String,
    pub(crate) name: String,
    /// `(message id text, handled bigint)` rows, one per handled message.
    effects_query: String,
}

/// One effect row.
#[derive(Debug)]
pub(crate) struct Effect {
    pub(crate) message_id: String,
    pub(crate) handled: i32,
}

impl Database {
    /// Creates database `name` through `admin_url`, and the effects table if
    /// `create_effects_table`; its effects are what `effects_query` reads.
    pub(crate) async fn create(
        admin_url: &str,
        name: &str,
        effects_query: &str,
        create_effects_table: bool,
    ) -> Result<Self, Error> {
        let database = Self {
            admin_url: admin_url.to_owned(),
            name: name.to_owned(),
            effects_query: effects_query.to_owned(),
        };
        let mut admin = database.admin().await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .map_err(|e| Error::database(format!("create database {name}"), e))?;
        let _ = admin.close().await;
        if !create_effects_table {
            return Ok(database);
        }
        let mut connection = database.connect().await?;
        sqlx::query(EFFECTS)
            .execute(&mut connection)
            .await
            .map_err(|e| Error::database(format!("create the effects table in {name}"), e))?;
        let _ = connection.close().await;
        Ok(database)
    }

    async fn admin(&self) -> Result<PgConnection, Error> {
        PgConnection::connect(&self.admin_url)
            .await
            .map_err(|e| Error::database(format!("connect to {}", redact(&self.admin_url)), e))
    }

    /// The URL the replicas get as `DATABASE_URL`: the admin URL with this database.
    pub(crate) fn url(&self) -> String {
        let (base, query) = match self.admin_url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (self.admin_url.as_str(), None),
        };
        let base = base
            .strip_suffix('/')
            .unwrap_or(base)
            .rsplit_once('/')
            .filter(|(scheme, _)| !scheme.ends_with('/'))
            .map_or(base, |(base, _)| base);
        match query {
            Some(query) => format!("{base}/{}?{query}", self.name),
            None => format!("{base}/{}", self.name),
        }
    }

    async fn connect(&self) -> Result<PgConnection, Error> {
        PgConnection::connect(&self.url())
            .await
            .map_err(|e| Error::database(format!("connect to {}", redact(&self.url())), e))
    }

    /// Rows in the effects table.
    pub(crate) async fn count(&self, connection: &mut PgConnection) -> Result<i64, Error> {
        let sql = format!("SELECT count(*) FROM ({}) AS effects", self.effects_query);
        Ok(sqlx::query(&sql)
            .fetch_one(connection)
            .await
            .map_err(|e| Error::database(format!("count the effects in {}", self.name), e))?
            .get(0))
    }

    /// A connection for [`count`](Self::count).
    pub(crate) async fn watch(&self) -> Result<PgConnection, Error> {
        self.connect().await
    }

    /// Every effect row.
    pub(crate) async fn effects(&self) -> Result<Vec<Effect>, Error> {
        let mut connection = self.connect().await?;
        let rows = sqlx::query(&self.effects_query)
            .fetch_all(&mut connection)
            .await
            .map_err(|e| Error::database(format!("read the effects in {}", self.name), e))?;
        let _ = connection.close().await;
        rows.iter()
            .map(|row| {
                let read = |e| Error::database(format!("read the effects in {}", self.name), e);
                let handled: i64 = row.try_get(1).map_err(read)?;
                Ok(Effect {
                    message_id: row.try_get(0).map_err(read)?,
                    handled: i32::try_from(handled).unwrap_or(i32::MAX),
                })
            })
            .collect()
    }

    /// Drops the database, closing whatever connection is left.
    pub(crate) async fn drop_database(&self) -> Result<(), Error> {
        let mut admin = self.admin().await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await
        .map_err(|e| Error::database(format!("drop database {}", self.name), e))?;
        let _ = admin.close().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Database;

    fn url(admin: &str) -> String {
        Database {
            admin_url: admin.into(),
            name: "drill".into(),
            effects_query: String::new(),
        }
        .url()
    }

    #[test]
    fn the_replicas_url_names_the_drills_database() {
        assert_eq!(
            url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/drill"
        );
        assert_eq!(
            url("postgres://postgres@127.0.0.1:5432"),
            "postgres://postgres@127.0.0.1:5432/drill"
        );
        assert_eq!(
            url("postgres://u:p@h/db?sslmode=disable"),
            "postgres://u:p@h/drill?sslmode=disable"
        );
    }
}
