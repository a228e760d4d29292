//! The one rustls crypto provider: aws-lc-rs, which the AWS SDK already
//! uses. rustls picks a process-wide default by itself only when exactly one
//! provider is compiled in; with more than one it panics on the first TLS
//! handshake that relies on the default (the Redis client's, for
//! `rediss://`). Installing it explicitly keeps that from depending on what
//! the dependency graph happens to enable.

/// Installs aws-lc-rs as the process's default provider, unless one is
/// installed already. Cheap to call again; every TLS client calls it.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another thread that installed it is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}
