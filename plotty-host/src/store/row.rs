//! Reading a job row and a layer row, once for both backends: the SQLite store
//! ([`super::jobs`]) and the PostgreSQL store ([`super::postgres`]) select the same columns
//! ([`super::jobs::COLUMNS`]) and map them here through [`Columns`], so a new column is read in
//! one place.
//!
//! Values are read as types both drivers accept for the column: PostgreSQL is strict (an
//! `INTEGER` column is an `i32`, a `BIGINT` an `i64`; booleans are stored as integers), SQLite
//! converts, so the PostgreSQL schema's types decide.

use plotty_motion::kinematics::{MotorSteps, Point};

use super::StoreError;
use super::jobs::{JobRecord, Layer, Lease, MachinePosition, ResumePoint};
use crate::job::JobId;

/// A value both drivers can read from a column.
pub(crate) trait Column:
    rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>
{
}

impl<T> Column for T where T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a> {}

/// A result row of either driver.
pub(crate) trait Columns {
    /// Column `i` as a `T`.
    fn col<T: Column>(&self, i: usize) -> Result<T, StoreError>;
}

impl Columns for rusqlite::Row<'_> {
    fn col<T: Column>(&self, i: usize) -> Result<T, StoreError> {
        Ok(self.get(i)?)
    }
}

impl Columns for tokio_postgres::Row {
    fn col<T: Column>(&self, i: usize) -> Result<T, StoreError> {
        Ok(self.try_get(i)?)
    }
}

/// A row of [`super::jobs::COLUMNS`].
pub(crate) fn job<R: Columns>(r: &R) -> Result<JobRecord, StoreError> {
    let id: String = r.col(0)?;
    let state: String = r.col(3)?;
    let opt_u32 = |i: usize| -> Result<Option<u32>, StoreError> {
        r.col::<Option<i64>>(i)?.map(u32_of).transpose()
    };
    let opt_i32 = |i: usize| -> Result<Option<i32>, StoreError> {
        r.col::<Option<i64>>(i)?.map(i32_of).transpose()
    };
    let (m1, m2) = (opt_i32(14)?, opt_i32(15)?);
    let x: Option<f64> = r.col(16)?;
    let y: Option<f64> = r.col(17)?;
    let resume_at: Option<String> = r.col(18)?;
    let resume_pen_down: Option<i32> = r.col(24)?;
    let resume = match (opt_u32(11)?, opt_u32(12)?, opt_u32(13)?) {
        (Some(layer), Some(stroke), Some(vertex)) => Some(ResumePoint {
            layer,
            stroke,
            vertex,
            // Rows from schema 1 have no pen state: a motion to a vertex past the first draws.
            pen_down: resume_pen_down.map_or(vertex != 0 && vertex != u32::MAX, |p| p != 0),
            position: match (m1, m2, x, y) {
                (Some(m1), Some(m2), Some(x), Some(y)) => Some(MachinePosition {
                    steps: MotorSteps::new(m1, m2),
                    point: Point::new(x, y),
                }),
                _ => None,
            },
            recorded_at: resume_at.unwrap_or_default(),
            streaming: r.col::<i32>(34)? != 0,
        }),
        _ => None,
    };
    Ok(JobRecord {
        id: JobId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        seq: r.col(1)?,
        name: r.col(2)?,
        state: state
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("job {id} has state `{state}`")))?,
        priority: r.col(4)?,
        source_path: r.col(5)?,
        created_at: r.col(6)?,
        updated_at: r.col(7)?,
        state_reason: r.col(8)?,
        error: r.col(9)?,
        retry_of: r.col(10)?,
        resume,
        estimate_pre_s: r.col(19)?,
        estimate_post_s: r.col(20)?,
        started_at: r.col(21)?,
        finished_at: r.col(22)?,
        metadata: super::jobs::parse_json(&r.col::<String>(23)?),
        simulated: r.col::<i32>(25)? != 0,
        lease: lease_of(r.col(26)?, r.col(27)?),
        daemon: r.col(28)?,
        submitted_by: r.col(29)?,
        device: r.col(30)?,
        requirements: super::jobs::requirements_of(
            r.col(31)?,
            r.col::<Option<i32>>(32)?.map(i64::from),
            r.col(33)?,
        ),
    })
}

/// A row of `layer_index, name, layer_number, color, pause_before, speed_pct, height_pct,
/// delay_after_ms, strokes, points, pen_down_mm, estimate_s`.
pub(crate) fn layer<R: Columns>(r: &R) -> Result<Layer, StoreError> {
    Ok(Layer {
        index: u32_of(r.col(0)?)?,
        name: r.col(1)?,
        number: r.col(2)?,
        color: r.col(3)?,
        pause_before: r.col::<i32>(4)? != 0,
        speed_pct: r.col(5)?,
        height_pct: r.col(6)?,
        delay_after_ms: r.col(7)?,
        strokes: r.col(8)?,
        points: r.col(9)?,
        pen_down_mm: r.col(10)?,
        estimate_s: r.col(11)?,
    })
}

/// The lease of a row's `lease_owner` and `lease_expires_ms` (both or none).
pub(crate) fn lease_of(owner: Option<String>, expires_ms: Option<i64>) -> Option<Lease> {
    match (owner, expires_ms) {
        (Some(owner), Some(expires_ms)) => Some(Lease { owner, expires_ms }),
        _ => None,
    }
}

/// A stored number that must fit a `u32` (layer, stroke and vertex indices).
pub(crate) fn u32_of(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} is out of range")))
}

/// A stored number that must fit an `i32` (motor steps).
pub(crate) fn i32_of(v: i64) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} is out of range")))
}
