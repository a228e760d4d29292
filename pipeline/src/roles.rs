//! The application's database role on Postgres: the services connect as a
//! role that may read and write rows but not change the schema, while the
//! owner (RDS's master user) runs the migrations.
//!
//! `image-service migrate` calls [`grant_app_role`] after the migrations,
//! so the grants always cover the tables the migrations just made, and
//! default privileges cover tables a later migration makes. The role's
//! password is set as a SCRAM-SHA-256 verifier computed here, so the
//! statement that reaches the server (and RDS's `log_statement = ddl` log)
//! never holds the password itself.

use aws_lc_rs::{digest, hmac, pbkdf2};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement};

/// Postgres's default iteration count for SCRAM-SHA-256 verifiers.
const SCRAM_ITERATIONS: u32 = 4096;

/// Creates `role` if it does not exist, sets its password, and grants it
/// row access to every table and sequence in `public`, now and later.
/// Creating in `public` is revoked from everyone but the owner, so the
/// application role is refused DDL. Postgres only; idempotent.
pub async fn grant_app_role(db: &DatabaseConnection, role: &str, password: &str) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Err(DbErr::Custom("an application role needs Postgres".into()));
    }
    if password.is_empty() {
        return Err(DbErr::Custom(format!("no password for the application role {role}")));
    }
    let verifier = scram_verifier(password);
    // Each statement is written by the server's format(), which quotes
    // identifiers (%I) and literals (%L); one that returns no row is not
    // needed (the role exists already).
    let statements = [
        "SELECT format('CREATE ROLE %I LOGIN', $1) WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)",
        "SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD %L', $1, $2)",
        "SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), $1)",
        "SELECT format('GRANT USAGE ON SCHEMA public TO %I', $1)",
        "SELECT format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', $1)",
        "SELECT format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO %I', $1)",
        "SELECT format('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', $1)",
        "SELECT format('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %I', $1)",
    ];
    for template in statements {
        let args = if template.contains("$2") { vec![role.into(), verifier.clone().into()] } else { vec![role.into()] };
        let written =
            db.query_one_raw(Statement::from_sql_and_values(DatabaseBackend::Postgres, template, args)).await?;
        if let Some(row) = written {
            let sql: String = row.try_get_by_index(0)?;
            db.execute_unprepared(&sql).await?;
        }
    }
    // Postgres 15 and later already keep CREATE on public to its owner; older
    // servers granted it to PUBLIC.
    db.execute_unprepared("REVOKE CREATE ON SCHEMA public FROM PUBLIC").await?;
    Ok(())
}

/// The SCRAM-SHA-256 verifier Postgres stores for `password` (RFC 5802 and
/// RFC 7677, in Postgres's `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`
/// form), with a fresh random salt. Postgres takes a password in this form
/// as already hashed.
pub fn scram_verifier(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    scram_verifier_with_salt(password, &salt, SCRAM_ITERATIONS)
}

fn scram_verifier_with_salt(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations).expect("iterations > 0"),
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key.as_ref()),
        STANDARD.encode(server_key.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example exchange: password "pencil", salt
    /// "W22ZaJ0SNY7soEsUEjb6gQ==", 4096 iterations. The verifier's ServerKey
    /// must sign the exchange's AuthMessage into the RFC's ServerSignature.
    #[test]
    fn the_verifier_matches_rfc_7677() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("base64");
        let verifier = scram_verifier_with_salt("pencil", &salt, 4096);
        let (head, keys) = verifier.rsplit_once('$').expect("keys");
        assert_eq!(head, "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==");
        let server_key = STANDARD.decode(keys.split_once(':').expect("server key").1).expect("base64");
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
                            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &server_key), auth_message.as_bytes());
        assert_eq!(STANDARD.encode(signature.as_ref()), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn every_verifier_has_its_own_salt() {
        assert_ne!(scram_verifier("same"), scram_verifier("same"));
    }
}
