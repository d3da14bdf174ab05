//! Presets: named sets of per-job plot options (pen heights, speeds, acceleration, model,
//! reordering…) kept in the store (schema 5, `presets`), so that every browser of the web UI, and
//! every daemon sharing a PostgreSQL queue, offers the same ones.
//!
//! The store keeps a preset's options as the JSON object a job keeps in `metadata.options`; it
//! checks only the name. The API checks the values (by the config file's range rules) before it
//! saves them, exactly as it checks an upload's options.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{PgStore, StoreError};
use crate::timestamp;

/// Longest preset name, in characters.
pub const MAX_PRESET_NAME_LEN: usize = 64;

/// One saved preset.
#[derive(Clone, PartialEq, Debug)]
pub struct Preset {
    /// Its name (unique).
    pub name: String,
    /// The options, axicli's names (a JSON object).
    pub options: Value,
    /// When it was first saved (RFC 3339, UTC).
    pub created_at: String,
    /// When it was last saved.
    pub updated_at: String,
}

/// Refuses an empty, overlong or unprintable preset name (it is shown in a menu and sent in a
/// URL path).
///
/// # Errors
/// [`StoreError::Invalid`] saying what is wrong.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() {
        return Err(StoreError::Invalid("a preset needs a name".into()));
    }
    if name.trim() != name {
        return Err(StoreError::Invalid(format!(
            "the preset name `{name}` starts or ends with a space"
        )));
    }
    if name.chars().count() > MAX_PRESET_NAME_LEN {
        return Err(StoreError::Invalid(format!(
            "a preset name has at most {MAX_PRESET_NAME_LEN} characters"
        )));
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(StoreError::Invalid(format!(
            "the preset name {name:?} holds a control character or `/`"
        )));
    }
    Ok(())
}

fn parse_options(name: &str, text: &str) -> Result<Value, StoreError> {
    match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(StoreError::Corrupt(format!(
            "preset `{name}` has options that are not a JSON object"
        ))),
    }
}

/// Every preset, by name (SQLite).
pub(super) fn list(c: &Connection) -> Result<Vec<Preset>, StoreError> {
    let mut stmt =
        c.prepare("SELECT name, options_json, created_at, updated_at FROM presets ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (name, options, created_at, updated_at) = row?;
        let options = parse_options(&name, &options)?;
        out.push(Preset {
            name,
            options,
            created_at,
            updated_at,
        });
    }
    Ok(out)
}

/// Saves a preset, replacing one of the same name (SQLite).
pub(super) fn save(c: &Connection, name: &str, options: &Value) -> Result<Preset, StoreError> {
    check_name(name)?;
    let now = timestamp::now();
    c.execute(
        "INSERT INTO presets (name, options_json, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (name) DO UPDATE SET options_json = excluded.options_json,
                                          updated_at = excluded.updated_at",
        params![name, options.to_string(), now],
    )?;
    let created_at: String = c.query_row(
        "SELECT created_at FROM presets WHERE name = ?1",
        params![name],
        |r| r.get(0),
    )?;
    Ok(Preset {
        name: name.to_owned(),
        options: options.clone(),
        created_at,
        updated_at: now,
    })
}

/// Deletes a preset; returns it as it was, `None` when there is none of that name (SQLite).
pub(super) fn delete(c: &Connection, name: &str) -> Result<Option<Preset>, StoreError> {
    let row = c
        .query_row(
            "DELETE FROM presets WHERE name = ?1 RETURNING name, options_json, created_at, updated_at",
            params![name],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .optional()?;
    row.map(|(name, options, created_at, updated_at)| {
        Ok(Preset {
            options: parse_options(&name, &options)?,
            name,
            created_at,
            updated_at,
        })
    })
    .transpose()
}

fn pg_row(r: &tokio_postgres::Row) -> Result<Preset, StoreError> {
    let name: String = r.try_get(0)?;
    let options: String = r.try_get(1)?;
    Ok(Preset {
        options: parse_options(&name, &options)?,
        name,
        created_at: r.try_get(2)?,
        updated_at: r.try_get(3)?,
    })
}

impl PgStore {
    /// Every preset, by name (PostgreSQL).
    pub async fn presets(&self) -> Result<Vec<Preset>, StoreError> {
        self.client()
            .await?
            .query(
                "SELECT name, options_json, created_at, updated_at FROM presets ORDER BY name",
                &[],
            )
            .await?
            .iter()
            .map(pg_row)
            .collect()
    }

    /// Saves a preset, replacing one of the same name (PostgreSQL).
    pub async fn save_preset(&self, name: &str, options: &Value) -> Result<Preset, StoreError> {
        check_name(name)?;
        let now = timestamp::now();
        let row = self
            .client()
            .await?
            .query_one(
                "INSERT INTO presets (name, options_json, created_at, updated_at)
                 VALUES ($1, $2, $3, $3)
                 ON CONFLICT (name) DO UPDATE SET options_json = excluded.options_json,
                                                  updated_at = excluded.updated_at
                 RETURNING name, options_json, created_at, updated_at",
                &[&name, &options.to_string(), &now],
            )
            .await?;
        pg_row(&row)
    }

    /// Deletes a preset; `None` when there is none of that name (PostgreSQL).
    pub async fn delete_preset(&self, name: &str) -> Result<Option<Preset>, StoreError> {
        self.client()
            .await?
            .query_opt(
                "DELETE FROM presets WHERE name = $1
                 RETURNING name, options_json, created_at, updated_at",
                &[&name],
            )
            .await?
            .as_ref()
            .map(pg_row)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("fine liner, 0.3").is_ok());
        for bad in ["", "  ", " lead", "a/b", "tab\there", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?} was taken");
        }
    }
}
