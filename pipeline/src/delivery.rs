//! Delivery URLs: the addresses a web page puts in `<img src>`.
//!
//! A variant's delivery URL is its object key under `DELIVERY_BASE_URL`
//! (`https://cdn.example/variants/{image}/{token}/thumb-1a2b3c4d.webp`), so
//! a CDN maps it onto the bucket unchanged and the embedded API serves the
//! same path. The key holds the preset's version and the format, and the
//! engine is deterministic, so the bytes behind one URL never change: it is
//! cached for a year and never revalidated.
//!
//! Each tenant's variants are stored under the prefix of its [`Mode`]:
//! - `variants/` (**public**): the URL alone is enough. The `{token}` segment
//!   is a random UUIDv4 of the image (122 random bits), so an address cannot
//!   be guessed from another (image ids are time-ordered UUIDv7s).
//! - `private/` (**signed**): the URL must carry a CloudFront canned-policy
//!   signature: `Expires`, `Signature` and `Key-Pair-Id`, ECDSA P-256 over
//!   SHA-256. CloudFront checks it against its key group; the embedded API
//!   checks it against the same public keys ([`Verifier`]). A retired key
//!   stays in the key group (or `DELIVERY_VERIFY_KEYS`) until the URLs it
//!   signed have expired, so rotating never breaks a URL handed out.
//!
//! Keeping the modes apart by prefix is what makes signed mode hold on a
//! CDN: a path learnt from a signed URL gives nothing under `variants/`.

use std::collections::HashMap;
use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use entities::{images, tenants};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::keys;
use crate::links::Links;

/// How a tenant's variants are delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The URL alone is enough.
    #[default]
    Public,
    /// The URL carries an expiry and a signature.
    Signed,
}

impl Mode {
    /// As stored on a tenant.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Signed => "signed",
        }
    }

    /// A stored value; `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "public" => Some(Self::Public),
            "signed" => Some(Self::Signed),
            _ => None,
        }
    }

    /// The key prefix this mode's variants are stored under.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Public => keys::VARIANTS_PREFIX,
            Self::Signed => keys::PRIVATE_PREFIX,
        }
    }

    /// The mode of an object key: by its prefix.
    pub fn of_key(key: &str) -> Option<Self> {
        if key.starts_with(keys::VARIANTS_PREFIX) {
            Some(Self::Public)
        } else if key.starts_with(keys::PRIVATE_PREFIX) {
            Some(Self::Signed)
        } else {
            None
        }
    }
}

/// Where one image's variants go: its tenant's prefix and its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The tenant's mode, which picks the prefix.
    pub mode: Mode,
    /// The image's random token.
    pub token: String,
}

impl Placement {
    /// The key of one variant.
    pub fn key(&self, image_id: Uuid, preset: &str, preset_version: &str, extension: &str) -> String {
        format!("{}{image_id}/{}/{preset}-{preset_version}.{extension}", self.mode.prefix(), self.token)
    }
}

/// A fresh delivery token: a random UUIDv4 (122 random bits), as 32 hex digits.
pub fn new_token() -> String {
    Uuid::new_v4().simple().to_string()
}

/// The placement of `image_id`'s variants: its tenant's mode (or
/// `default_mode`) and the image's token. Images get theirs when they are
/// recorded; one made before tokens existed gets it here, on its next job,
/// and concurrent callers agree on one.
///
/// # Errors
/// Database errors; `RecordNotFound` when the image is gone.
pub async fn placement(
    db: &impl ConnectionTrait,
    image_id: Uuid,
    tenant_id: Uuid,
    default_mode: Mode,
) -> Result<Placement, DbErr> {
    let mode = tenant_mode(db, tenant_id).await?.unwrap_or(default_mode);
    let gone = || DbErr::RecordNotFound(format!("image {image_id}"));
    if let Some(token) = delivery_token(db, image_id).await?.ok_or_else(gone)? {
        return Ok(Placement { mode, token });
    }
    // Made before tokens existed: give it one, unless a concurrent job just did.
    images::Entity::update_many()
        .col_expr(images::Column::DeliveryToken, Expr::value(new_token()))
        .filter(images::Column::Id.eq(image_id))
        .filter(images::Column::DeliveryToken.is_null())
        .exec(db)
        .await?;
    let token = delivery_token(db, image_id).await?.flatten().ok_or_else(gone)?;
    Ok(Placement { mode, token })
}

/// The image's token: `None` for no such image, `Some(None)` for an image without one.
async fn delivery_token(db: &impl ConnectionTrait, image_id: Uuid) -> Result<Option<Option<String>>, DbErr> {
    images::Entity::find_by_id(image_id).select_only().column(images::Column::DeliveryToken).into_tuple().one(db).await
}

/// A tenant's own delivery mode, if it set one.
async fn tenant_mode(db: &impl ConnectionTrait, tenant_id: Uuid) -> Result<Option<Mode>, DbErr> {
    let stored: Option<Option<String>> = tenants::Entity::find_by_id(tenant_id)
        .select_only()
        .column(tenants::Column::DeliveryMode)
        .into_tuple()
        .one(db)
        .await?;
    Ok(stored.flatten().as_deref().and_then(Mode::parse))
}

/// Why a signed delivery URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// No `Expires`, `Signature` or `Key-Pair-Id`.
    #[error("the URL carries no signature")]
    Unsigned,
    /// Signed, but past its `Expires`.
    #[error("the URL has expired")]
    Expired,
    /// Signed by a key that is not (or no longer) honoured.
    #[error("the URL's key is not known")]
    UnknownKey,
    /// The signature is not that of this URL.
    #[error("the signature does not match the URL")]
    BadSignature,
}

impl Refusal {
    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsigned => "signature-required",
            Self::Expired => "url-expired",
            Self::UnknownKey | Self::BadSignature => "signature-invalid",
        }
    }
}

/// Why the delivery keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// `DELIVERY_SIGNING_KEY` (or the kept key file) is not a usable key.
    #[error("DELIVERY_SIGNING_KEY is not a PKCS#8 PEM of an ECDSA P-256 key")]
    SigningKey,
    /// An entry of `DELIVERY_VERIFY_KEYS` is not a public key.
    #[error("DELIVERY_VERIFY_KEYS entry {0:?} is not ID=BASE64-DER of an ECDSA P-256 public key")]
    VerifyKey(String),
    /// The embedded key file could not be read or written.
    #[error("could not keep the generated signing key at {0}: {1}")]
    Io(String, std::io::Error),
}

/// Signs delivery URLs.
pub struct Signer {
    key_id: String,
    key: EcdsaKeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl Signer {
    /// From a PKCS#8 PEM (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
    ///
    /// # Errors
    /// A PEM that is not an ECDSA P-256 private key.
    pub fn from_pem(key_id: &str, pem: &str) -> Result<Self, KeyError> {
        let der = pem_body(pem).ok_or(KeyError::SigningKey)?;
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &der)
            .map_err(|_| KeyError::SigningKey)?;
        Ok(Self { key_id: key_id.to_owned(), key })
    }

    /// The signing key kept at `path`, made there (owner-only) if absent:
    /// the embedded default, shared by every process on one `DATA_DIR`.
    ///
    /// # Errors
    /// The file cannot be read or written, or holds no valid key.
    pub fn kept_at(key_id: &str, path: &Path) -> Result<Self, KeyError> {
        let io = |e| KeyError::Io(path.display().to_string(), e);
        if !path.exists() {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .map_err(|_| KeyError::SigningKey)?;
            let pem = to_pem("PRIVATE KEY", pkcs8.as_ref());
            write_private(path, pem.as_bytes()).map_err(io)?;
        }
        Self::from_pem(key_id, &std::fs::read_to_string(path).map_err(io)?)
    }

    /// The public half, as the base64 of its DER (what `DELIVERY_VERIFY_KEYS`
    /// and a CloudFront public key take, the latter inside PEM armour).
    pub fn public_key_base64(&self) -> String {
        let der = self.key.public_key().as_der().map(|d| d.as_ref().to_vec()).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(der)
    }

    /// `resource` with CloudFront's canned-policy query appended.
    pub fn sign(&self, resource: &str, expires: i64) -> String {
        let policy = canned_policy(resource, expires);
        let signature = self.key.sign(&SystemRandom::new(), policy.as_bytes()).map(|s| cloudfront_base64(s.as_ref()));
        // Signing with a valid key over a short message does not fail.
        let signature = signature.unwrap_or_default();
        let separator = if resource.contains('?') { '&' } else { '?' };
        format!("{resource}{separator}Expires={expires}&Signature={signature}&Key-Pair-Id={}", self.key_id)
    }
}

/// Checks signed delivery URLs against every public key still honoured.
#[derive(Debug, Default)]
pub struct Verifier {
    /// Key id → DER (SubjectPublicKeyInfo).
    keys: HashMap<String, Vec<u8>>,
}

impl Verifier {
    /// The signer's own key, and the retired ones in `extra`
    /// (`ID=BASE64-DER,…`).
    ///
    /// # Errors
    /// An entry of `extra` that is not an ECDSA P-256 public key.
    pub fn new(signer: Option<&Signer>, extra: &[String]) -> Result<Self, KeyError> {
        let mut keys = HashMap::new();
        for entry in extra.iter().filter(|e| !e.trim().is_empty()) {
            let bad = || KeyError::VerifyKey(entry.clone());
            let (id, der) = entry.trim().split_once('=').ok_or_else(bad)?;
            let der = base64::engine::general_purpose::STANDARD.decode(der).map_err(|_| bad())?;
            if signature::ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &der).is_err() {
                return Err(bad());
            }
            keys.insert(id.to_owned(), der);
        }
        if let Some(signer) = signer {
            let der = signer.key.public_key().as_der().map_err(|_| KeyError::SigningKey)?;
            keys.insert(signer.key_id.clone(), der.as_ref().to_vec());
        }
        Ok(Self { keys })
    }

    /// Whether the query of a request for `resource` signs it, at `now`.
    ///
    /// # Errors
    /// The [`Refusal`].
    pub fn check(&self, resource: &str, query: Option<&str>, now: DateTime<Utc>) -> Result<(), Refusal> {
        let params: HashMap<&str, &str> =
            query.unwrap_or_default().split('&').filter_map(|pair| pair.split_once('=')).collect();
        let (Some(expires), Some(sig), Some(key_id)) =
            (params.get("Expires"), params.get("Signature"), params.get("Key-Pair-Id"))
        else {
            return Err(Refusal::Unsigned);
        };
        let expires: i64 = expires.parse().map_err(|_| Refusal::BadSignature)?;
        let der = self.keys.get(*key_id).ok_or(Refusal::UnknownKey)?;
        let signature = from_cloudfront_base64(sig).ok_or(Refusal::BadSignature)?;
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, der)
            .verify(canned_policy(resource, expires).as_bytes(), &signature)
            .map_err(|_| Refusal::BadSignature)?;
        // Checked after the signature, so an attacker learns nothing from
        // changing the expiry.
        if expires <= now.timestamp() {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

/// Builds every delivery URL.
#[derive(Debug)]
pub struct Delivery {
    /// No trailing slash; empty for URLs relative to the API.
    base: String,
    /// The mode of tenants that chose none.
    pub default_mode: Mode,
    signer: Option<Signer>,
    verifier: Verifier,
    /// How long a signed URL lives, at least.
    ttl_secs: i64,
}

impl Delivery {
    /// URLs under `base` (empty: relative), signed by `signer` for `ttl_secs`.
    pub fn new(base: &str, default_mode: Mode, signer: Option<Signer>, verifier: Verifier, ttl_secs: u64) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            default_mode,
            signer,
            verifier,
            // At least 5 minutes: the API's read cache keeps an image's view (and
            // its signed URLs) for a minute.
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX / 4).max(300),
        }
    }

    /// Public URLs only, relative to the API.
    #[cfg(test)]
    fn relative() -> Self {
        Self::new("", Mode::Public, None, Verifier::default(), 3600)
    }

    /// The URL a page uses for the object at `key`; `None` for a key under
    /// no delivery prefix, or a signed one when no key can sign.
    pub fn url(&self, key: &str, now: DateTime<Utc>) -> Option<String> {
        let resource = format!("{}/{key}", self.base);
        match Mode::of_key(key)? {
            Mode::Public => Some(resource),
            Mode::Signed => Some(self.signer.as_ref()?.sign(&resource, self.expiry(now))),
        }
    }

    /// A signed URL's expiry: at least the TTL from now, rounded up to a
    /// whole tenth of it, so the URLs handed out within that tenth are the
    /// same and a browser's cache still finds them.
    fn expiry(&self, now: DateTime<Utc>) -> i64 {
        let step = (self.ttl_secs / 10).max(1);
        let at_least = now.timestamp() + self.ttl_secs;
        (at_least + step - 1) / step * step
    }

    /// The job's status page under `links`, signed to open without a key
    /// for `ttl_secs`; `None` without a signing key. The signature covers
    /// the path alone, so it holds whatever address the API is reached by.
    pub fn status_url(&self, links: &Links, job_id: Uuid, ttl_secs: i64, now: DateTime<Utc>) -> Option<String> {
        let signed = self.signer.as_ref()?.sign(&Links::relative().status(job_id), now.timestamp() + ttl_secs);
        let (_, query) = signed.split_once('?')?;
        Some(format!("{}?{query}", links.status(job_id)))
    }

    /// Whether `query` signs the status page of `job_id` at `now`.
    ///
    /// # Errors
    /// The [`Refusal`].
    pub fn check_status(&self, job_id: Uuid, query: Option<&str>, now: DateTime<Utc>) -> Result<(), Refusal> {
        self.verifier.check(&Links::relative().status(job_id), query, now)
    }

    /// Whether a request for the object at `key` may have it: always for a
    /// public key, with a valid signature for a signed one.
    ///
    /// # Errors
    /// The [`Refusal`] of a signed key's URL.
    pub fn admit(&self, key: &str, query: Option<&str>, now: DateTime<Utc>) -> Result<(), Refusal> {
        match Mode::of_key(key) {
            Some(Mode::Public) => Ok(()),
            _ => self.verifier.check(&format!("{}/{key}", self.base), query, now),
        }
    }
}

/// The media type of an encoded format.
pub fn media_type(format: &str) -> &'static str {
    match format {
        "jpeg" => "image/jpeg",
        "png" => "image/png",
        "avif" => "image/avif",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "tiff" => "image/tiff",
        _ => "image/webp",
    }
}

/// The media type of an object key, from its extension.
pub fn media_type_of_key(key: &str) -> &'static str {
    media_type(match key.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "jpg" => "jpeg",
        ext => ext,
    })
}

/// One variant as a `srcset` candidate.
pub struct Candidate<'a> {
    /// Its delivery URL.
    pub url: &'a str,
    /// Its width in pixels.
    pub width: i32,
    /// Its height in pixels.
    pub height: i32,
    /// Its encoded format (`webp`, `jpeg`, …).
    pub format: &'a str,
}

/// A ready `srcset` per format (`"/v…/thumb.webp 256w, /v…/large.webp 2048w"`),
/// keyed by the media type, for a `<picture>`'s `<source type>` or an
/// `<img srcset>`. Only variants with the original's aspect ratio take part
/// (a square `cover` crop would show another picture), each width once.
pub fn srcsets<'a>(
    variants: impl IntoIterator<Item = Candidate<'a>>,
    original: Option<(i32, i32)>,
) -> std::collections::BTreeMap<String, String> {
    let same_shape = |c: &Candidate<'_>| match original {
        // Rounding to whole pixels moves the ratio by at most a pixel's worth.
        Some((w, h)) if w > 0 && h > 0 => {
            let (cw, ch) = (i64::from(c.width), i64::from(c.height));
            (cw * i64::from(h) - ch * i64::from(w)).abs() <= i64::from(w.max(h))
        }
        _ => true,
    };
    let mut by_type: std::collections::BTreeMap<String, Vec<(i32, &str)>> = std::collections::BTreeMap::new();
    for candidate in variants.into_iter().filter(same_shape) {
        by_type.entry(media_type(candidate.format).to_owned()).or_default().push((candidate.width, candidate.url));
    }
    by_type
        .into_iter()
        .map(|(kind, mut list)| {
            list.sort_unstable();
            list.dedup_by_key(|(width, _)| *width);
            let set: Vec<String> = list.iter().map(|(width, url)| format!("{url} {width}w")).collect();
            (kind, set.join(", "))
        })
        .collect()
}

/// CloudFront's canned policy for `resource` until `expires`, byte for byte
/// as CloudFront rebuilds it (no whitespace).
fn canned_policy(resource: &str, expires: i64) -> String {
    format!(
        r#"{{"Statement":[{{"Resource":"{resource}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#
    )
}

/// Base64 with CloudFront's URL-safe substitutions (`+`→`-`, `=`→`_`, `/`→`~`).
fn cloudfront_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            other => other,
        })
        .collect()
}

fn from_cloudfront_base64(text: &str) -> Option<Vec<u8>> {
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            other => other,
        })
        .collect();
    base64::engine::general_purpose::STANDARD.decode(standard).ok()
}

/// The DER inside PEM armour (any label).
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Of processes starting together, one key wins and every one reads it
    // whole: each writes its own file in full, then links it to `path`,
    // which only the first link creates. (Creating `path` itself and then
    // writing it let another process read it empty in between.)
    let mut own = path.as_os_str().to_owned();
    own.push(format!(".{}", Uuid::new_v4()));
    let own = std::path::PathBuf::from(own);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&own)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()));
    let linked = written.and_then(|()| match std::fs::hard_link(&own, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&own);
    linked
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(id: &str) -> Signer {
        let dir = std::env::temp_dir().join(format!("delivery-key-{}", Uuid::new_v4()));
        Signer::kept_at(id, &dir.join("key.pem")).expect("key")
    }

    fn delivery(signer: Signer, retired: &[String]) -> Delivery {
        let verifier = Verifier::new(Some(&signer), retired).expect("verifier");
        Delivery::new("https://cdn.example", Mode::Public, Some(signer), verifier, 3600)
    }

    fn split(url: &str) -> (&str, Option<&str>) {
        let (path, query) = url.split_once('?').map_or((url, None), |(p, q)| (p, Some(q)));
        (path.strip_prefix("https://cdn.example/").expect("under the base"), query)
    }

    #[test]
    fn processes_starting_together_share_one_whole_key() {
        // The api and the worker start together on a new DATA_DIR: each
        // either makes the key or reads the one the other made, never a
        // file still being written.
        for _ in 0..20 {
            let dir = std::env::temp_dir().join(format!("delivery-key-{}", Uuid::new_v4()));
            let path = dir.join("key.pem");
            let start = std::sync::Barrier::new(8);
            let keys: Vec<String> = std::thread::scope(|scope| {
                let starters: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            Signer::kept_at("k", &path).expect("a whole key").public_key_base64()
                        })
                    })
                    .collect();
                starters.into_iter().map(|s| s.join().expect("thread")).collect()
            });
            assert!(keys.iter().all(|k| *k == keys[0]), "one key for all: {keys:?}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn public_keys_give_plain_urls_and_need_nothing() {
        let d = Delivery::relative();
        assert_eq!(d.url("variants/a/t/thumb-1.webp", Utc::now()).as_deref(), Some("/variants/a/t/thumb-1.webp"));
        assert_eq!(d.admit("variants/a/t/thumb-1.webp", None, Utc::now()), Ok(()));
        assert_eq!(d.url("originals/a", Utc::now()), None, "nothing else has a delivery URL");
        assert_eq!(d.url("private/a/t/thumb-1.webp", Utc::now()), None, "no signer, no signed URL");
    }

    #[test]
    fn a_signed_url_is_honoured_and_any_change_to_it_is_refused() {
        let d = delivery(signer("k1"), &[]);
        let now = Utc::now();
        let url = d.url("private/a/t/thumb-1.webp", now).expect("signed url");
        let (key, query) = split(&url);
        assert_eq!(d.admit(key, query, now), Ok(()));
        assert_eq!(d.admit(key, None, now), Err(Refusal::Unsigned));
        assert_eq!(d.admit("private/b/t/thumb-1.webp", query, now), Err(Refusal::BadSignature), "another image's path");
        let later = query.expect("query").replace("Expires=", "Expires=9");
        assert_eq!(d.admit(key, Some(&later), now), Err(Refusal::BadSignature), "a stretched expiry");
        let past = now + chrono::TimeDelta::seconds(3600 * 2);
        assert_eq!(d.admit(key, query, past), Err(Refusal::Expired));
    }

    #[test]
    fn rotation_keeps_urls_of_the_retired_key_until_they_expire() {
        let old = delivery(signer("k1"), &[]);
        let now = Utc::now();
        let url = old.url("private/a/t/thumb-1.webp", now).expect("signed url");
        let retired = format!("k1={}", old.signer.as_ref().expect("signer").public_key_base64());
        let new = delivery(signer("k2"), &[retired]);
        let (key, query) = split(&url);
        assert_eq!(new.admit(key, query, now), Ok(()), "the retired key still verifies");
        let forgotten = delivery(signer("k2"), &[]);
        assert_eq!(forgotten.admit(key, query, now), Err(Refusal::UnknownKey));
        assert!(new.url(key, now).expect("url").ends_with("Key-Pair-Id=k2"), "the new key signs");
    }

    #[test]
    fn urls_handed_out_close_together_are_the_same() {
        let d = delivery(signer("k1"), &[]);
        // Just past a whole tenth of the TTL (360 s) from now.
        let at = DateTime::from_timestamp(1_800_000_001 - 3600, 0).expect("time");
        let first = d.url("private/a/t/x.webp", at).expect("url");
        let soon = d.url("private/a/t/x.webp", at + chrono::TimeDelta::seconds(100)).expect("url");
        let (_, q1) = split(&first);
        let (_, q2) = split(&soon);
        let expires = |q: Option<&str>| q.expect("q").split('&').next().map(str::to_owned);
        assert_eq!(expires(q1), expires(q2));
    }

    #[test]
    fn a_srcset_holds_each_width_of_the_originals_shape_once_per_format() {
        let c = |url, width, height, format| Candidate { url, width, height, format };
        let sets = srcsets(
            [
                c("/l.webp", 2048, 1365, "webp"),
                c("/t.webp", 256, 171, "webp"),
                c("/m.webp", 1024, 683, "webp"),
                c("/same.webp", 1024, 683, "webp"),
                c("/square.webp", 256, 256, "webp"),
                c("/t.jpg", 256, 171, "jpeg"),
            ],
            Some((4000, 2667)),
        );
        assert_eq!(sets["image/webp"], "/t.webp 256w, /m.webp 1024w, /l.webp 2048w");
        assert_eq!(sets["image/jpeg"], "/t.jpg 256w");
        assert_eq!(media_type_of_key("variants/a/t/thumb-1.jpg"), "image/jpeg");
    }

    #[test]
    fn the_policy_and_encoding_are_cloudfronts() {
        assert_eq!(
            canned_policy("https://d.example/private/a", 1_700_000_000),
            r#"{"Statement":[{"Resource":"https://d.example/private/a","Condition":{"DateLessThan":{"AWS:EpochTime":1700000000}}}]}"#
        );
        assert_eq!(cloudfront_base64(&[0xfb, 0xff, 0xfe]), "-~~-");
        assert_eq!(cloudfront_base64(&[0xff]), "~w__");
        assert_eq!(from_cloudfront_base64("~w__"), Some(vec![0xff]));
    }
}
